"""Time on site (issue 16, item 7): counted from the start, the end and the
suspensions of the works rather than typed (typing remains possible), shown on
the report's page, the supervisor's order page and the report's PDF."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine
from pypdf import PdfReader

from orders import onsite, planning, reports, services, tasks, timing
from orders.models import InterventionReport
from tests.conftest import PARIS

START = datetime(2026, 12, 7, 8, 40, tzinfo=PARIS)  # Monday


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def clock():
    with time_machine.travel(START - timedelta(days=1), tick=False) as traveller:
        yield traveller


@pytest.fixture
def started(order, technician, clock):
    """Planned for 8:30 on Monday, started at 8:40 (the technician's time)."""
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=START - timedelta(minutes=10))
    clock.move_to(START)
    services.start_work(order, actor=technician, at=START)
    order.refresh_from_db()
    return order


def report(client, order, **fields):
    data = {"works_done": "Siphon remplacé", "signature_status": "absent", "time_on_site_minutes": "", **fields}
    return client.post(f"/commandes/{order.pk}/rapport/", data)


def page(client, url: str) -> str:
    return client.get(url).content.decode()


def pdf_words(report: InterventionReport) -> str:
    report.refresh_from_db()
    with report.document.file.open("rb") as stream:
        reader = PdfReader(io.BytesIO(stream.read()))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


# --- The count itself (pure) -----------------------------------------------------


def test_stints_run_from_start_or_resume_to_suspend_or_finish():
    monday, tuesday = START, START + timedelta(days=1)
    events = [
        ("plan", monday - timedelta(days=2)),
        ("start", monday),  # 8:40
        ("set_progress", monday + timedelta(minutes=30)),
        ("suspend", monday + timedelta(minutes=80)),  # 10:00, waiting for a part
        ("resume", tuesday.replace(hour=14, minute=0)),
        ("finish", tuesday.replace(hour=15, minute=30)),
    ]
    found = onsite.stints(events)
    assert [(stint.start.hour, stint.end.hour) for stint in found] == [(8, 10), (14, 15)]
    total = onsite.on_site(found, until=tuesday.replace(hour=18))
    assert onsite.minutes(total) == 80 + 90
    # From a report written on Monday at 9:30: what is left.
    assert onsite.minutes(onsite.on_site(found, since=monday.replace(hour=9, minute=30), until=tuesday)) == 30
    assert onsite.display(170) == "2 h 50" and onsite.display(120) == "2 h" and onsite.display(45) == "45 min"


def test_a_stint_still_open_counts_up_to_the_end_asked_and_a_stray_close_is_skipped():
    # Suspended at the appointment (the occupant was out), then started: one stint, still open.
    running = onsite.stints([("suspend", START - timedelta(hours=1)), ("start", START), ("start", START)])
    assert running == [onsite.Stint(START, None)]
    assert onsite.minutes(onsite.on_site(running, until=START + timedelta(minutes=65))) == 65
    assert onsite.on_site(running, until=START - timedelta(minutes=5)) == timedelta(0)


# --- Through the pages -------------------------------------------------------------


def test_the_form_says_what_an_empty_time_would_count(client, started, technician, clock):
    client.force_login(technician)
    clock.move_to(START + timedelta(minutes=75))
    html = page(client, f"/commandes/{started.pk}/rapport/")
    assert (
        "Laissez vide : calculé d&#x27;après le début, la fin et les suspensions des travaux (1 h 15 à cette heure)."
        in html
    )


def test_an_empty_time_is_counted_until_the_end_of_the_works_and_the_pdf_says_so(
    client, started, technician, supervisor, clock
):
    client.force_login(technician)
    clock.move_to(START + timedelta(minutes=80))
    services.suspend_work(started, actor=technician, reason="quote_request")  # 10:00, a part to order
    clock.move_to(START + timedelta(days=1, hours=5, minutes=20))  # Tuesday 14:00
    services.resume_work(started, actor=technician)
    clock.move_to(START + timedelta(days=1, hours=6, minutes=20))  # 15:00
    response = report(client, started)
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    saved = InterventionReport.objects.get()
    assert saved.time_on_site_minutes is None
    detail = page(client, f"/commandes/{started.pk}/rapports/{saved.pk}/")
    assert (
        '2 h 20 <small class="muted">(calculé d&#x27;après le début, la fin et les suspensions des travaux, '
        "travaux en cours)" in detail
    )

    clock.move_to(START + timedelta(days=1, hours=6, minutes=50))  # 15:30
    started.refresh_from_db()
    reports.finish_work(started, actor=technician)
    tasks.render_report_pdf(saved.pk)
    assert "Temps sur place 2 h 50" in pdf_words(saved)
    assert "(calculé d&#x27;après le début, la fin et les suspensions des travaux)" in page(
        client, f"/commandes/{started.pk}/rapports/{saved.pk}/"
    )
    client.force_login(supervisor)
    html = page(client, f"/pilotage/commandes/{started.pk}/")
    assert '<dt>Temps sur place</dt><dd>2 h 50 <small class="muted">(début, fin et suspensions)</small>' in html


def test_a_typed_time_wins_and_both_are_shown(client, started, technician, supervisor, clock):
    client.force_login(technician)
    clock.move_to(START + timedelta(minutes=80))
    report(client, started, time_on_site_minutes="90")
    saved = InterventionReport.objects.get()
    assert saved.time_on_site_minutes == 90
    detail = page(client, f"/commandes/{started.pk}/rapports/{saved.pk}/")
    assert '1 h 30 <small class="muted">(saisi par le technicien ; calculé : 1 h 20)</small>' in detail
    client.force_login(supervisor)
    html = page(client, f"/pilotage/commandes/{started.pk}/")
    assert '1 h 20 à cette heure <small class="muted">(début, fin et suspensions ; saisi aux rapports : 1 h 30)' in html


def test_each_report_counts_the_time_since_the_one_before(client, started, technician, clock):
    client.force_login(technician)
    clock.move_to(START + timedelta(minutes=50))  # 9:30: a first report
    report(client, started)
    clock.move_to(START + timedelta(minutes=80))  # 10:00: a second one
    report(client, started)
    first, second = InterventionReport.objects.order_by("created_at")
    assert timing.time_on_site(first).counted == 50
    assert timing.time_on_site(second).counted == 30


def test_a_time_that_cannot_be_counted_must_be_typed(client, started, technician, clock):
    client.force_login(technician)
    clock.move_to(START + timedelta(hours=30))  # started yesterday, never suspended
    response = report(client, started)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "dépasse 24 heures : indiquez le temps réellement passé sur place." in response.content.decode()
    assert not InterventionReport.objects.exists()
    assert report(client, started, time_on_site_minutes="120").status_code == HTTPStatus.FOUND
