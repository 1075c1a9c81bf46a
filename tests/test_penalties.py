"""The penalty module (orders/penalties.py), without a database, against cases computed by hand.

Every expected figure below was worked out on paper from the clauses (CCAG-MI
2021 art. 15, the platform annex §3.1), not by calling the module."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from orders.deadlines import days_late
from orders.durations import duration
from orders.penalties import (
    LateOrder,
    SharingBreach,
    breach_days,
    breach_penalty,
    contract_late_penalty,
    data_sharing_by_contract,
    data_sharing_penalty,
    euros,
    exposure,
    late_penalties_by_contract,
    order_late_penalty,
)

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=PARIS)
D = Decimal
S = "\u00a0"  # the no-break space of French figures


def late(value: str, days: int, reference: str = "BC-1", **extra) -> LateOrder:
    return LateOrder(reference=reference, value=D(value), days_late=days, **extra)


# --- Formatting ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0", f"0,00{S}€"),
        ("5", f"5,00{S}€"),
        ("49.36", f"49,36{S}€"),
        ("999.995", f"1{S}000,00{S}€"),
        ("1234567.891", f"1{S}234{S}567,89{S}€"),
        ("-12.5", f"-12,50{S}€"),
    ],
)
def test_amounts_read_the_french_way_rounded_half_up(amount, text):
    assert euros(D(amount)) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=40), f"0{S}min"),
        (timedelta(minutes=16), f"16{S}min"),
        (timedelta(hours=2, minutes=5), f"2{S}h 05{S}min"),
        (timedelta(days=1), f"1{S}j"),
        (timedelta(days=2, hours=3, minutes=7, seconds=59), f"2{S}j 3{S}h 07{S}min"),
    ],
)
def test_delays_read_in_days_hours_and_minutes(delta, text):
    assert duration(delta) == text


# --- R: calendar days late (CCAG-MI art. 15.1 with §3.2) ----------------------------
# The old count (whole 24-hour spans since the due instant) was the bug of issue 11
# item 2: R counts calendar days from the day after the period expired.


@pytest.mark.parametrize(
    ("due_at", "days"),
    [
        (None, 0),  # no due date: never late
        (NOW + timedelta(hours=1), 0),  # not due yet
        (NOW, 0),  # the period ends this very moment: today is its last day, not a day late
        (NOW - timedelta(hours=9, minutes=59), 0),  # ended at 00:01 today: still no day after it
        (NOW - timedelta(hours=10), 1),  # ended at midnight: yesterday was its last day, today is day 1
        (NOW - timedelta(hours=30), 1),  # ended Monday 04:00 (an hourly period): Tuesday is day 1
        (NOW - timedelta(days=12, minutes=1), 12),  # ended Thursday 12 November 09:59: 13 to 24 = 12 days
    ],
)
def test_days_late_count_calendar_days_after_the_day_the_period_expired(due_at, days):
    """CCAG-MI art. 15.1: penalties "calculées à compter du lendemain du jour où le
    délai contractuel d'exécution des prestations est expiré"."""
    assert days_late(due_at, NOW) == days


# --- One order: P = V × R / 3000, capped at 10 % of V -------------------------------


def test_an_order_late_twelve_days_costs_its_value_times_twelve_over_three_thousand():
    # 1 234,00 × 12 / 3000 = 14 808 / 3000 = 4,936 → 4,94
    penalty = order_late_penalty(late("1234.00", 12))
    assert penalty.formula == D("4.94")
    assert penalty.cap == D("123.40")
    assert penalty.amount == D("4.94")
    assert not penalty.capped
    assert penalty.explanation == f"1{S}234,00{S}€ HT × 12{S}j / 3000 = 4,94{S}€."


def test_the_penalty_of_one_order_is_capped_at_ten_percent_of_its_value():
    # 1 234,00 × 400 / 3000 = 164,5333… → 164,53, more than 10 % (123,40)
    penalty = order_late_penalty(late("1234.00", 400))
    assert penalty.formula == D("164.53")
    assert penalty.amount == D("123.40")
    assert penalty.capped
    assert penalty.explanation == (
        f"1{S}234,00{S}€ HT × 400{S}j / 3000 = 164,53{S}€, plafonné à 10{S}% de la valeur HT : 123,40{S}€."
    )


