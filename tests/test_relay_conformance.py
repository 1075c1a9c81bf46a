"""The relay's conformance, as an outside log checker sees it (issue 10).

Orders are driven through each of their lives as people drive them, quickly
(many changes fall in the same second), delivered to the embedded sandbox over
real HTTP, and then every log the platform received is checked the way a
stricter platform and its checkers check them: required fields, known
(status, event) pairs, explicit UTC offsets, no two logs of an operation with
the same (status, event, eventDate), never the manager's own `open`/`requested`
from the contractor, the pilot's vCard (ROLE:Pilote, a mobile number) on every
log once a pilot is set, and a legal sequence of states (docs/platform.md).
"""

from __future__ import annotations

import io
import re
import time
from datetime import date, datetime, timedelta
from http import HTTPStatus

import httpx
import pytest
from django.core.management import call_command
from django.utils import timezone

from orders import planning, receiving, reports, services
from orders.models import Order
from portal.models import Role
from portal.relay import inbound, tasks
from portal.relay.claims import due_messages
from portal.relay.models import InboundNotification, MessageStatus, OutboxMessage
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, make_user
from tests.test_relay_sandbox import request_form

pytestmark = pytest.mark.usefixtures("database_before_the_live_server")

CONTRACT = "MULTITECH-2024-07"

# What the contractor may send for an intervention (docs/platform.md, the table of codes).
KNOWN_CODES = {
    ("open", "acknowledged"),
    ("open", "planned"),
    ("pending", "replanned"),
    ("pending", "start"),
    ("hold", "occupant_absent"),
    ("hold", "quote_request"),
    ("pending", "end"),
    ("closed", "done"),
    ("closed", "solved"),
    ("closed", "partial_repair"),
    ("closed", "occupant_absent"),
    ("denied", "canceled"),
}
HOLD = {("hold", "occupant_absent"), ("hold", "quote_request")}
CLOSED = {code for code in KNOWN_CODES if code[0] == "closed"}
CANCELED = ("denied", "canceled")
# The codes that may follow each code on the platform (a code may also be sent
# again, with fresh tags); None is before the contractor's first log.
NEXT_CODES: dict[tuple[str, str] | None, set[tuple[str, str]]] = {
    None: {("open", "acknowledged"), CANCELED},
    ("open", "acknowledged"): {("open", "planned"), ("pending", "start"), CANCELED},
    ("open", "planned"): {("pending", "replanned"), ("pending", "start"), *HOLD, CANCELED},
    ("pending", "replanned"): {("pending", "start"), *HOLD, CANCELED},
    ("pending", "start"): {("pending", "end"), *HOLD, CANCELED},
    **{hold: {("pending", "start"), ("pending", "replanned"), *HOLD, *CLOSED, CANCELED} for hold in HOLD},
    ("pending", "end"): set(CLOSED),
    **{closed: set() for closed in CLOSED},
    CANCELED: set(),
}
REQUIRED = ("reference", "contractReference", "status", "event", "eventDate", "logDate", "serviceCode", "workType")
OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")


# --- The platform, and delivering to it ------------------------------------------------


@pytest.fixture
def connection(sandbox_connection):
    return sandbox_connection


@pytest.fixture
def pilot(db):
    return make_user("marc", Role.SUPERVISOR, first_name="Marc", last_name="Pilote", mobile="06 70 80 90 10")


@pytest.fixture
def webhooks(platform, connection, live_server) -> None:
    """The platform's reference data, and its webhooks sent to our connection."""
    call_command("sandbox_seed", stdout=io.StringIO())
    call_command(
        "sandbox_setup",
        f"--client-id={SANDBOX_CLIENT_ID}",
        f"--client-secret={SANDBOX_CLIENT_SECRET}",
        f"--webhook-url={live_server.url}{connection.webhook_path}",
        stdout=io.StringIO(),
    )


def drain(*, rounds: int = 200, seconds: float = 60) -> None:
    """Deliver every message as the workers would, skipping the backoff waits."""
    deadline = time.monotonic() + seconds
    for _ in range(rounds):
        OutboxMessage.objects.filter(status=MessageStatus.PENDING).update(next_attempt_at=timezone.now())
        due = list(due_messages().order_by("pk").values_list("pk", flat=True))
        if not due:
            break
        for message_id in due:
            tasks.deliver_message(message_id)
        assert time.monotonic() < deadline, "still delivering"
    assert not OutboxMessage.objects.exclude(status=MessageStatus.DELIVERED).exists()


def received_logs(platform: str, reference: str) -> list[dict]:
    response = httpx.get(f"{platform}/logs.json", params={"reference": reference})
    assert response.status_code == HTTPStatus.OK
    return response.json()["logs"]


