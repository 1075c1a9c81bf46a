"""Editing a draft quote: its details, its lines (from the contract's price
schedule or out of it) and its parts, and the totals the lines make. Every edit
takes the draft's lock (`lock_draft`, which `quotes.services` also takes to send
it) and is refused once the quote is sent: a new version is edited instead
(`quotes.services.revise_quote`).

As in `quotes.services`, each function runs in one transaction and appends a
`QuoteEvent` with a French label. `check_belongs` and `verbose_name` also serve
`quotes.services` (creating a quote, correcting its references).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from orders.models import ReportMaterial
from portal.models import Asset, Contract, PriceItem, ServiceCode, User
from quotes import pricing, supplies
from quotes.events import QuoteRefused, record_event
from quotes.models import PartSupplier, Quote, QuoteEvent, QuoteLine, QuotePart, QuoteState

VAT_RATES = frozenset(pricing.RATES)
# What the supervisor may change on a draft besides its lines.
DETAIL_FIELDS = ("title", "works", "valid_until", "works_wait", "asset", "service_code")


def verbose_name(model: type[Quote] | type[QuoteLine], name: str) -> str:
    return str(getattr(model._meta.get_field(name), "verbose_name", name))


def check_belongs(contract: Contract, asset: Asset | None, service_code: ServiceCode | None) -> None:
    if asset is not None and asset.client_id != contract.client_id:
        raise QuoteRefused("Cet élément de patrimoine n'appartient pas au client du marché.")
    if service_code is not None and service_code.contract_id != contract.pk:
        raise QuoteRefused("Ce code prestation n'appartient pas au marché du devis.")


def lock_draft(quote: Quote) -> Quote:
    locked = Quote.objects.select_for_update().select_related("contract").get(pk=quote.pk)
    if not locked.is_editable:
        raise QuoteRefused(
            f"Le devis {locked.display_number} est « {locked.get_state_display()} » : il ne se modifie plus"
            + (" (créez une nouvelle version)." if locked.state == QuoteState.SENT else ".")
        )
    return locked


@transaction.atomic
def update_quote(quote: Quote, *, actor: User | None, changes: Mapping[str, Any]) -> QuoteEvent | None:
    unknown = set(changes) - set(DETAIL_FIELDS)
    if unknown:
        raise TypeError(f"Not editable here: {sorted(unknown)}")
    locked = lock_draft(quote)
    changes = dict(changes)
    if "title" in changes:
        changes["title"] = " ".join(str(changes["title"]).split())[:200]
        if not changes["title"]:
            raise QuoteRefused("Donnez un objet au devis.")
    if "works_wait" in changes and locked.order_id is None:
        changes["works_wait"] = False
    if isinstance(changes.get("valid_until"), date) and changes["valid_until"] < timezone.localdate():
        raise QuoteRefused("La date de validité est passée.")
    check_belongs(locked.contract, changes.get("asset"), changes.get("service_code"))
    changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
    if not changed:
        return None
    Quote.objects.filter(pk=locked.pk).update(**changed)
    quote.refresh_from_db()
    names = ", ".join(verbose_name(Quote, name) for name in changed)
    return record_event(quote, kind="edited", label=f"Devis modifié : {names}", actor=actor)


def _decimal(value: Any, label: str) -> Decimal:
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).replace(",", ".").strip())
    except (InvalidOperation, ValueError):
        raise QuoteRefused(f"{label} : saisissez un nombre, par exemple 2,5.") from None
    if not number.is_finite():
        raise QuoteRefused(f"{label} : saisissez un nombre, par exemple 2,5.")
    return number


def _quantity(value: Any) -> Decimal:
    quantity = _decimal(value, "Quantité")
    if quantity <= 0 or quantity >= Decimal("1e9") or quantity != quantity.quantize(Decimal("0.01")):
        raise QuoteRefused("La quantité doit être positive, avec au plus deux décimales.")
    return quantity


def _vat_rate(value: Any) -> Decimal:
    rate = _decimal(value, "Taux de TVA").quantize(Decimal("0.01"))
    if rate not in VAT_RATES:
        raise QuoteRefused("Taux de TVA inconnu : 20 %, 10 %, 5,5 % ou 0 %.")
    return rate


def _unit_price(value: Any) -> Decimal:
    price = _decimal(value, "Prix unitaire")
    if price < 0 or price >= Decimal("1e10") or price != price.quantize(Decimal("0.01")):
        raise QuoteRefused("Le prix unitaire est un montant positif, au centime près.")
    return price


def refresh_totals(quote: Quote) -> pricing.Totals:
    totals = pricing.totals(line.pricing_line() for line in QuoteLine.objects.filter(quote=quote))
    Quote.objects.filter(pk=quote.pk).update(
        total_excl_vat=totals.total_excl_vat, total_vat=totals.total_vat, total_incl_vat=totals.total_incl_vat
    )
    return totals


@transaction.atomic
def add_line(
    quote: Quote,
    *,
    actor: User | None,
    price_item: PriceItem | None = None,
    quantity: Any = Decimal(1),
    vat_rate: Any = None,
    label: str = "",
    unit: str = "",
    unit_price: Any = None,
    justification: str = "",
    material: ReportMaterial | None = None,
) -> QuoteLine:
    """A line from the contract's schedule (`price_item`), or out of schedule
    (label, unit, unit price and the justification of its price); `material`,
    the report's supply it quotes (quote_materials)."""
    locked = lock_draft(quote)
    fields: dict[str, Any] = {"quantity": _quantity(quantity), "material": material}
    if price_item is not None:
        if price_item.contract_id != locked.contract_id:
            raise QuoteRefused("Ce prix n'appartient pas au bordereau du marché du devis.")
        fields |= {
            "price_item": price_item,
            "code": price_item.code,
            "label": price_item.label,
            "unit": price_item.unit,
            "unit_price": price_item.unit_price,
            "vat_rate": price_item.vat_rate if vat_rate in (None, "") else _vat_rate(vat_rate),
        }
    else:
        label, justification = " ".join(label.split()), justification.strip()
        if not label:
            raise QuoteRefused("Une ligne hors bordereau a besoin d'un libellé.")
        if not justification:
            raise QuoteRefused("Justifiez le prix d'une ligne hors bordereau (pourquoi il n'est pas au bordereau).")
        if unit_price in (None, ""):
            raise QuoteRefused("Donnez le prix unitaire de la ligne hors bordereau.")
        fields |= {
            "label": label[:300],
            "unit": (unit.strip() or "u")[:20],
            "unit_price": _unit_price(unit_price),
            "vat_rate": _vat_rate(vat_rate if vat_rate not in (None, "") else pricing.INTERMEDIATE_RATE),
            "out_of_schedule": True,
            "justification": justification,
        }
    position = (QuoteLine.objects.filter(quote=locked).aggregate(last=Max("position"))["last"] or 0) + 1
    line = QuoteLine.objects.create(quote=locked, position=position, **fields)
    refresh_totals(locked)
    kind = "hors bordereau" if line.out_of_schedule else line.code
    record_event(
        locked,
        kind="line_added",
        label=f"Ligne ajoutée ({kind}) : {line.label} × {line.quantity.normalize():f} {line.unit}",
        actor=actor,
        data={"line": line.pk},
    )
    return line


