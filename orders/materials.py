"""The supplies a report records from the contract's price schedule (issue 16,
item 7), and what the supervisor does with them.

The technician picks each supply by its code in the price schedule
(*bordereau de prix unitaires*) with a quantity; the report keeps them
(`ReportMaterial`). What a contractor under a framework contract does next
depends on whether the supplies are within what the buyer ordered, which the
supervisor decides, supply by supply list:

- within the order: « Ajouter aux lignes de la commande » makes each a line of
  the order at the schedule's price, done (`add_to_order`); the platform sees
  them with the order's lines and the invoice bills the done lines, so they are
  invoiced with the rest (the *attachement* of what was executed);
- beyond it: the buyer must accept a price first (CCAG-MI §53), so they go
  into a supplementary-works quote of the order, as its lines at the
  schedule's prices (quotes.services.quote_materials, which calls `mark_quoted`);
  once accepted, the quote's lines join the order's lines and are invoiced.

Each supply goes one way only, once (a guarded update from « à reprendre »).
A supply in a quote that will not be executed (refused, withdrawn, expired, its
line removed) comes back to « à reprendre » (`give_back`, guarded from « mis
dans un devis »), to be added to the order or quoted again; a new version of
that quote, or its late acceptance, takes it back if nobody took it up
meanwhile (`take_back`). The quote's side decides when (quotes.supplies).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from orders import services
from orders.models import MaterialDestination, Order, OrderEvent, OrderLine, ReportMaterial
from orders.services import ServiceError
from orders.states import Action, State
from portal.models import PriceItem, User


@dataclass(frozen=True)
class MaterialUse:
    """A supply as the technician gives it: a price of the contract's schedule and a quantity."""

    price_item: PriceItem
    quantity: Decimal


def of_order(order: Order) -> QuerySet[ReportMaterial]:
    """The supplies of the order's reports, in the reports' order."""
    return (
        ReportMaterial.objects.filter(report__order=order)
        .select_related("report", "price_item", "order_line")
        .order_by("report__created_at", "report_id", "position", "pk")
    )


def pending(order: Order) -> QuerySet[ReportMaterial]:
    return of_order(order).filter(destination=MaterialDestination.PENDING)


def _free_reference(taken: set[str], code: str) -> str:
    """The code, or the code with a number when the order already has a line of that reference."""
    reference, number = code, 1
    while reference in taken:
        number += 1
        reference = f"{code}-{number}"
    taken.add(reference)
    return reference


@transaction.atomic
def add_to_order(order: Order, *, actor: User | None) -> OrderEvent:
    """The order's supplies still to take up become its lines at the price
    schedule's prices, done: one event for all of them."""
    locked = services.lock_for(order, Action.EDIT)
    materials = list(pending(locked).select_for_update(of=("self",)))
    if not materials:
        raise ServiceError("Aucune fourniture des rapports n'est à reprendre.")
    now = timezone.now()
    taken = set(locked.lines.values_list("reference", flat=True))
    position = max(locked.lines.values_list("position", flat=True), default=0)
    added = []
    for material in materials:
        position += 1
        price = material.price_item
        line = OrderLine.objects.create(
            order=locked,
            position=position,
            reference=_free_reference(taken, material.code),
            price_item=price,
            label=material.label,
            quantity=material.quantity,
            unit=material.unit,
            unit_price=price.unit_price,
            vat_rate=price.vat_rate,
            done=True,
            done_at=now,
        )
        updated = ReportMaterial.objects.filter(pk=material.pk, destination=MaterialDestination.PENDING).update(
            destination=MaterialDestination.ORDER, order_line=line
        )
        if updated != 1:  # taken up meanwhile (the row lock makes it unlikely)
            raise ServiceError("Ces fournitures viennent d'être reprises par quelqu'un d'autre : rechargez la page.")
        added.append(line)
    if locked.state in (State.IN_PROGRESS, State.SUSPENDED):
        # The progress follows the lines while the works go on.
        Order.objects.filter(pk=locked.pk).update(progress=locked.progress_from_lines(), updated_at=now)
    order.refresh_from_db()
    names = ", ".join(f"{line.reference} × {line.quantity.normalize():f} {line.unit}" for line in added)
    return services.record_event(
        order,
        kind="line_added",
        label=f"Fournitures des rapports ajoutées, réalisées : {names}"[:300],
        actor=actor,
        data={"lines": [line.reference for line in added]},
    )


@transaction.atomic
def mark_quoted(materials: Iterable[ReportMaterial]) -> int:
    """The supplies put in a quote (by quotes.services): no longer to take up.
    Refused when one was taken up meanwhile."""
    ids = [material.pk for material in materials]
    updated = ReportMaterial.objects.filter(pk__in=ids, destination=MaterialDestination.PENDING).update(
        destination=MaterialDestination.QUOTE
    )
    if updated != len(ids):
        raise ServiceError("Ces fournitures viennent d'être reprises par quelqu'un d'autre : rechargez la page.")
    return updated


def _names(supplies: Iterable[ReportMaterial]) -> str:
    return ", ".join(str(supply) for supply in supplies)


@transaction.atomic
def give_back(order: Order, ids: Iterable[int], *, actor: User | None, why: str) -> OrderEvent | None:
    """The supplies `ids` of the order, put in a quote that will not be
    executed, are to take up again: guarded from « mis dans un devis », so a
    supply comes back once however often the quote's end is received. One
    event saying `why` (« après le refus du devis D2026-0042 »); None when
    none was still in a quote."""
    supplies = list(
        of_order(order).filter(pk__in=list(ids), destination=MaterialDestination.QUOTE).select_for_update(of=("self",))
    )
    back = [
        supply
        for supply in supplies
        if ReportMaterial.objects.filter(pk=supply.pk, destination=MaterialDestination.QUOTE).update(
            destination=MaterialDestination.PENDING
        )
        == 1
    ]
    if not back:
        return None
    return services.record_event(
        order,
        kind="materials_returned",
        label=f"Fournitures revenues à reprendre {why} : {_names(back)}"[:300],
        actor=actor,
        data={"materials": [supply.pk for supply in back]},
    )


@transaction.atomic
def take_back(order: Order, ids: Iterable[int], *, actor: User | None, why: str) -> list[int]:
    """The supplies `ids` given back earlier and still to take up go into a
    quote again (a new version, or its late acceptance): guarded from « à
    reprendre ». Returns those taken; the others were taken up meanwhile."""
    supplies = list(pending(order).filter(pk__in=list(ids)).select_for_update(of=("self",)))
    taken = [
        supply
        for supply in supplies
        if ReportMaterial.objects.filter(pk=supply.pk, destination=MaterialDestination.PENDING).update(
            destination=MaterialDestination.QUOTE
        )
        == 1
    ]
    if taken:
        services.record_event(
            order,
            kind="materials_quoted",
            label=f"Fournitures remises {why} : {_names(taken)}"[:300],
            actor=actor,
            data={"materials": [supply.pk for supply in taken]},
        )
    return [supply.pk for supply in taken]