def the_manager_requests(client, live_server) -> Order:
    """A request created on the platform, arrived as an order by its webhook."""
    form = request_form(description="Fuite sous l'évier de la cuisine")
    host = {"host": live_server.url.removeprefix("http://")}
    response = client.post("/sandbox/nouvelle-demande/", form, headers=host)
    assert response.status_code == HTTPStatus.FOUND
    inbound.process_notification(InboundNotification.objects.latest("pk").pk)
    return Order.objects.get(origin="platform")


# --- The checker ---------------------------------------------------------------------------


def problems_of(logs: list[dict], *, pilot_from_the_start: bool = False) -> list[str]:
    """What a log checker finds wrong in one operation's logs sent by the contractor."""
    found: list[str] = []
    seen: dict[tuple, int] = {}
    previous: tuple[str, str] | None = None
    pilot_seen = pilot_from_the_start
    for number, log in enumerate(logs, start=1):
        raw = log["raw"]
        where = f"log {number} ({raw.get('status')}/{raw.get('event')} « {raw.get('description')} »)"
        missing = [name for name in REQUIRED if not raw.get(name)]
        if not (raw.get("location") or {}).get("assetReference"):
            missing.append("location.assetReference")
        if missing:
            found.append(f"{where}: missing {', '.join(missing)}")
        code = (raw.get("status"), raw.get("event"))
        if code == ("open", "requested"):
            found.append(f"{where}: open/requested is the manager's event")
        elif code not in KNOWN_CODES:
            found.append(f"{where}: unknown code")
        dates = {name: raw.get(name) for name in ("eventDate", "logDate")}
        dates |= {name: raw.get("tags", {}).get(name) for name in ("planned_start", "planned_end")}
        for name, value in dates.items():
            if value is not None and not OFFSET.match(str(value)):
                found.append(f"{where}: {name} {value!r} without an explicit UTC offset")
        try:
            key = (*code, datetime.fromisoformat(raw["eventDate"]).replace(microsecond=0))
        except (KeyError, ValueError):
            key = (*code, raw.get("eventDate"))
        if key in seen:
            found.append(f"{where}: same (status, event, eventDate) as log {seen[key]}")
        seen.setdefault(key, number)
        pilots = [card for card in raw.get("contacts", []) if "ROLE:Pilote" in card]
        pilot_seen = pilot_seen or bool(pilots)
        if pilot_seen and not any(re.search(r"^TEL;TYPE=CELL[^:]*:\S", card, re.M) for card in pilots):
            found.append(f"{where}: no pilot vCard with ROLE:Pilote and a mobile number")
        if code in KNOWN_CODES and code != previous:
            if previous in NEXT_CODES and code not in NEXT_CODES[previous]:
                found.append(f"{where}: {previous} cannot be followed by {code}")
            previous = code
    return found


def contractor_logs(platform: str, order: Order) -> list[dict]:
    order.refresh_from_db()
    return [log for log in received_logs(platform, order.reference) if log["source"] == "api"]


def conforms(platform: str, order: Order, **options) -> list[dict]:
    logs = contractor_logs(platform, order)
    assert logs, "nothing reached the platform"
    assert problems_of(logs, **options) == []
    return logs


def test_the_checker_finds_what_a_stricter_platform_refuses():
    good = {
        "reference": "R",
        "contractReference": "C",
        "status": "open",
        "event": "acknowledged",
        "eventDate": "2026-11-22T09:30:00+01:00",
        "logDate": "2026-11-22T09:30:00+01:00",
        "serviceCode": "PLB-FUITE",
        "workType": "corrective",
        "location": {"assetReference": "LGT-0412"},
        "description": "Commande prise en compte",
    }
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Marc Pilote\r\nTEL;TYPE=CELL:0670809010\r\nROLE:Pilote\r\nEND:VCARD"

    def logs(*raws: dict) -> list[dict]:
        return [{"raw": raw} for raw in raws]

    assert problems_of(logs(good, {**good, "status": "pending", "event": "start", "contacts": [card]})) == []
    assert problems_of(
        logs(
            {**good, "status": "open", "event": "requested", "location": {}},
            {**good, "logDate": "2026-11-22T09:30:00", "serviceCode": ""},
            {**good, "description": "Technicien : Karim Haddad"},
            {**good, "status": "pending", "event": "end", "contacts": [card]},
            {**good, "status": "closed", "event": "done", "eventDate": "2026-11-23T09:30:00+01:00"},
        )
    ) == [
        "log 1 (open/requested « Commande prise en compte »): missing location.assetReference",
        "log 1 (open/requested « Commande prise en compte »): open/requested is the manager's event",
        "log 2 (open/acknowledged « Commande prise en compte »): missing serviceCode",
        "log 2 (open/acknowledged « Commande prise en compte »): logDate '2026-11-22T09:30:00' without an "
        "explicit UTC offset",
        "log 3 (open/acknowledged « Technicien : Karim Haddad »): same (status, event, eventDate) as log 2",
        "log 4 (pending/end « Commande prise en compte »): ('open', 'acknowledged') cannot be followed by "
        "('pending', 'end')",
        "log 5 (closed/done « Commande prise en compte »): no pilot vCard with ROLE:Pilote and a mobile number",
    ]