LINE_FIELDS = ("quantity", "vat_rate", "label", "unit", "unit_price", "justification")


@transaction.atomic
def update_line(line: QuoteLine, *, actor: User | None, changes: Mapping[str, Any]) -> QuoteEvent | None:
    """Quantity and VAT rate of any line; label, unit, price and justification
    of an out-of-schedule one (a schedule line keeps the schedule's price)."""
    locked = lock_draft(line.quote)
    current = QuoteLine.objects.get(pk=line.pk, quote=locked)
    parsed: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in LINE_FIELDS:
            raise TypeError(f"Not editable here: {name}")
        if name == "quantity":
            parsed[name] = _quantity(value)
        elif name == "vat_rate":
            parsed[name] = _vat_rate(value)
        elif not current.out_of_schedule:
            raise QuoteRefused("Une ligne du bordereau garde le libellé, l'unité et le prix du bordereau.")
        elif name == "unit_price":
            parsed[name] = _unit_price(value)
        elif name == "label":
            parsed[name] = " ".join(str(value).split())[:300]
            if not parsed[name]:
                raise QuoteRefused("Une ligne hors bordereau a besoin d'un libellé.")
        elif name == "justification":
            parsed[name] = str(value).strip()
            if not parsed[name]:
                raise QuoteRefused("Justifiez le prix d'une ligne hors bordereau.")
        else:
            parsed[name] = (str(value).strip() or "u")[:20]
    changed = {name: value for name, value in parsed.items() if getattr(current, name) != value}
    if not changed:
        return None
    QuoteLine.objects.filter(pk=current.pk).update(**changed)
    line.refresh_from_db()
    refresh_totals(locked)
    names = ", ".join(verbose_name(QuoteLine, name) for name in changed)
    return record_event(locked, kind="line_changed", label=f"Ligne « {line.label} » modifiée : {names}", actor=actor)


@transaction.atomic
def remove_line(line: QuoteLine, *, actor: User | None) -> QuoteEvent:
    locked = lock_draft(line.quote)
    label = line.label
    removed = QuoteLine.objects.filter(pk=line.pk, quote=locked).values_list("material_id", flat=True).first()
    QuoteLine.objects.filter(pk=line.pk, quote=locked).delete()
    refresh_totals(locked)
    if removed is not None:
        # Its supply comes back unless another version still holds it.
        supplies.release(
            locked, [removed], actor=actor, why=f"après le retrait de sa ligne du devis {locked.display_number}"
        )
    return record_event(locked, kind="line_removed", label=f"Ligne retirée : {label}", actor=actor)


@transaction.atomic
def add_part(
    quote: Quote, *, actor: User | None, supplied_by: str, description: str, quantity: Any = Decimal(1)
) -> QuotePart:
    """A part to replace (CCAG-MI §52), supplied by the contractor or the buyer."""
    locked = lock_draft(quote)
    if supplied_by not in PartSupplier.values:
        raise QuoteRefused("Dites qui fournit la pièce : le titulaire ou l'acheteur.")
    description = " ".join(description.split())
    if not description:
        raise QuoteRefused("Décrivez la pièce.")
    amount = _decimal(quantity, "Quantité")
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")) or amount >= Decimal("1e8"):
        raise QuoteRefused("La quantité doit être positive, avec au plus deux décimales.")
    position = (QuotePart.objects.filter(quote=locked).aggregate(last=Max("position"))["last"] or 0) + 1
    part = QuotePart.objects.create(
        quote=locked, supplied_by=supplied_by, description=description[:300], quantity=amount, position=position
    )
    who = PartSupplier(supplied_by).label.lower()
    record_event(locked, kind="part_added", label=f"Pièce ajoutée ({who}) : {part.description}", actor=actor)
    return part


@transaction.atomic
def remove_part(part: QuotePart, *, actor: User | None) -> QuoteEvent:
    locked = lock_draft(part.quote)
    QuotePart.objects.filter(pk=part.pk, quote=locked).delete()
    return record_event(locked, kind="part_removed", label=f"Pièce retirée : {part.description}", actor=actor)
