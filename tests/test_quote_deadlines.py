"""quotes/deadlines.py (pure): the buyer's 30 days of CCAG-MI §52, counted as
§3.2 counts, and the quote's validity. Hand-computed dates."""

from __future__ import annotations

from datetime import date, datetime

from quotes import deadlines
from tests.conftest import PARIS


def test_the_30_days_end_on_the_30th_day_after_the_quote_is_sent():
    # Sent Tuesday 1 December 2026: the 30th day is Thursday 31 December.
    assert deadlines.answer_deadline(datetime(2026, 12, 1, 16, 0, tzinfo=PARIS)).last_day == date(2026, 12, 31)


def test_a_last_day_on_a_public_holiday_moves_to_the_next_working_day():
    # Sent Monday 12 October 2026: the 30th day is Wednesday 11 November (Armistice), so Thursday 12 November.
    assert deadlines.answer_deadline(datetime(2026, 10, 12, 9, 0, tzinfo=PARIS)).last_day == date(2026, 11, 12)


def test_a_last_day_on_a_weekend_moves_to_monday():
    # Sent Thursday 5 November 2026: the 30th day is Saturday 5 December, so Monday 7 December.
    assert deadlines.answer_deadline(datetime(2026, 11, 5, 9, 0, tzinfo=PARIS)).last_day == date(2026, 12, 7)


def test_the_days_left_and_what_the_supervisor_is_told():
    due = date(2026, 12, 31)
    assert deadlines.waiting(due, datetime(2026, 12, 30, 12, 0, tzinfo=PARIS)).label == "1 jour pour répondre"
    assert deadlines.waiting(due, datetime(2026, 12, 1, 12, 0, tzinfo=PARIS)).label == "30 jours pour répondre"
    assert deadlines.waiting(due, datetime(2026, 12, 31, 23, 0, tzinfo=PARIS)).label == "Dernier jour de réponse"
    over = deadlines.waiting(due, datetime(2027, 1, 1, 0, 30, tzinfo=PARIS))
    assert over.over and "les travaux peuvent être engagés (CCAG-MI §52)" in over.label


def test_a_quote_is_valid_through_its_last_day():
    valid_until = deadlines.valid_until(date(2026, 12, 1), 90)
    assert valid_until == date(2027, 3, 1)
    assert not deadlines.has_expired(valid_until, datetime(2027, 3, 1, 23, 59, tzinfo=PARIS))
    assert deadlines.has_expired(valid_until, datetime(2027, 3, 2, 0, 0, tzinfo=PARIS))
