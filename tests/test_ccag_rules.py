"""Issue 11, the pure modules (no database): contract time and money as the
CCAG-MI 2021 counts them (seed 002), each numbered case of the issue worked out
by hand in its test, and properties of §3.2 with hypothesis."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders import admission, deadlines
from orders.penalties import (
    CCAG_TERMS,
    LateOrder,
    PenaltyTerms,
    SharingBreach,
    SharingCounting,
    contract_late_penalty,
    data_sharing_penalty,
    order_late_penalty,
)

PARIS = ZoneInfo("Europe/Paris")
D = Decimal
S = "\u00a0"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


# --- 1. Due dates (§3.2) --------------------------------------------------------------------


def test_a_fifteen_day_period_notified_on_friday_4_april_2025_ends_on_tuesday_22_april_at_midnight():
    """§3.2.1-3.2.4. Notified Fri 4 Apr 2025 08:00: the period starts on Sat 5 Apr
    at 0 h; 15 calendar days make Sat 19 Apr its last day; Sat 19 and Sun 20 are
    not working days, Mon 21 is Easter Monday: the last day moves to Tue 22 Apr,
    and the period ends at midnight, i.e. Wed 23 Apr 00:00 is the first instant
    too late. (The portal said Sat 19 Apr 08:00.)"""
    period = deadlines.execution_period(paris(2025, 4, 4, 8, 0), days=15)
    assert period.last_day == date(2025, 4, 22)
    assert period.ends_at == paris(2025, 4, 23, 0, 0)
    assert period.at_midnight


def test_a_72_hour_period_notified_at_14_20_starts_at_15_00_and_ends_three_days_later_at_15_00():
    """§3.2.1: a period in hours starts at the hour following the fact. Notified
    Mon 3 Mar 2025 14:20 → starts 15:00 → 72 h later, Thu 6 Mar 2025 15:00."""
    period = deadlines.execution_period(paris(2025, 3, 3, 14, 20), hours=72)
    assert period.ends_at == paris(2025, 3, 6, 15, 0)
    assert period.last_day == date(2025, 3, 6)
    assert not period.at_midnight


def test_alsace_moselle_adds_good_friday_and_saint_stephen():
    """Good Friday 18 Apr 2025 and 26 Dec are public holidays in 57, 67 and 68 only.
    Thu 3 Apr + 15 days = Fri 18 Apr: a working day in Paris; in Metz it is Good
    Friday, then Sat, Sun, Easter Monday: Tue 22 Apr. Thu 11 Dec 2025 + 15 = Fri
    26 Dec: in Strasbourg (67) and Mulhouse (68) the next working day is Mon 29 Dec."""
    assert deadlines.last_day(date(2025, 4, 3), 15) == date(2025, 4, 18)
    assert deadlines.last_day(date(2025, 4, 3), 15, "57") == date(2025, 4, 22)
    assert deadlines.last_day(date(2025, 12, 11), 15, "75") == date(2025, 12, 26)
    assert deadlines.last_day(date(2025, 12, 11), 15, "67") == date(2025, 12, 29)
    assert deadlines.last_day(date(2025, 12, 11), 15, "68") == date(2025, 12, 29)
    assert len(deadlines.public_holidays(2025, "57")) == len(deadlines.public_holidays(2025)) + 2 == 13


@pytest.mark.parametrize(
    ("postcode", "department"),
    [("57000", "57"), ("67100", "67"), ("68100", "68"), ("75011", "75"), ("97400", "974"), ("", None), ("5700", None)],
)
def test_the_department_comes_from_the_postcode(postcode, department):
    assert deadlines.department_of(postcode) == department


def test_months_run_from_date_to_date_and_end_on_the_last_day_of_a_short_month():
    """§3.2.3: 15 Jan + 1 month = 15 Feb; 31 Jan 2025 + 1 month = 28 Feb 2025 (a
    Friday); 31 Jan 2024 + 1 = 29 Feb 2024; 30 Apr 2025 + 1 month = Fri 30 May
    2025, but 31 Jul 2025 + 1 month = Sun 31 Aug → Mon 1 Sep (§3.2.4)."""
    assert deadlines.add_months(date(2025, 1, 15), 1) == date(2025, 2, 15)
    assert deadlines.period_in_months(date(2025, 1, 31), 1).last_day == date(2025, 2, 28)
    assert deadlines.period_in_months(date(2024, 1, 31), 1).last_day == date(2024, 2, 29)
    assert deadlines.period_in_months(date(2025, 7, 31), 1).last_day == date(2025, 9, 1)
    assert deadlines.add_months(date(2025, 11, 30), 3) == date(2026, 2, 28)


# --- 2. Days late ---------------------------------------------------------------------------


def test_works_ending_on_25_march_after_a_period_ending_on_18_march_at_midnight_are_seven_days_late():
    """§15.1 ("à compter du lendemain du jour où le délai ... est expiré"): 19, 20,
    21, 22, 23, 24, 25 March = 7 days (whole 24-hour spans gave 6)."""
    ends_at = deadlines.end_of(date(2025, 3, 18))
    assert deadlines.days_late(ends_at, paris(2025, 3, 25, 9, 0)) == 7


def test_on_its_last_day_an_order_is_not_late_and_an_extension_may_still_be_asked_until_midnight():
    """§3.2.2: the period expires at midnight on its last day (Tue 22 Apr 2025)."""
    period = deadlines.execution_period(paris(2025, 4, 4, 8, 0), days=15)
    assert deadlines.days_late(period.ends_at, paris(2025, 4, 22, 23, 59)) == 0
    assert period.is_open(paris(2025, 4, 22, 23, 59, 59))
    assert not period.is_open(paris(2025, 4, 23, 0, 0))
    assert deadlines.days_late(period.ends_at, paris(2025, 4, 23, 0, 0)) == 1
    # §14.3.4: a cause on 20 April, whose own 15 days run to 5 May, is cut off at the period's end.
    cut_off = deadlines.extension_deadline(date(2025, 4, 20), period.ends_at)
    assert (cut_off.last_day, cut_off.ends_at) == (date(2025, 4, 22), paris(2025, 4, 23, 0, 0))


# --- 3. Finished late orders keep their penalty -------------------------------------------


def test_four_orders_finished_sixty_days_late_and_one_open_forty_eight_days_late_owe_1584_euros():
    """§15.1-15.3. Finished: 15 000 × 60 / 3000 = 300,00 each (cap 1 500,00), × 4 =
    1 200,00; open: 24 000 × 48 / 3000 = 384,00 (cap 2 400,00). Total 1 584,00 >
    1 000: no exemption, all due. (The issue's text says 1 594,00; 4 × 300 + 384 is
    1 584, and no whole number of days gives 1 594 with these values.)"""
    finished = [LateOrder(f"F-{n}", D("15000.00"), 60, finished=True) for n in range(4)]
    penalty = contract_late_penalty([*finished, LateOrder("O-1", D("24000.00"), 48)])
    assert [p.amount for p in penalty.orders] == [D("300.00")] * 4 + [D("384.00")]
    assert (penalty.total, penalty.exempt, penalty.due) == (D("1584.00"), False, D("1584.00"))
    assert "(arrêté à la fin des travaux)" in penalty.orders[0].explanation


# --- 4. V is the late part ------------------------------------------------------------------


def test_lines_done_on_time_are_not_in_v_unless_the_whole_is_unusable():
    """§15.1: 5 000 € done on time + 1 000 € late, 12 days: V = 1 000, 1 000 × 12 /
    3000 = 4,00 (not 24,00); cap 10 % of the order, 600,00. The office's override
    "the whole is unusable": V = 6 000, 6 000 × 12 / 3000 = 24,00."""
    part = order_late_penalty(LateOrder("BC-1", D("1000.00"), 12, order_value=D("6000.00")))
    assert (part.amount, part.cap) == (D("4.00"), D("600.00"))
    assert part.explanation == f"1{S}000,00{S}€ HT (partie en retard) × 12{S}j / 3000 = 4,00{S}€."
    whole = order_late_penalty(LateOrder("BC-1", D("6000.00"), 12, order_value=D("6000.00"), whole_unusable=True))
    assert whole.amount == D("24.00")
    assert "l'ensemble, que le retard rend inutilisable" in whole.explanation


# --- 5. Each contract's own terms -------------------------------------------------------------


def test_a_ccap_with_a_fixed_daily_amount_no_cap_and_no_exemption():
    """Seed 004 §14.1: 75,00 € per day of delay, "aucune exonération". Two orders,
    10 and 4 days late: 750,00 + 300,00 = 1 050,00... and 3 days alone = 225,00, due
    although under 1 000 € (no exemption); no cap: 400 days on a 1 000 € order =
    30 000,00."""
    terms = PenaltyTerms(divisor=None, daily_amount=D("75.00"), cap_percent=None, exemption=None)
    two = contract_late_penalty([LateOrder("A", D("5000"), 10), LateOrder("B", D("100"), 4)], terms)
    assert (two.total, two.due) == (D("1050.00"), D("1050.00"))
    alone = contract_late_penalty([LateOrder("C", D("100"), 3)], terms)
    assert (alone.total, alone.exempt, alone.due) == (D("225.00"), False, D("225.00"))
    assert "aucune exonération" in alone.explanation
    assert order_late_penalty(LateOrder("D", D("1000"), 400), terms).amount == D("30000.00")
    assert terms.explanation == (
        f"Conditions propres au marché (CCAP, dérogeant au CCAG-MI) : P = 75,00{S}€ par jour de retard, "
        "sans plafond, sans exonération."
    )
    assert CCAG_TERMS.is_ccag and not terms.is_ccag


def test_another_divisor_cap_and_threshold():
    """V × R / 1000, cap 5 %, exemption up to 300 €: 2 000 × 20 / 1000 = 40,00; 2 000 ×
    100 / 1000 = 200,00 capped at 5 % × 2 000 = 100,00; total 140,00 ≤ 300: exempt."""
    terms = PenaltyTerms(divisor=1000, cap_percent=D("5"), exemption=D("300.00"))
    penalty = contract_late_penalty([LateOrder("A", D("2000"), 20), LateOrder("B", D("2000"), 100)], terms)
    assert [p.amount for p in penalty.orders] == [D("40.00"), D("100.00")]
    assert (penalty.total, penalty.exempt, penalty.due) == (D("140.00"), True, D("0.00"))
    assert "plafonné à 5" in penalty.orders[1].explanation


def test_terms_need_a_divisor_or_a_daily_amount():
    with pytest.raises(ValueError, match="l'un ou l'autre"):
        PenaltyTerms(divisor=None)
    with pytest.raises(ValueError, match="l'un ou l'autre"):
        PenaltyTerms(divisor=3000, daily_amount=D("75"))


# --- 6. The data-sharing penalty ---------------------------------------------------------------


def outage(changes: int) -> list[SharingBreach]:
    """`changes` changes on Monday 2 November 2026 from 09:00, every 10 minutes,
    all shared at 16:00 the same day when the platform came back."""
    start = paris(2026, 11, 2, 9, 0)
    back = paris(2026, 11, 2, 16, 0)
    return [
        SharingBreach(delay=back - (start + timedelta(minutes=10 * n)), changed_at=start + timedelta(minutes=10 * n))
        for n in range(changes)
    ]


def test_ten_late_changes_during_one_outage_are_ten_days_per_change_or_one_per_calendar_day():
    """Annex §3.1 "150 euros par jour": per change, each of the 10 changes is late
    by less than a day: 10 started days × 150 = 1 500,00; per calendar day, they
    were all late on Monday 2 November only: 1 × 150 = 150,00."""
    per_change = data_sharing_penalty(outage(10), SharingCounting.PER_CHANGE)
    per_day = data_sharing_penalty(outage(10), SharingCounting.PER_DAY)
    assert (per_change.days, per_change.total) == (10, D("1500.00"))
    assert (per_day.days, per_day.total) == (1, D("150.00"))
    assert "chaque jour calendaire où au moins une modification était en retard compte une fois" in (
        per_day.explanation
    )


def test_a_change_typed_by_hand_after_22_days_costs_22_days_and_stops_there():
    """A change on 3 Nov 2026 09:00, given up and typed on the platform by hand on
    25 Nov 09:00: 22 days − 15 minutes = 22 started days × 150 = 3 300,00, and no
    more whatever the date (the breach is closed). Per calendar day: 3 to 25
    November = 23 days × 150 = 3 450,00."""
    breach = SharingBreach(delay=timedelta(days=22), changed_at=paris(2026, 11, 3, 9, 0), by_hand=True, delivered=False)
    per_change = data_sharing_penalty([breach])
    assert per_change.total == D("3300.00")
    assert per_change.breaches[0].explanation.startswith(f"Saisi à la main sur la plateforme 22{S}j après")
    assert data_sharing_penalty([breach], SharingCounting.PER_DAY).total == D("3450.00")


def test_the_calendar_days_of_a_breach_start_when_the_fifteen_minutes_are_over():
    """A change at 23:50 shared at 00:20: late from 00:05 only: one calendar day (the
    second); a change at 23:40 shared at 00:20: late from 23:55: two days."""
    one = SharingBreach(delay=timedelta(minutes=30), changed_at=paris(2026, 11, 2, 23, 50))
    two = SharingBreach(delay=timedelta(minutes=40), changed_at=paris(2026, 11, 2, 23, 40))
    assert one.late_days == {date(2026, 11, 3)}
    assert two.late_days == {date(2026, 11, 2), date(2026, 11, 3)}


# --- 7, 8. Extensions, suspensions and sursis ------------------------------------------------


def test_each_pending_cause_has_its_own_fifteen_days_cut_off_at_the_end_of_the_period():
    """§14.3.2, §14.3.4: the period ends on Mon 30 Nov 2026 at midnight. A cause of
    Tue 3 Nov may be signalled until Wed 18 Nov; one of Mon 23 Nov until the end of
    the period, 30 Nov at midnight (its own 15 days would run to 8 Dec)."""
    due = deadlines.end_of(date(2026, 11, 30))
    early = deadlines.extension_deadline(date(2026, 11, 3), due)
    late = deadlines.extension_deadline(date(2026, 11, 23), due)
    assert (early.last_day, early.ends_at) == (date(2026, 11, 18), paris(2026, 11, 19, 0, 0))
    assert (late.last_day, late.ends_at) == (date(2026, 11, 30), due)


def test_a_suspension_moves_the_last_day_by_its_length_then_past_the_weekend():
    """§30.6: a period ending Tue 17 Nov 2026, stopped 7 days: Tue 24 Nov. One ending
    Fri 20 Nov, stopped 1 day: Sat 21 → Mon 23 Nov (§3.2.4). A 72-hour period ending
    Thu 6 Mar 2025 at 15:00, stopped 2 days: Sat 8 Mar at 15:00 (hours do not move)."""
    assert deadlines.extended(deadlines.end_of(date(2026, 11, 17)), 7).last_day == date(2026, 11, 24)
    assert deadlines.extended(deadlines.end_of(date(2026, 11, 20)), 1).last_day == date(2026, 11, 23)
    assert deadlines.extended(paris(2025, 3, 6, 15, 0), 2).ends_at == paris(2025, 3, 8, 15, 0)


# --- 10. The answer to a penalty notice: 15 days -----------------------------------------------


def test_the_answer_to_a_penalty_notice_is_due_fifteen_days_after_its_receipt():
    """§15.1: an invitation received Mon 2 Nov 2026: the 15 days end Tue 17 Nov at
    midnight; one received Fri 4 Dec 2026: Sat 19 Dec → Mon 21 Dec."""
    assert deadlines.period(date(2026, 11, 2), 15).ends_at == paris(2026, 11, 18, 0, 0)
    assert deadlines.period(date(2026, 12, 4), 15).last_day == date(2026, 12, 21)


# --- 9. Admission (§33-34) -------------------------------------------------------------------


def test_the_buyer_has_seven_days_to_decide_then_admission_is_tacit():
    """§33.1, §34.1: works ended Mon 3 Nov 2025; 7 days → Mon 10 Nov (a working
    day, §3.2.4 leaves it). On 10 Nov: verifying, last day. On 11 Nov (a holiday,
    but the period is over): tacitly admitted, with effect on 10 Nov."""
    on_10 = admission.admission_status(date(2025, 11, 3), [], date(2025, 11, 10))
    assert (on_10.status, on_10.days_left, on_10.deadline.last_day) == (
        admission.Status.VERIFYING,
        0,
        date(2025, 11, 10),
    )
    on_11 = admission.admission_status(date(2025, 11, 3), [], date(2025, 11, 11))
    assert (on_11.status, on_11.effective_on, on_11.label) == (
        admission.Status.TACITLY_ADMITTED,
        date(2025, 11, 10),
        "Admis tacitement",
    )
    assert on_11.admitted


def test_with_a_technical_test_the_buyer_has_thirty_days():
    """§33.1: works ended Fri 31 Oct 2025 + 30 days = Sun 30 Nov → Mon 1 Dec."""
    status = admission.admission_status(date(2025, 10, 31), [], date(2025, 11, 20), verification_days=30)
    assert (status.deadline.last_day, status.days_left) == (date(2025, 12, 1), 11)


def test_admission_takes_effect_on_its_notification_and_a_reception_means_admitted():
    admitted = admission.admission_status(date(2025, 11, 3), [("admitted", date(2025, 11, 6))], date(2025, 12, 1))
    assert (admitted.status, admitted.effective_on) == (admission.Status.ADMITTED, date(2025, 11, 6))
    received = admission.admission_status(date(2025, 11, 3), [], date(2025, 12, 1), reception_date=date(2025, 11, 5))
    assert (received.status, received.effective_on) == (admission.Status.ADMITTED, date(2025, 11, 5))


def test_an_adjournment_gives_ten_days_to_accept_and_fifteen_to_present_again():
    """§34.2.1: adjourned Wed 5 Nov 2025: accept by Sat 15 Nov → Mon 17 Nov; present
    again by Thu 20 Nov. Presented again on 18 Nov: the buyer has its 7 days again
    (§34.2.2), to Tue 25 Nov."""
    steps = [("adjourned", date(2025, 11, 5))]
    adjourned = admission.admission_status(date(2025, 11, 3), steps, date(2025, 11, 6))
    assert (adjourned.status, adjourned.deadline.last_day, adjourned.days_left) == (
        admission.Status.ADJOURNED,
        date(2025, 11, 17),
        11,
    )
    assert "présenter à nouveau au plus tard le 20/11/2025" in adjourned.explanation
    accepted = admission.admission_status(
        date(2025, 11, 3), [*steps, ("adjournment_accepted", date(2025, 11, 7))], date(2025, 11, 8)
    )
    assert accepted.deadline.last_day == date(2025, 11, 20)
    again = admission.admission_status(
        date(2025, 11, 3),
        [*steps, ("adjournment_accepted", date(2025, 11, 7)), ("presented", date(2025, 11, 18))],
        date(2025, 11, 19),
    )
    assert (again.status, again.deadline.last_day) == (admission.Status.VERIFYING, date(2025, 11, 25))


def test_silence_after_an_adjournment_ends_in_a_rejection_and_a_rejection_means_doing_it_again():
    """§34.2.1: adjourned 5 Nov 2025, not accepted by Mon 17 Nov; the buyer then has
    15 days, to Tue 2 Dec; silent past them: rejected on 2 Dec. §34.4: a notified
    rejection on 6 Nov: the works are to be done again."""
    steps = [("adjourned", date(2025, 11, 5))]
    waiting = admission.admission_status(date(2025, 11, 3), steps, date(2025, 11, 20))
    assert (waiting.status, waiting.deadline.last_day) == (admission.Status.ADJOURNED, date(2025, 12, 2))
    rejected = admission.admission_status(date(2025, 11, 3), steps, date(2025, 12, 3))
    assert (rejected.status, rejected.effective_on) == (admission.Status.TACITLY_REJECTED, date(2025, 12, 2))
    notified = admission.admission_status(date(2025, 11, 3), [("rejected", date(2025, 11, 6))], date(2025, 11, 7))
    assert notified.status == admission.Status.REJECTED
    assert "à exécuter à nouveau" in notified.explanation


# --- Properties of §3.2 ----------------------------------------------------------------------

DEPARTMENTS = st.sampled_from([None, "57", "67", "68", "75", "974"])
# Hypothesis wants naive bounds, and attaches the time zone itself.
MOMENTS = st.datetimes(
    min_value=datetime(2024, 1, 1),  # noqa: DTZ001
    max_value=datetime(2030, 12, 31),  # noqa: DTZ001
    timezones=st.just(PARIS),
    allow_imaginary=False,
)


@given(
    fact=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)), days=st.integers(0, 400), dep=DEPARTMENTS
)
def test_a_period_in_days_never_ends_on_a_saturday_a_sunday_or_a_holiday(fact, days, dep):
    period = deadlines.period(fact, days, dep)
    assert period.last_day.weekday() < 5
    assert period.last_day not in deadlines.public_holidays(period.last_day.year, dep)
    assert period.last_day >= fact + timedelta(days=days)
    assert period.at_midnight


@given(
    notified=MOMENTS,
    days=st.integers(1, 120),
    extension=st.integers(1, 60),
    until=MOMENTS,
    dep=DEPARTMENTS,
)
def test_an_extension_never_makes_an_order_later(notified, days, extension, until, dep):
    period = deadlines.execution_period(notified, days=days, department=dep)
    longer = deadlines.extended(period.ends_at, extension, dep)
    assert longer.ends_at > period.ends_at
    assert deadlines.days_late(longer.ends_at, until) <= deadlines.days_late(period.ends_at, until)


@given(notified=MOMENTS, hours=st.integers(1, 500))
def test_a_period_in_hours_ends_on_a_full_hour_at_least_its_hours_after_the_fact(notified, hours):
    period = deadlines.period_in_hours(notified, hours)
    assert period.ends_at.astimezone(PARIS).minute == 0
    # Real hours, in UTC: Python subtracts two Paris times as wall-clock times.
    elapsed = period.ends_at.astimezone(ZoneInfo("UTC")) - notified.astimezone(ZoneInfo("UTC"))
    assert timedelta(hours=hours) < elapsed <= timedelta(hours=hours + 1)


@given(due=MOMENTS, until=MOMENTS)
def test_no_day_late_before_the_period_is_over(due, until):
    if until < due:
        assert deadlines.days_late(due, until) == 0