def test_three_hundred_days_reach_the_cap_exactly_and_one_more_day_changes_nothing():
    # V × 300 / 3000 = V / 10: the cap itself
    at_cap = order_late_penalty(late("850.00", 300))
    beyond = order_late_penalty(late("850.00", 301))
    assert (at_cap.formula, at_cap.amount, at_cap.capped) == (D("85.00"), D("85.00"), False)
    assert (beyond.formula, beyond.amount, beyond.capped) == (D("85.28"), D("85.00"), True)


def test_a_penalty_ending_in_half_a_cent_rounds_up():
    # 15,00 × 1 / 3000 = 0,005 → 0,01 (half-even would give 0,00); cap 1,50
    assert order_late_penalty(late("15.00", 1)).amount == D("0.01")
    # 0,05 × 10 % = 0,005 → cap 0,01; 0,05 × 3000 / 3000 = 0,05 → capped at 0,01
    assert order_late_penalty(late("0.05", 3000)).amount == D("0.01")


def test_a_value_with_cents_from_fractional_quantities():
    # 1,5 h × 52,00 + 85,00 = 163,00; 163 × 7 / 3000 = 0,380333… → 0,38
    assert order_late_penalty(late("163.00", 7)).amount == D("0.38")
    # 1 111,11 × 7 / 3000 = 7 777,77 / 3000 = 2,59259 → 2,59
    assert order_late_penalty(late("1111.11", 7)).amount == D("2.59")


def test_only_the_late_part_is_charged_but_the_cap_is_on_the_whole_order():
    # V = 480,00 late out of an order of 2 000,00: 480 × 400 / 3000 = 64,00,
    # below the cap of 10 % × 2 000 = 200,00 (10 % of the late part, 48,00, would have capped it)
    penalty = order_late_penalty(late("480.00", 400, order_value=D("2000.00")))
    assert (penalty.formula, penalty.cap, penalty.amount) == (D("64.00"), D("200.00"), D("64.00"))
    assert "480,00" in penalty.explanation and "partie en retard" in penalty.explanation
    # 480 × 5 000 / 3000 = 800,00, capped at 200,00, and the explanation names the whole order's value
    capped = order_late_penalty(late("480.00", 5000, order_value=D("2000.00")))
    assert capped.amount == D("200.00")
    assert f"de la valeur HT de la commande (2{S}000,00{S}€) : 200,00{S}€" in capped.explanation


def test_a_late_part_larger_than_the_order_is_refused():
    with pytest.raises(ValueError):
        order_late_penalty(late("2500.00", 3, order_value=D("2000.00")))


@pytest.mark.parametrize("days", [0, -1, -30])
def test_no_penalty_without_a_whole_day_late(days):
    penalty = order_late_penalty(late("5000.00", days))
    assert penalty.amount == D("0.00")
    assert penalty.explanation.startswith("Aucun jour de retard après le dernier jour du délai")


def test_an_order_without_priced_lines_costs_nothing():
    penalty = order_late_penalty(late("0", 40))
    assert penalty.amount == D("0.00")
    assert "Valeur HT en retard nulle" in penalty.explanation


def test_a_negative_value_is_refused():
    with pytest.raises(ValueError):
        order_late_penalty(late("-10.00", 3))


# --- One contract: the 1 000 € exemption ---------------------------------------------


def test_a_contract_whose_total_is_exactly_one_thousand_euros_is_exempt():
    # 30 000,00 × 100 / 3000 = 1 000,00 (cap 3 000,00): not more than 1 000 → nothing due
    penalty = contract_late_penalty([late("30000.00", 100)])
    assert penalty.total == D("1000.00")
    assert penalty.exempt
    assert penalty.due == D("0.00")
    assert "exonération (CCAG-MI art. 15.3), rien n'est dû" in penalty.explanation


