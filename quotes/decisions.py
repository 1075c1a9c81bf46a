"""The buyer's answer to a quote, and the quote's expiry.

`record_decision` applies the platform's acceptance or refusal (from the
webhook or the reconciliation, `quotes.inbound`): an accepted
supplementary-works quote adds its lines to the parent order through the order
services (so they are relayed as the order's own changes) and resumes the order
if it was on hold for the quote; a refused one leaves the order as it was and
tells who sent the quote (email; the overview lists it). `expire_quotes`, run
by a periodic task, closes the quotes whose validity is over.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from django.db import transaction
from django.utils import timezone

from orders import receiving
from orders import services as order_services
from orders.deadlines import local_date
from orders.models import Order
from orders.states import State, SuspendReason
from portal.errors import Refused
from portal.models import User
from quotes import notify, supplies
from quotes.events import QuoteRefused, guarded, record_event
from quotes.models import Quote, QuoteState

logger = logging.getLogger(__name__)


def _order_actor(quote: Quote) -> User | None:
    """Who the order's new lines and resumption are attributed to: the person
    who sent the quote (the buyer's answer is what makes them happen). With a
    person as actor they are relayed like any change the contractor makes."""
    return quote.sent_by or quote.created_by


def release_parent_order(quote: Quote, *, actor: User | None) -> None:
    """Resume the parent order if it is on hold for this quote."""
    if quote.order_id is None or not quote.works_wait:
        return
    order = Order.objects.get(pk=quote.order_id)
    if order.state != State.SUSPENDED or order.suspend_reason != SuspendReason.QUOTE_REQUEST:
        return
    try:
        order_services.resume_work(order, actor=actor)
    except Refused as error:
        record_event(quote, kind="order_not_resumed", label=f"Commande non reprise : {error}", actor=None)


def _add_lines_to_order(quote: Quote, order: Order, actor: User | None) -> int:
    # Accepted after its expiry, the quote takes back its supplies given back
    # meanwhile; those taken up since (on the order, in another quote) are not added twice.
    left_out = supplies.take_back(quote, actor=actor, why=f"dans le devis {quote.display_number}, accepté")
    added = 0
    for line in quote.lines.all():
        if line.pk in left_out:
            record_event(
                quote,
                kind="line_left_out",
                label=f"Ligne {line.position} ({line.code}) non ajoutée à la commande : "
                "cette fourniture a été reprise entre-temps",
                actor=None,
            )
            continue
        reference = f"{quote.number}-{line.position}"
        if order.lines.filter(reference=reference).exists():
            continue  # applied twice (a repeated answer): once is enough
        receiving.add_line(
            order,
            actor=actor,
            reference=reference,
            price_item=line.price_item,
            label=line.label,
            unit=line.unit,
            quantity=line.quantity,
            unit_price=line.unit_price,
            vat_rate=line.vat_rate,
        )
        added += 1
    return added


@transaction.atomic
def record_decision(
    quote: Quote, *, accepted: bool, at: datetime | None = None, actor: User | None = None, notify_refusal: bool = True
) -> str:
    """Apply the buyer's answer to a sent quote. Returns a French summary.
    An answer to a quote already answered the same way changes nothing.
    `notify_refusal=False` (the demo's past refusals) sends no email."""
    at = at or timezone.now()
    locked = Quote.objects.select_for_update(of=("self",)).select_related("order").get(pk=quote.pk)
    target = QuoteState.ACCEPTED if accepted else QuoteState.REFUSED
    if locked.state == target:
        return "Réponse déjà enregistrée."
    guarded(locked, (QuoteState.SENT, QuoteState.EXPIRED), state=target, decided_at=at)
    locked.refresh_from_db()
    if not accepted:
        label = "Devis refusé par le gestionnaire"
        if locked.order is not None:
            label += f" : la commande {locked.order.reference} reste telle qu'elle était"
        record_event(locked, kind="refused", label=label, actor=actor, at=at)
        supplies.release(locked, actor=actor)
        if notify_refusal:
            transaction.on_commit(partial(notify.quote_refused, locked.pk))
        return label
    label = "Devis accepté par le gestionnaire"
    if locked.order_id is not None:
        order = Order.objects.get(pk=locked.order_id)
        try:
            added = _add_lines_to_order(locked, order, _order_actor(locked))
        except Refused as error:
            # A closed or cancelled order takes no line: the acceptance stands, a person decides.
            record_event(locked, kind="accepted", label=label, actor=actor, at=at)
            record_event(
                locked, kind="lines_not_added", label=f"Lignes non ajoutées à la commande : {error}", actor=None
            )
            return f"{label} ; lignes non ajoutées : {error}"
        plural = "s" if added > 1 else ""
        label += f" : {added} ligne{plural} ajoutée{plural} à la commande {order.reference}"
        record_event(locked, kind="accepted", label=label, actor=actor, at=at)
        release_parent_order(locked, actor=_order_actor(locked))
        return label
    record_event(locked, kind="accepted", label=label, actor=actor, at=at)
    return label


def expire_quotes(now: datetime | None = None) -> int:
    """Close the sent quotes whose validity is over. Returns how many."""
    now = now or timezone.now()
    today = local_date(now)
    expired = 0
    for quote in Quote.objects.filter(state=QuoteState.SENT, valid_until__lt=today):
        with transaction.atomic():
            try:
                guarded(quote, (QuoteState.SENT,), state=QuoteState.EXPIRED)
            except QuoteRefused:
                continue  # answered in the meantime
            quote.state = QuoteState.EXPIRED
            record_event(
                quote,
                kind="expired",
                label=f"Devis expiré : valable jusqu'au {quote.valid_until:%d/%m/%Y} sans réponse",
                actor=None,
                at=now,
            )
            release_parent_order(quote, actor=None)
            supplies.release(quote, actor=None)
        expired += 1
    return expired