# --- The lives of an order --------------------------------------------------------------


def test_a_whole_life_with_assignments_and_edits_before_and_after_acknowledgement_conforms(
    platform, connection, order, technician, other_technician, supervisor, office, pilot
):
    appointment = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    # Before acknowledgement: a technician and a pilot in one action, the details corrected.
    services.assign_order(order, actor=supervisor, technician=other_technician, pilot=pilot)
    receiving.update_order_details(order, actor=office, changes={"description": "Fuite sous l'évier, urgent"})
    receiving.add_line(order, actor=office, label="Remplacement du siphon", quantity=1, unit="u")
    services.acknowledge_order(order, actor=technician)
    # After it: the technician again, the pilot's replacement, the details.
    services.assign_order(order, actor=supervisor, technician=technician, pilot=supervisor)
    receiving.update_order_details(order, actor=office, changes={"occupant_phone": "03 87 11 22 33"})
    planning.plan_order(order, actor=technician, appointment=appointment)
    planning.plan_order(order, actor=technician, appointment=appointment + timedelta(days=1), reason="Pluie")
    services.assign_order(order, actor=supervisor, pilot=pilot)
    services.start_work(order, actor=technician)
    services.set_progress(order, actor=technician, progress=40)
    services.mark_line(order.lines.get(reference="L1"), actor=technician, done=True)
    services.add_note(order, actor=technician, text="Siphon fendu, remplacé")
    reports.submit_report(
        order,
        actor=technician,
        works_done="Recherche de fuite, siphon remplacé",
        time_on_site_minutes=45,
        signature_status="absent",
    )
    services.set_progress(order, actor=technician, progress=80)
    for line in order.lines.filter(done=False):
        services.mark_line(line, actor=technician, done=True)
    services.finish_work(order, actor=technician)
    services.record_reception(order, actor=supervisor, reception_date=date(2026, 11, 27))
    services.invoice_order(order, actor=office, invoice_date=date(2026, 11, 30), invoice_number="F-2026-0042")
    services.close_order(order, actor=supervisor, outcome="done")

    drain()

    logs = conforms(platform, order, pilot_from_the_start=True)
    codes = [(log["status"], log["event"]) for log in logs]
    assert codes[0] == ("open", "acknowledged")  # the operation is created by the acknowledgement
    assert ("open", "planned") in codes and ("pending", "replanned") in codes
    assert codes[-1] == ("closed", "done")
    first = logs[0]["raw"]
    # What changed before acknowledgement travels with the acknowledgement log.
    assert "ROLE:Pilote" in first["contacts"][0]
    assert first["tags"]["lines_done"] == "0/3"
    last = logs[-1]["raw"]
    assert (last["tags"]["progress_percent"], last["tags"]["lines_done"]) == ("100", "3/3")
    assert (last["tags"]["reception_date"], last["tags"]["invoice_number"]) == ("2026-11-27", "F-2026-0042")


