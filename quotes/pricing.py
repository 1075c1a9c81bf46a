"""A quote's (and later an invoice's) amounts, rounded as EN 16931 rounds them.

Pure Python, no Django: Decimals and dataclasses in, Decimals and dataclasses
out; a float anywhere is refused (TypeError), since a float cannot hold a price
to the cent. The invoices will reuse this module unchanged.

EN 16931-1 (the European e-invoicing standard, and Factur-X's model):
- a line's net amount (BT-131) is its quantity times its unit price, rounded
  to the cent;
- the total excluding VAT (BT-106, then BT-109) is the sum of the rounded line
  net amounts (no allowance or charge on the document level here);
- the VAT breakdown (BG-23) has one entry per rate: its taxable amount (BT-116)
  is the sum of that rate's line net amounts, its VAT (BT-117) that amount
  times the rate, rounded to the cent once, per rate (not line by line);
- the total VAT (BT-110) is the sum of the per-rate VAT amounts, and the total
  including VAT (BT-112) the total excluding VAT plus the total VAT.
Rounding is half up (0.005 → 0.01), the commercial rounding French invoices use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

# The French rates a building-maintenance quote uses (CGI art. 278, 279-0 bis, 278-0 bis A).
STANDARD_RATE = Decimal("20.00")
INTERMEDIATE_RATE = Decimal("10.00")
REDUCED_RATE = Decimal("5.50")
RATES = (STANDARD_RATE, INTERMEDIATE_RATE, REDUCED_RATE, Decimal("0.00"))


def _decimal(value: object, name: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number")
    return value


def to_cent(amount: Decimal) -> Decimal:
    """`amount` rounded half up to the cent."""
    return _decimal(amount, "amount").quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    """What the amounts of a line depend on: its quantity, unit price excl.
    VAT (€) and VAT rate (percent, e.g. Decimal("5.50"))."""

    quantity: Decimal
    unit_price: Decimal
    vat_rate: Decimal

    def __post_init__(self) -> None:
        _decimal(self.quantity, "quantity")
        _decimal(self.unit_price, "unit_price")
        _decimal(self.vat_rate, "vat_rate")
        if self.vat_rate < 0 or self.vat_rate > HUNDRED:
            raise ValueError("vat_rate is a percentage between 0 and 100")


def line_net_amount(line: Line) -> Decimal:
    """BT-131: quantity × unit price, rounded to the cent."""
    return to_cent(line.quantity * line.unit_price)


@dataclass(frozen=True)
class VatBreakdown:
    """One rate of the VAT breakdown (BG-23)."""

    rate: Decimal
    taxable_amount: Decimal  # BT-116
    vat_amount: Decimal  # BT-117


@dataclass(frozen=True)
class Totals:
    line_amounts: tuple[Decimal, ...]  # BT-131, in the lines' order
    vat: tuple[VatBreakdown, ...]  # highest rate first
    total_excl_vat: Decimal  # BT-109
    total_vat: Decimal  # BT-110
    total_incl_vat: Decimal  # BT-112


def vat_amount(taxable_amount: Decimal, rate: Decimal) -> Decimal:
    """BT-117: the rate applied to the rate's taxable amount, rounded once."""
    return to_cent(_decimal(taxable_amount, "taxable_amount") * _decimal(rate, "rate") / HUNDRED)


def totals(lines: Iterable[Line]) -> Totals:
    """Every amount of a quote or an invoice from its lines."""
    lines = tuple(lines)
    amounts = tuple(line_net_amount(line) for line in lines)
    by_rate: dict[Decimal, Decimal] = {}
    for line, amount in zip(lines, amounts, strict=True):
        # Decimal("10") and Decimal("10.00") are one rate.
        rate = line.vat_rate.quantize(CENT)
        by_rate[rate] = by_rate.get(rate, Decimal("0.00")) + amount
    breakdown = tuple(
        VatBreakdown(rate=rate, taxable_amount=base, vat_amount=vat_amount(base, rate))
        for rate, base in sorted(by_rate.items(), reverse=True)
    )
    total_excl_vat = sum(amounts, Decimal("0.00"))
    total_vat = sum((entry.vat_amount for entry in breakdown), Decimal("0.00"))
    return Totals(
        line_amounts=amounts,
        vat=breakdown,
        total_excl_vat=total_excl_vat,
        total_vat=total_vat,
        total_incl_vat=total_excl_vat + total_vat,
    )


def format_euros(amount: Decimal) -> str:
    """`1 234,56 €` (French: a narrow no-break space between thousands, a comma)."""
    sign = "-" if amount < 0 else ""
    units, cents = f"{abs(to_cent(amount)):.2f}".split(".")
    groups: list[str] = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    return f"{sign}{'\u202f'.join(groups)},{cents}\u00a0€"


def format_rate(rate: Decimal) -> str:
    """`20 %`, `5,5 %`."""
    text = f"{rate.normalize():f}".replace(".", ",")
    return f"{text}\u00a0%"
