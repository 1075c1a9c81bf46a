"""The mapping to Intent logs, without a database: one row per state and event kind."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.relay.mapping import (
    EventSnapshot,
    Line,
    OrderSnapshot,
    Person,
    intervention_log,
    iso,
    pilot_vcard,
    same_log,
)

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
AT = datetime(2026, 11, 22, 10, 2, 41, tzinfo=PARIS)
APPOINTMENT = datetime(2026, 11, 25, 8, 30, tzinfo=PARIS)
START = datetime(2026, 11, 25, 8, 40, tzinfo=PARIS)
END = datetime(2026, 11, 25, 11, 5, tzinfo=PARIS)
PILOT = Person("Karim", "Haddad", "06 98 76 54 32", "k.haddad@example.fr")

BASE = OrderSnapshot(
    reference="OPH57_241122093015",
    contract_reference="MULTITECH-2024-07",
    state="acknowledged",
    service_code="PLB-FUITE",
    work_type="corrective",
    critical_level=3,
    asset_reference="LGT-0412",
    lines=(Line("L1", True), Line("L2", False)),
    pilot=PILOT,
)


def order(**changes) -> OrderSnapshot:
    from dataclasses import replace

    return replace(BASE, **changes)


def event(kind: str, label: str = "Libellé", **data) -> EventSnapshot:
    return EventSnapshot(kind=kind, label=label, at=AT, data=data)


# (order, event, previous code) -> (status, event, eventDate)
CASES = [
    ("received", order(state="to_acknowledge"), event("received"), None, ("open", "requested", AT)),
    ("acknowledged", order(), event("acknowledge"), None, ("open", "acknowledged", AT)),
    (
        "planned",
        order(state="planned", appointment_at=APPOINTMENT),
        event("plan", replanned=False),
        ("open", "acknowledged"),
        ("open", "planned", APPOINTMENT),
    ),
    (
        "replanned",
        order(state="planned", appointment_at=APPOINTMENT),
        event("plan", replanned=True),
        ("open", "planned"),
        ("pending", "replanned", APPOINTMENT),
    ),
    (
        "planned by period",
        order(state="planned", planned_start=START, planned_end=END),
        event("plan", replanned=False),
        None,
        ("open", "planned", START),
    ),
    (
        "started",
        order(state="in_progress", actual_start=START),
        event("start"),
        None,
        ("pending", "start", START),
    ),
    ("resumed", order(state="in_progress", actual_start=START), event("resume"), None, ("pending", "start", AT)),
    (
        "suspended, occupant absent",
        order(state="suspended", suspend_reason="occupant_absent"),
        event("suspend", reason="occupant_absent"),
        None,
        ("hold", "occupant_absent", AT),
    ),
    (
        "suspended for a quote",
        order(state="suspended", suspend_reason="quote_request"),
        event("suspend", reason="quote_request"),
        None,
        ("hold", "quote_request", AT),
    ),
    (
        "finished",
        order(state="finished", actual_start=START, actual_end=END, progress=100),
        event("finish"),
        None,
        ("pending", "end", END),
    ),
    (
        "received by the client",
        order(state="received", reception_date=date(2026, 11, 27)),
        event("record_reception"),
        ("pending", "end"),
        ("pending", "end", AT),
    ),
    (
        "invoiced",
        order(state="invoiced", invoice_date=date(2026, 11, 30), invoice_number="F-118"),
        event("invoice"),
        ("pending", "end"),
        ("pending", "end", AT),
    ),
    (
        "closed",
        order(state="closed", close_outcome="done"),
        event("close", outcome="done"),
        None,
        ("closed", "done", AT),
    ),
    (
        "closed, partial repair",
        order(state="closed", close_outcome="partial_repair"),
        event("close", outcome="partial_repair"),
        None,
        ("closed", "partial_repair", AT),
    ),
    (
        "cancelled",
        order(state="cancelled", cancel_reason="Doublon"),
        event("cancel"),
        None,
        ("denied", "canceled", AT),
    ),
    (
        "progress while replanned keeps the replanned code",
        order(state="planned", appointment_at=APPOINTMENT),
        event("set_progress"),
        ("pending", "replanned"),
        ("pending", "replanned", AT),
    ),
    (
        "progress while in progress",
        order(state="in_progress", actual_start=START, progress=40),
        event("set_progress"),
        ("pending", "start"),
        ("pending", "start", AT),
    ),
    (
        "a stale previous code gives way to the state's own",
        order(state="in_progress", actual_start=START),
        event("mark_line"),
        ("open", "planned"),
        ("pending", "start", AT),
    ),
    (
        "pilot change on a suspended order",
        order(state="suspended", suspend_reason="quote_request"),
        event("assign"),
        None,
        ("hold", "quote_request", AT),
    ),
    ("edit of a new order", order(state="to_acknowledge"), event("edited"), None, ("open", "requested", AT)),
]


@pytest.mark.parametrize(("name", "snapshot", "change", "previous", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_state_and_event_gets_its_intent_code_and_date(name, snapshot, change, previous, expected):
    log = intervention_log(snapshot, change, logged_at=AT, previous=previous)
    status, code, when = expected
    assert (log["status"], log["event"]) == (status, code)
    assert log["eventDate"] == iso(when)


def test_a_log_carries_every_required_field_as_the_platform_documents_it():
    snapshot = order(state="planned", appointment_at=APPOINTMENT, progress=0)
    log = intervention_log(snapshot, event("plan", "Rendez-vous fixé le mercredi 25 novembre à 8 h 30"), logged_at=AT)
    assert log == {
        "reference": "OPH57_241122093015",
        "contractReference": "MULTITECH-2024-07",
        "status": "open",
        "event": "planned",
        "eventDate": "2026-11-25T08:30:00+01:00",
        "logDate": "2026-11-22T10:02:41+01:00",
        "description": "Rendez-vous fixé le mercredi 25 novembre à 8 h 30",
        "serviceCode": "PLB-FUITE",
        "workType": "corrective",
        "criticalLevel": 3,
        "location": {"assetReference": "LGT-0412"},
        "contacts": [
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Karim Haddad\r\nN:Haddad;Karim;;;\r\nTEL;TYPE=CELL:0698765432\r\n"
            "EMAIL;TYPE=INTERNET:k.haddad@example.fr\r\nROLE:Pilote\r\nEND:VCARD"
        ],
        "tags": {"progress_percent": "0", "lines_done": "1/2", "line_L1": "done", "line_L2": "not_done"},
    }


def test_dates_are_sent_in_paris_time_with_their_offset_summer_and_winter():
    assert iso(datetime(2026, 7, 1, 6, 0, tzinfo=UTC)) == "2026-07-01T08:00:00+02:00"
    assert iso(datetime(2026, 12, 1, 6, 0, tzinfo=UTC)) == "2026-12-01T07:00:00+01:00"
    with pytest.raises(ValueError):
        iso(datetime(2026, 12, 1, 6, 0))  # noqa: DTZ001 - a naive datetime is the point


def test_a_planned_period_travels_as_tags():
    log = intervention_log(
        order(state="planned", planned_start=START, planned_end=END + timedelta(days=2)), event("plan"), logged_at=AT
    )
    assert log["tags"]["planned_start"] == "2026-11-25T08:40:00+01:00"
    assert log["tags"]["planned_end"] == "2026-11-27T11:05:00+01:00"


def test_reception_and_invoice_travel_as_tags():
    snapshot = order(
        state="invoiced", reception_date=date(2026, 11, 27), invoice_date=date(2026, 11, 30), invoice_number="F-118"
    )
    tags = intervention_log(snapshot, event("invoice"), logged_at=AT)["tags"]
    assert tags["reception_date"] == "2026-11-27"
    assert tags["invoice_date"] == "2026-11-30"
    assert tags["invoice_number"] == "F-118"


def test_an_order_without_lines_or_pilot_sends_neither():
    log = intervention_log(order(lines=(), pilot=None), event("acknowledge"), logged_at=AT)
    assert "contacts" not in log
    assert log["tags"] == {"progress_percent": "0"}


def test_the_cancellation_reason_travels_as_technical_reason():
    log = intervention_log(order(state="cancelled", cancel_reason="Doublon"), event("cancel", "Annulée"), logged_at=AT)
    assert log["technicalReason"] == "Doublon"
    assert log["description"] == "Annulée"


def test_vcard_escapes_commas_and_semicolons_and_skips_missing_phone():
    card = pilot_vcard(Person("Jean, dit Jo", "Dupont;Martin"))
    assert "FN:Jean\\, dit Jo Dupont\\;Martin" in card
    assert "N:Dupont\\;Martin;Jean\\, dit Jo;;;" in card
    assert "TEL" not in card
    assert card.startswith("BEGIN:VCARD\r\nVERSION:3.0\r\n")
    assert card.endswith("ROLE:Pilote\r\nEND:VCARD")


def test_a_log_read_back_matches_when_status_event_label_and_date_match_whatever_the_offset():
    sent = intervention_log(order(state="in_progress", actual_start=START), event("start", "Démarré"), logged_at=AT)
    found = {**sent, "eventDate": START.astimezone(UTC).isoformat()}
    assert same_log(sent, found)
    assert not same_log(sent, {**found, "description": "Autre"})
    assert not same_log(sent, {**found, "eventDate": (START + timedelta(seconds=1)).isoformat()})
    assert not same_log(sent, {**found, "eventDate": "pas une date"})