def test_a_suspension_and_its_resumption_conform(platform, connection, order, technician, supervisor, pilot):
    services.assign_order(order, actor=supervisor, pilot=pilot)
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(
        order, actor=technician, appointment=(timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    )
    services.start_work(order, actor=technician)
    services.suspend_work(order, actor=technician, reason="quote_request", note="Colonne à remplacer")
    services.resume_work(order, actor=technician)
    services.suspend_work(order, actor=technician, reason="occupant_absent")
    planning.plan_order(
        order,
        actor=supervisor,
        appointment=(timezone.now() + timedelta(days=2)).replace(microsecond=0),
        reason="Occupant absent",
    )
    services.suspend_work(order, actor=technician, reason="occupant_absent", note="Absent une seconde fois")
    services.close_order(order, actor=supervisor, outcome="occupant_absent")

    drain()

    logs = conforms(platform, order, pilot_from_the_start=True)
    codes = [(log["status"], log["event"]) for log in logs]
    assert ("hold", "quote_request") in codes
    assert codes[-1] == ("closed", "occupant_absent")


def test_cancellations_before_and_after_acknowledgement_conform(
    platform, connection, contract, asset, service_code, technician, supervisor, pilot
):
    from tests import factories

    early = factories.register_order(contract, asset=asset, service_code=service_code, reference="OPH57_A1")
    services.assign_order(early, actor=supervisor, technician=technician, pilot=pilot)
    services.cancel_order(early, actor=supervisor, reason="Demande en double")
    late = factories.register_order(contract, asset=asset, service_code=service_code, reference="OPH57_A2")
    services.acknowledge_order(late, actor=technician)
    services.assign_order(late, actor=supervisor, technician=technician, pilot=pilot)
    planning.plan_order(late, actor=technician, appointment=(timezone.now() + timedelta(days=1)).replace(microsecond=0))
    services.cancel_order(late, actor=supervisor, reason="Travaux faits par l'occupant")

    drain()

    early_logs = conforms(platform, early, pilot_from_the_start=True)
    assert [(log["status"], log["event"]) for log in early_logs] == [CANCELED]
    assert early_logs[0]["raw"]["technicalReason"] == "Demande en double"
    late_logs = conforms(platform, late)
    assert (late_logs[-1]["status"], late_logs[-1]["event"]) == CANCELED


def test_an_order_from_the_platform_changed_before_acknowledgement_conforms(
    platform, connection, contract, webhooks, client, live_server, technician, supervisor, office, pilot
):
    order = the_manager_requests(client, live_server)
    services.assign_order(order, actor=supervisor, technician=technician, pilot=pilot)
    receiving.update_order_details(order, actor=office, changes={"access_notes": "Code 1234B, 4e étage"})
    services.add_note(order, actor=supervisor, text="Occupante joignable le matin")
    assert not order.outbox_messages.exists()  # nothing before the acknowledgement
    services.acknowledge_order(order, actor=technician)
    services.start_work(order, actor=technician)
    services.set_progress(order, actor=technician, progress=50)
    services.finish_work(order, actor=technician)

    drain()

    everything = received_logs(platform, order.reference)
    assert [(log["source"], log["status"], log["event"]) for log in everything][:2] == [
        ("manager", "open", "requested"),
        ("api", "open", "acknowledged"),
    ]
    logs = conforms(platform, order, pilot_from_the_start=True)
    assert logs[-1]["raw"]["tags"]["progress_percent"] == "100"


def test_one_assignment_of_a_technician_and_a_pilot_is_one_event_and_one_log(
    platform, connection, order, technician, other_technician, supervisor, pilot
):
    services.acknowledge_order(order, actor=technician)
    drain()
    events_before = order.events.count()

    event = services.assign_order(order, actor=supervisor, technician=other_technician, pilot=pilot)
    drain()

    assert order.events.count() == events_before + 1
    assert event.label == "Technicien : Lucie Moreau ; Pilote : Marc Pilote"
    logs = conforms(platform, order)
    assert [log["description"] for log in logs] == ["Commande prise en compte", event.label]
    assert any("ROLE:Pilote" in card and "Marc" in card for card in logs[-1]["raw"]["contacts"])
    assert services.assign_order(order, actor=supervisor, technician=other_technician, pilot=pilot) is None


def test_changes_in_the_same_second_are_merged_while_unsent_and_dated_apart_once_sent(
    platform, connection, order, technician, supervisor, pilot
):
    moment = timezone.now().replace(microsecond=0)
    services.acknowledge_order(order, actor=technician, at=moment)
    services.assign_order(order, actor=supervisor, pilot=pilot, at=moment)  # merged: not sent yet
    drain()
    services.add_note(order, actor=technician, text="Clés chez la gardienne", at=moment)  # the first is sent

    drain()

    logs = conforms(platform, order, pilot_from_the_start=True)
    assert [(log["description"], datetime.fromisoformat(log["eventDate"])) for log in logs] == [
        ("Commande prise en compte ; Pilote : Marc Pilote", moment),
        ("Note : Clés chez la gardienne", moment + timedelta(seconds=1)),
    ]


# --- The conventions themselves (pure) ---------------------------------------------------


def test_the_mapping_keeps_logs_apart_by_status_event_and_second():
    from portal.relay import mapping

    log = {"status": "pending", "event": "start", "eventDate": "2026-11-22T09:30:00+01:00", "description": "A"}
    assert not mapping.sent_by_contractor({**log, "status": "open", "event": "requested"})
    assert mapping.sent_by_contractor(log)
    assert mapping.merged_log(
        {**log, "technicalReason": "Motif"}, {**log, "description": "B", "tags": {"progress_percent": "40"}}
    ) == {**log, "description": "A ; B", "tags": {"progress_percent": "40"}, "technicalReason": "Motif"}
    taken = ["2026-11-22T09:30:00+01:00", "2026-11-22T08:30:01Z", "2026-11-22T09:30:03+01:00"]
    assert mapping.at_a_free_second(log, taken)["eventDate"] == "2026-11-22T09:30:02+01:00"
    assert mapping.at_a_free_second({**log, "eventDate": "2026-11-22T08:30:59.5Z"}, taken)["eventDate"] == (
        "2026-11-22T09:30:59+01:00"
    )
