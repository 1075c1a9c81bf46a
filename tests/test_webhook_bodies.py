"""Webhook bodies that used to lose data (issue 14, finding 2): deep nesting,
NaN and Infinity, NUL characters, too many notifications at once. Every readable
notification of a batch is kept, the raw body of what cannot be read too, and
the answer makes the platform resend only what was not stored."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest
from django.db import connection as connection_

from portal.relay.models import Connection, InboundNotification, NotificationStatus
from portal.relay.views import MAX_NOTIFICATIONS
from tests.test_webhook import notification


@pytest.fixture
def connection(client_org) -> Connection:
    return Connection.objects.create(client=client_org, kind="intent", enabled=True)


def post(client, connection, raw: bytes):
    return client.post(connection.webhook_path, raw, content_type="application/json")


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def stored_ids() -> set[str]:
    return set(
        InboundNotification.objects.exclude(status=NotificationStatus.FAILED).values_list("notification_id", flat=True)
    )


def the_raw_body() -> InboundNotification:
    return InboundNotification.objects.get(notification_id__startswith="illisible:")


def test_nesting_deeper_than_python_can_parse_is_kept_raw_not_a_500(client, connection):
    raw = b"[" * 200_000 + b"]" * 200_000

    response = post(client, connection, raw)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "JSON invalide" in response.json()["message"]
    kept = the_raw_body()
    assert kept.status == NotificationStatus.FAILED
    assert kept.body["raw"].startswith("[[[[")


@pytest.mark.parametrize(
    "bad",
    [
        '{"type": "operations:intervention:share", "id": "nan", "event": {"body": {"criticalLevel": NaN}}}',
        '{"type": "operations:intervention:share", "id": "inf", "event": {"body": {"criticalLevel": -Infinity}}}',
        '{"type": "operations:intervention:share", "id": "deep", "event": {"body": ' + nested(500) + "}}",
        '{"type": "operations:intervention:share", "id": "nul", "event": {"body": {"reference": "A\\u0000B"}}}',
        '{"type": "operations:intervention:share", "id": "surrogate", "event": {"body": {"reference": "\\ud800"}}}',
    ],
)
def test_a_batch_keeps_its_readable_notifications_and_the_raw_body_of_the_unreadable_one(client, connection, bad):
    raw = f"[{json.dumps(notification('first'))}, {bad}, {json.dumps(notification('last'))}]".encode()

    response = post(client, connection, raw)

    assert response.status_code == HTTPStatus.OK
    assert response.json()["received"] == 2
    assert response.json()["unreadable"] == [2]
    assert stored_ids() == {"first", "last"}
    kept = the_raw_body()
    assert kept.status == NotificationStatus.FAILED
    assert "n° 2" in kept.error
    assert kept.body["raw"].startswith('[{"type"')
    # Sent again, nothing is doubled.
    assert post(client, connection, raw).json()["repeats"] == 2
    assert InboundNotification.objects.count() == 3


@pytest.fixture
def database_refuses_the_id_refused(db):
    """The database itself refuses one row (a trigger): the edge where a real
    refusal happens (a lock timeout, a full disk), staged without touching our code."""
    table = InboundNotification._meta.db_table
    with connection_.cursor() as cursor:
        if connection_.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_notification() RETURNS trigger AS $$ BEGIN"
                " IF NEW.notification_id = 'refused' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW;"
                " END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_notification()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.notification_id = 'refused'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )


def test_a_notification_the_database_refuses_is_answered_for_a_resend_and_the_others_kept(
    client, connection, database_refuses_the_id_refused
):
    raw = json.dumps([notification("first"), notification("refused"), notification("last")]).encode()

    response = post(client, connection, raw)

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["failed"] == [2]
    assert response.json()["received"] == 2
    assert stored_ids() == {"first", "last"}
    # The platform sends the batch again: what was stored is a repeat.
    with connection_.cursor() as cursor:
        cursor.execute(
            "DROP TRIGGER refuse"
            + (f" ON {InboundNotification._meta.db_table}" if connection_.vendor == "postgresql" else "")
        )
    response = post(client, connection, raw)
    assert response.status_code == HTTPStatus.OK
    assert (response.json()["received"], response.json()["repeats"]) == (1, 2)
    assert stored_ids() == {"first", "refused", "last"}


def test_too_many_notifications_in_one_call_are_refused_and_kept_raw(client, connection):
    items = [notification(f"n{number}") for number in range(MAX_NOTIFICATIONS + 1)]

    response = post(client, connection, json.dumps(items).encode())

    assert response.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert f"maximum {MAX_NOTIFICATIONS}" in response.json()["message"]
    assert the_raw_body().body["raw"].startswith('[{"type"')
    assert InboundNotification.objects.count() == 1


def test_a_full_batch_at_the_cap_is_stored(client, connection):
    items = [notification(f"n{number}") for number in range(MAX_NOTIFICATIONS)]

    response = post(client, connection, json.dumps(items).encode())

    assert response.status_code == HTTPStatus.OK
    assert response.json()["received"] == MAX_NOTIFICATIONS


def test_an_integer_longer_than_python_reads_is_kept_raw_not_a_500(client, connection):
    response = post(client, connection, b'[{"id": "big", "event": {"body": {"criticalLevel": ' + b"9" * 5000 + b"}}}]")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert the_raw_body().body["raw"].startswith('[{"id": "big"')


def test_a_raw_body_with_a_nul_character_is_kept(client, connection):
    response = post(client, connection, b'[{"id": "a\x00b"')

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert the_raw_body().body["raw"] == '[{"id": "a\ufffdb"'