def test_a_contract_whose_total_is_one_cent_over_one_thousand_euros_owes_all_of_it():
    # 30 000,30 × 100 / 3000 = 1 000,01
    penalty = contract_late_penalty([late("30000.30", 100)])
    assert penalty.total == D("1000.01")
    assert not penalty.exempt
    assert penalty.due == D("1000.01")
    assert penalty.explanation == (
        f"Total des pénalités de retard : 1{S}000,01{S}€ (1 commande en retard), au-delà de 1{S}000,00{S}€ "
        "pour l'ensemble du marché : pas d'exonération (CCAG-MI art. 15.3), tout est dû."
    )


def test_several_late_orders_of_one_contract_add_up_after_each_cap_and_lose_the_exemption_together():
    # A: 12 000 × 20 / 3000 = 80,00
    # B: 9 000 × 400 / 3000 = 1 200,00, capped at 900,00
    # C: 2 500 × 45 / 3000 = 37,50
    # total 1 017,50 > 1 000: due in full, though each order alone is under 1 000
    penalty = contract_late_penalty([late("12000.00", 20, "A"), late("9000.00", 400, "B"), late("2500.00", 45, "C")])
    assert [p.amount for p in penalty.orders] == [D("80.00"), D("900.00"), D("37.50")]
    assert [p.order.reference for p in penalty.orders] == ["A", "B", "C"]
    assert penalty.total == D("1017.50")
    assert (penalty.exempt, penalty.due, penalty.order_count) == (False, D("1017.50"), 3)
    assert "3 commandes en retard" in penalty.explanation


def test_a_contract_under_the_threshold_with_several_orders_is_exempt():
    # 6 000 × 30 / 3000 = 60,00 ; 3 000 × 90 / 3000 = 90,00 ; total 150,00
    penalty = contract_late_penalty([late("6000.00", 30, "A"), late("3000.00", 90, "B")])
    assert (penalty.total, penalty.exempt, penalty.due) == (D("150.00"), True, D("0.00"))


def test_a_contract_without_late_orders_owes_nothing():
    penalty = contract_late_penalty([])
    assert (penalty.total, penalty.due, penalty.exempt) == (D("0.00"), D("0.00"), True)
    assert penalty.explanation == "Aucune commande en retard : rien n'est dû."
    short = contract_late_penalty([late("5000.00", 0)])
    assert short.explanation == "1 commande en retard, aucune d'un jour entier : rien n'est dû."


def test_the_exemption_is_per_contract_never_across_contracts():
    # X: 18 000 × 100 / 3000 = 600,00 ; Y: 9 000 × 200 / 3000 = 600,00
    # each is exempt; together (1 200,00) they would not be
    # Z: 60 000 × 60 / 3000 = 1 200,00 (cap 6 000): due
    by_contract = late_penalties_by_contract(
        [
            ("X", late("18000.00", 100, "X-1")),
            ("Y", late("9000.00", 200, "Y-1")),
            ("Z", late("60000.00", 60, "Z-1")),
        ]
    )
    assert {key: (p.total, p.due) for key, p in by_contract.items()} == {
        "X": (D("600.00"), D("0.00")),
        "Y": (D("600.00"), D("0.00")),
        "Z": (D("1200.00"), D("1200.00")),
    }


def test_orders_of_two_contracts_interleaved_are_grouped_by_contract():
    # contract 1: 45 000 × 50 / 3000 = 750,00 and 15 000 × 30 / 3000 = 150,00 → 900,00, exempt
    # contract 2: 21 000 × 200 / 3000 = 1 400,00 (cap 2 100) and 600 × 5 / 3000 = 1,00 → 1 401,00, due
    by_contract = late_penalties_by_contract(
        [
            (1, late("45000.00", 50, "A", key=11)),
            (2, late("21000.00", 200, "B", key=21)),
            (1, late("15000.00", 30, "C", key=12)),
            (2, late("600.00", 5, "D", key=22)),
        ]
    )
    assert [p.order.key for p in by_contract[1].orders] == [11, 12]
    assert (by_contract[1].total, by_contract[1].due) == (D("900.00"), D("0.00"))
    assert [p.order.key for p in by_contract[2].orders] == [21, 22]
    assert (by_contract[2].total, by_contract[2].due) == (D("1401.00"), D("1401.00"))


# --- Data sharing: 150 € per started day of delay, per breach ---------------------------


