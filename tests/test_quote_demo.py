"""The demo's quotes (`seed_demo_quotes` after `seed_demo`): every state, a
technician's request for a quote, created once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from orders.models import InterventionReport
from quotes.models import Quote, QuoteState


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_demo_has_quotes_in_every_state_and_a_request_to_take_up(db):
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo_quotes", stdout=out)
    assert "Devis de démonstration créés" in out.getvalue()
    assert set(Quote.objects.values_list("state", flat=True)) == set(QuoteState.values)
    assert InterventionReport.objects.filter(quote_needed=True).count() == 1
    again = io.StringIO()
    call_command("seed_demo_quotes", stdout=again)
    assert "rien à créer" in again.getvalue()
