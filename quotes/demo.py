"""Demo quotes for `make run` (`manage.py seed_demo_quotes`, after `seed_demo`):
a few quotes in every state, through the quote services, dated in the past
where their story needs it; and one intervention report asking for a quote on
an order of the connected client, for a supervisor to try the whole story
(build the quote from the report, send it, accept it in the sandbox, see the
lines on the order).

The decided, expired and cancelled quotes are on the client whose changes are
not relayed (the sandbox only knows what the portal sent it); the quotes
waiting for an answer are on the connected one, so that the sandbox's manager
can accept or refuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from orders import reports
from orders.models import Order
from orders.states import State
from portal.models import Contract, PriceItem, Role, User
from portal.relay import outbox
from quotes import decisions, drafts, services
from quotes.models import PartSupplier, Quote

# The title of the report's quote request: what marks the demo as done.
REQUEST = "Remplacer le chauffe-eau électrique 200 L (cuve entartrée, groupe de sécurité fuyard)"


@dataclass(frozen=True)
class Cast:
    supervisor: User
    technician: User
    connected: Contract
    other: Contract


def _cast() -> Cast | None:
    supervisor = User.objects.filter(role=Role.SUPERVISOR, is_active=True).order_by("pk").first()
    technician = User.objects.filter(username="technicien").first() or User.objects.filter(role=Role.TECHNICIAN).first()
    contracts = list(Contract.objects.filter(active=True).select_related("client").order_by("pk"))
    connected = [c for c in contracts if outbox.connection_for_client(c.client_id) is not None]
    others = [c for c in contracts if c not in connected]
    if supervisor is None or technician is None or not connected or not others:
        return None
    return Cast(supervisor, technician, connected[0], others[0])


def _lines(quote: Quote, actor: User, count: int, quantity: str = "2") -> None:
    for item in PriceItem.objects.filter(contract=quote.contract_id).order_by("code")[:count]:
        drafts.add_line(quote, actor=actor, price_item=item, quantity=quantity)


def _order(contract: Contract, state: str, *, skip: int = 0) -> Order | None:
    return (
        Order.objects.filter(contract=contract, state=state, asset__isnull=False, service_code__isnull=False)
        .order_by("pk")[skip : skip + 1]
        .first()
    )


def _sent(contract: Contract, cast: Cast, title: str, at: datetime, *, order: Order | None = None) -> Quote:
    if order is not None:
        quote = services.create_quote_for_order(order, actor=cast.supervisor)
        drafts.update_quote(quote, actor=cast.supervisor, changes={"title": title})
    else:
        quote = services.create_quote(contract=contract, actor=cast.supervisor, title=title, at=at)
    _lines(quote, cast.supervisor, 3)
    services.send_quote(quote, actor=cast.supervisor, at=at)
    return quote


@transaction.atomic
def create_demo_quotes(now: datetime | None = None) -> list[str]:
    """Returns what it made (French), or [] when there is nothing to do."""
    now = now or timezone.now()
    cast = _cast()
    if cast is None or Quote.objects.exists():
        return []
    made = []
    # Drafts and answers on the client that is not connected.
    draft = services.create_quote(
        contract=cast.other, actor=cast.supervisor, title="Remplacement des boîtes aux lettres, hall A"
    )
    _lines(draft, cast.supervisor, 2, quantity="12")
    drafts.add_part(
        draft,
        actor=cast.supervisor,
        supplied_by=PartSupplier.CONTRACTOR,
        description="Boîtes aux lettres normalisées",
        quantity=Decimal(12),
    )
    made.append(f"{draft.number} brouillon")

    accepted_order = _order(cast.other, State.IN_PROGRESS)
    accepted = _sent(
        cast.other, cast, "Reprise d'étanchéité du bac de douche", now - timedelta(days=6), order=accepted_order
    )
    decisions.record_decision(accepted, accepted=True, at=now - timedelta(days=2))
    made.append(f"{accepted.number} accepté")

    refused = _sent(cast.other, cast, "Remplacement complet de la VMC", now - timedelta(days=9))
    decisions.record_decision(refused, accepted=False, at=now - timedelta(days=1), notify_refusal=False)
    made.append(f"{refused.number} refusé")

    overdue = _sent(cast.other, cast, "Réfection des joints de façade", now - timedelta(days=34))
    made.append(f"{overdue.number} envoyé il y a 34 jours, sans réponse (§52)")

    expired = _sent(cast.other, cast, "Peinture de la cage d'escalier C", now - timedelta(days=95))
    decisions.expire_quotes(now)
    made.append(f"{expired.number} expiré")

    cancelled = services.create_quote(contract=cast.other, actor=cast.supervisor, title="Doublon de demande")
    services.cancel_quote(cancelled, actor=cast.supervisor, reason="Demande en double")
    made.append(f"{cancelled.number} annulé")

    revised = _sent(cast.other, cast, "Remise en état des portes palières", now - timedelta(days=12))
    revision = services.revise_quote(revised, actor=cast.supervisor)
    drafts.add_line(
        revision,
        actor=cast.supervisor,
        label="Serrure trois points A2P",
        unit="u",
        unit_price=Decimal("186.00"),
        justification="Serrure demandée par le bailleur, absente du bordereau",
    )
    services.send_quote(revision, actor=cast.supervisor, at=now - timedelta(days=3))
    made.append(f"{revision.display_number} envoyé (remplace la version 1)")

    # Waiting for the manager's answer on the connected client: the sandbox shows them.
    waiting_order = _order(cast.connected, State.IN_PROGRESS, skip=1)
    waiting = _sent(
        cast.connected, cast, "Remplacement du mitigeur et des flexibles", now - timedelta(hours=3), order=waiting_order
    )
    made.append(f"{waiting.number} envoyé, en attente de la réponse du gestionnaire (bac à sable)")

    # A technician's request for a quote, for the supervisor to take from there.
    order = _order(cast.connected, State.IN_PROGRESS)
    if order is not None:
        reports.submit_report(
            order,
            actor=order.technician or cast.technician,
            works_done="Recherche de fuite : groupe de sécurité fuyard, cuve du chauffe-eau entartrée.",
            time_on_site_minutes=50,
            signature_status="absent",
            quote_needed=True,
            quote_description=REQUEST,
            at=now - timedelta(hours=2),
        )
        made.append(f"une demande de devis du technicien sur la commande {order.reference}")
    return made