@pytest.mark.parametrize(
    ("delay", "days"),
    [
        (timedelta(0), 0),
        (timedelta(minutes=15), 0),  # within the limit: no breach
        (timedelta(minutes=15, seconds=1), 1),
        (timedelta(minutes=16), 1),
        (timedelta(hours=23), 1),
        (timedelta(hours=24, minutes=15), 1),  # 24 h past the limit: one whole day, no more
        (timedelta(hours=24, minutes=15, seconds=1), 2),  # one second into the second day
        (timedelta(days=3), 3),  # 2 d 23 h 45 past the limit
        (timedelta(days=3, minutes=16), 4),
    ],
)
def test_a_breach_counts_started_days_from_the_end_of_the_fifteen_minutes(delay, days):
    assert breach_days(delay) == days


def test_the_fifteen_minutes_are_the_relays_service_level():
    from orders import penalties
    from portal.relay import delivery, watch

    assert penalties.SHARING_LIMIT is delivery.SHARING_LIMIT is watch.SHARING_LIMIT == timedelta(minutes=15)


def test_one_breach_costs_one_hundred_and_fifty_euros_per_started_day():
    penalty = breach_penalty(SharingBreach(delay=timedelta(days=1, hours=2), reference="BC-7"))
    # 26 h − 15 min = 25 h 45: two started days → 300,00
    assert (penalty.days, penalty.amount) == (2, D("300.00"))
    assert penalty.explanation == (
        f"Transmis 1{S}j 2{S}h après la modification (limite 15{S}min) : "
        f"2{S}j de retard commencés × 150,00{S}€ = 300,00{S}€."
    )
    waiting = breach_penalty(SharingBreach(delay=timedelta(minutes=40), delivered=False))
    assert waiting.amount == D("150.00")
    assert waiting.explanation.startswith(f"Toujours pas transmis 40{S}min après la modification")


def test_breaches_add_up_and_are_not_capped():
    # 20 min → 1 day ; 1 d 2 h → 2 days ; 50 h → 49 h 45 past the limit → 3 days ; 30 days → 30
    penalty = data_sharing_penalty(
        SharingBreach(delay=delay)
        for delay in (timedelta(minutes=20), timedelta(days=1, hours=2), timedelta(hours=50), timedelta(days=30))
    )
    assert [p.days for p in penalty.breaches] == [1, 2, 3, 30]
    assert (penalty.days, penalty.total, penalty.breach_count) == (36, D("5400.00"), 4)
    assert penalty.explanation == (
        f"4 dépassements du délai de 15 minutes, 36{S}j de retard commencés × 150,00{S}€ "
        f"= 5{S}400,00{S}€ (pénalité non plafonnée ; chaque modification transmise en retard compte ses jours "
        "de retard commencés)."
    )


def test_no_breach_costs_nothing():
    penalty = data_sharing_penalty([])
    assert (penalty.total, penalty.days) == (D("0.00"), 0)
    assert penalty.explanation == "Aucun dépassement du délai de 15 minutes : rien n'est dû."


def test_breaches_are_grouped_by_contract():
    by_contract = data_sharing_by_contract(
        [
            ("X", SharingBreach(delay=timedelta(minutes=30))),
            ("Y", SharingBreach(delay=timedelta(hours=30))),
            ("X", SharingBreach(delay=timedelta(hours=2))),
        ]
    )
    assert {key: (p.breach_count, p.total) for key, p in by_contract.items()} == {
        "X": (2, D("300.00")),
        "Y": (1, D("300.00")),
    }


def test_the_exposure_of_a_contract_adds_what_is_due_of_both_penalties():
    # late: 600,00, exempt → 0 ; sharing: 2 breaches of one day → 300,00
    exempt = exposure(
        contract_late_penalty([late("18000.00", 100)]),
        data_sharing_penalty([SharingBreach(delay=timedelta(hours=1))] * 2),
    )
    assert exempt.total == D("300.00")
    assert exempt.explanation == (
        f"Pénalités de retard dues 0,00{S}€ + pénalités de partage des données 300,00{S}€ = 300,00{S}€."
    )
    # late: 1 401,00 due ; no breach
    due = exposure(contract_late_penalty([late("21000.00", 200), late("600.00", 5)]), None)
    assert due.total == D("1401.00")
    assert exposure(None, None).total == D("0.00")
