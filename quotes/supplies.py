"""The report supplies on a quote's lines (issue 16, item 7): when they stay
in the quote, when they come back to the supervisor, when they go in again.

`quotes.services.quote_materials` makes one line per supply, linked to it
(`QuoteLine.material`); a new version copies the lines with their links. One
rule decides: a supply put in a quote stays there while a line of a quote in
`HOLDING_STATES` (a draft, a sent or an accepted quote) holds it. When the
last such line goes (the quote refused, withdrawn, expired, a draft abandoned,
its line removed, a version sent without it), the supply comes back to
« à reprendre » (`orders.materials.give_back`), with an event in the order's
history. A new version of a refused or expired quote, or its late acceptance,
takes back the supplies still to take up (`take_back`) and leaves out the
lines of those taken up meanwhile, so that nothing is billed twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from orders import materials
from orders.models import MaterialDestination, Order, ReportMaterial
from portal.models import User
from quotes.models import HOLDING_STATES, Quote, QuoteLine, QuoteState

WHY = {
    QuoteState.REFUSED: "après le refus du devis",
    QuoteState.EXPIRED: "après l'expiration du devis",
    QuoteState.CANCELLED: "après l'annulation du devis",
}


def linked(quote: Quote) -> list[int]:
    """The supplies the quote's lines quote."""
    return list(
        QuoteLine.objects.filter(quote=quote, material__isnull=False).values_list("material_id", flat=True).distinct()
    )


def release(quote: Quote, ids: Iterable[int] | None = None, *, actor: User | None, why: str | None = None) -> list[int]:
    """After `quote` left the holding states (or lost lines): the supplies of
    `ids` (by default, all its lines') that no line of a holding quote holds any
    more come back to « à reprendre ». Returns those that came back."""
    if quote.order_id is None:
        return []
    ids = set(linked(quote) if ids is None else ids)
    if not ids:
        return []
    held = set(
        QuoteLine.objects.filter(material_id__in=ids, quote__state__in=HOLDING_STATES).values_list(
            "material_id", flat=True
        )
    )
    free = ids - held
    if not free:
        return []
    reason = why or f"{WHY.get(QuoteState(quote.state), 'après la fin du devis')} {quote.display_number}"
    event = materials.give_back(Order.objects.get(pk=quote.order_id), free, actor=actor, why=reason)
    return list(event.data["materials"]) if event is not None else []


def take_back(quote: Quote, *, actor: User | None, why: str) -> set[int]:
    """Before a version of `quote` is made from it, or its lines added to the
    order on a late acceptance: the supplies of its lines given back since are
    taken back into the quote. Returns the lines whose supplies were taken up
    meanwhile (added to the order, or in another quote still held), to leave out."""
    if quote.order_id is None:
        return set()
    lines = list(QuoteLine.objects.filter(quote=quote, material__isnull=False))
    if not lines:
        return set()
    ids = {line.material_id for line in lines if line.material_id is not None}
    destinations = dict(ReportMaterial.objects.filter(pk__in=ids).values_list("pk", "destination"))
    elsewhere = set(
        QuoteLine.objects.filter(material_id__in=ids, quote__state__in=HOLDING_STATES)
        .exclude(quote__number=quote.number)
        .values_list("material_id", flat=True)
    )
    waiting = {pk for pk in ids if destinations.get(pk) == MaterialDestination.PENDING}
    taken = set(materials.take_back(Order.objects.get(pk=quote.order_id), waiting, actor=actor, why=why))
    kept = taken | {pk for pk in ids if destinations.get(pk) == MaterialDestination.QUOTE and pk not in elsewhere}
    return {line.pk for line in lines if line.material_id not in kept}
