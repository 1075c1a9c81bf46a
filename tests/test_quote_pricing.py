"""quotes/pricing.py: EN 16931 rounding (line net amounts to the cent, then VAT
once per rate), without a database: hand-computed cases and properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotes import pricing
from quotes.pricing import Line

D = Decimal


def test_a_three_line_quote_at_20_10_and_5_5_percent_matches_the_worked_example_to_the_cent():
    # Worked by hand:
    #   2 × 48,50 at 10 %     = 97,00
    #   1,5 × 62,35 at 20 %   = 93,525   -> 93,53 (half up)
    #   12,5 × 17,99 at 5,5 % = 224,875  -> 224,88
    #   total excl. VAT       = 415,41
    #   VAT 20 %: 93,53 × 0,20   = 18,706   -> 18,71
    #   VAT 10 %: 97,00 × 0,10   =  9,70
    #   VAT 5,5 %: 224,88 × 0,055 = 12,3684 -> 12,37
    #   total VAT = 40,78; total incl. VAT = 456,19
    totals = pricing.totals(
        [
            Line(D("2"), D("48.50"), D("10.00")),
            Line(D("1.5"), D("62.35"), D("20.00")),
            Line(D("12.5"), D("17.99"), D("5.50")),
        ]
    )
    assert totals.line_amounts == (D("97.00"), D("93.53"), D("224.88"))
    assert [(entry.rate, entry.taxable_amount, entry.vat_amount) for entry in totals.vat] == [
        (D("20.00"), D("93.53"), D("18.71")),
        (D("10.00"), D("97.00"), D("9.70")),
        (D("5.50"), D("224.88"), D("12.37")),
    ]
    assert totals.total_excl_vat == D("415.41")
    assert totals.total_vat == D("40.78")
    assert totals.total_incl_vat == D("456.19")


def test_vat_is_rounded_once_per_rate_not_line_by_line():
    # Line by line: 0,0055 -> 0,01 twice = 0,02. EN 16931: (0,10 + 0,10) × 5,5 % = 0,011 -> 0,01.
    totals = pricing.totals([Line(D("1"), D("0.10"), D("5.50")), Line(D("1"), D("0.10"), D("5.5"))])
    assert len(totals.vat) == 1
    assert totals.vat[0].vat_amount == D("0.01")
    assert totals.total_incl_vat == D("0.21")


def test_half_a_cent_rounds_up():
    assert pricing.line_net_amount(Line(D("1"), D("0.125"), D("20"))) == D("0.13")
    assert pricing.line_net_amount(Line(D("3"), D("0.335"), D("20"))) == D("1.01")  # 1,005


def test_an_empty_quote_totals_zero():
    totals = pricing.totals([])
    assert (totals.total_excl_vat, totals.total_vat, totals.total_incl_vat, totals.vat) == (D(0), D(0), D(0), ())


@pytest.mark.parametrize("field", ["quantity", "unit_price", "vat_rate"])
def test_a_float_is_refused(field):
    values = {"quantity": D("1"), "unit_price": D("10.00"), "vat_rate": D("20")}
    values[field] = 1.1
    with pytest.raises(TypeError):
        Line(**values)


def test_a_rate_outside_0_to_100_is_refused():
    with pytest.raises(ValueError):
        Line(D("1"), D("1"), D("120"))


def test_amounts_read_in_french():
    assert pricing.format_euros(D("1234567.5")) == "1\u202f234\u202f567,50\u00a0€"
    assert pricing.format_rate(D("5.50")) == "5,5\u00a0%"
    assert pricing.format_rate(D("20.00")) == "20\u00a0%"


quantities = st.decimals(min_value=D("0.01"), max_value=D("10000"), places=2)
prices = st.decimals(min_value=D("0"), max_value=D("100000"), places=2)
rates = st.sampled_from([D("20.00"), D("10.00"), D("5.50"), D("0.00")])
lines = st.lists(st.builds(Line, quantities, prices, rates), max_size=30)


@given(lines)
def test_totals_are_the_sum_of_their_parts(items):
    totals = pricing.totals(items)
    assert totals.total_excl_vat == sum(totals.line_amounts, D(0))
    assert totals.total_excl_vat == sum((entry.taxable_amount for entry in totals.vat), D(0))
    assert totals.total_vat == sum((entry.vat_amount for entry in totals.vat), D(0))
    assert totals.total_incl_vat == totals.total_excl_vat + totals.total_vat


@given(lines)
def test_every_amount_is_a_decimal_to_the_cent(items):
    totals = pricing.totals(items)
    amounts = [*totals.line_amounts, totals.total_excl_vat, totals.total_vat, totals.total_incl_vat]
    amounts += [value for entry in totals.vat for value in (entry.taxable_amount, entry.vat_amount)]
    for amount in amounts:
        assert type(amount) is Decimal
        assert amount == amount.quantize(D("0.01"))


@given(lines)
def test_each_rate_vat_is_within_half_a_cent_of_the_exact_vat(items):
    for entry in pricing.totals(items).vat:
        assert abs(entry.vat_amount - entry.taxable_amount * entry.rate / 100) <= D("0.005")


@given(lines, st.randoms())
def test_the_order_of_the_lines_changes_no_total(items, random):
    shuffled = list(items)
    random.shuffle(shuffled)
    first, second = pricing.totals(items), pricing.totals(shuffled)
    assert (first.total_excl_vat, first.total_vat, first.vat) == (second.total_excl_vat, second.total_vat, second.vat)


@given(lines)
def test_each_line_amount_is_within_half_a_cent_of_quantity_times_price(items):
    for line, amount in zip(items, pricing.totals(items).line_amounts, strict=True):
        assert abs(amount - line.quantity * line.unit_price) <= D("0.005")
