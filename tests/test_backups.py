"""Backup and restore (issue 14, item 9): a seeded portal is backed up, restored
into a new database and a new media folder, and every row of every table and
every file is found identical."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import connection

from orders import documents, services
from orders.models import Document, DocumentKind, Order, OrderEvent
from orders.states import State
from portal.relay.models import OutboxMessage
from tests import factories
from tests.test_documents import pdf_bytes


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def seeded(media, contract, asset, service_code, technician, supervisor, outbox_connection):
    """Orders with lines, events and outbox messages, and documents with their files."""
    for number in range(3):
        order = factories.register_order(contract, reference=f"OPH57-{number}", asset=asset, service_code=service_code)
        order = factories.bring_to(order, State.FINISHED, technician)
        documents.attach_document(
            order,
            actor=technician,
            file=ContentFile(pdf_bytes(), name=f"Rapport {number} été.pdf"),
            kind=DocumentKind.UPLOADED_REPORT,
            title=f"Rapport de l'entreprise {number}",
        )
    services.cancel_order(
        factories.register_order(contract, reference="OPH57-ANNULEE", asset=asset, service_code=service_code),
        actor=supervisor,
        reason="Doublon",
    )
    assert Order.objects.count() == 4
    assert OrderEvent.objects.count() > 10
    assert OutboxMessage.objects.count() > 10
    assert Document.objects.count() == 3


def files_of(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file()
    }


def postgres_tables(conninfo: str) -> dict[str, list[tuple]]:
    with psycopg.connect(conninfo) as database, database.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1")
        names = [name for (name,) in cursor.fetchall()]
        tables = {}
        for name in names:
            cursor.execute(f'SELECT * FROM "{name}" ORDER BY 1')
            tables[name] = cursor.fetchall()
    return tables


def conninfo(name: str) -> str:
    settings = connection.settings_dict
    parts = {
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
    }
    return " ".join(f"{key}={value}" for key, value in parts.items() if value) + f" dbname={name}"


@pytest.fixture
def new_postgres_database():
    name = f"restore_{uuid.uuid4().hex[:12]}"
    admin = conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as database:
        database.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(admin, autocommit=True) as database:
        database.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    settings = connection.settings_dict
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return f"postgres://{settings['USER']}{password}@{settings['HOST']}:{settings['PORT'] or 5432}/{name}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_backup_restored_into_a_new_database_and_folder_is_identical(seeded, media, tmp_path, new_postgres_database):
    output = io.StringIO()
    call_command("backup", str(tmp_path / "sauvegardes"), stdout=output)
    (backup,) = (tmp_path / "sauvegardes").iterdir()
    assert "Sauvegarde complète" in output.getvalue()
    assert not backup.name.endswith(".partial")

    call_command(
        "restore",
        str(backup),
        f"--database-url={database_url(new_postgres_database)}",
        f"--media-root={tmp_path / 'restored-media'}",
        stdout=io.StringIO(),
    )

    original = postgres_tables(conninfo(connection.settings_dict["NAME"]))
    restored = postgres_tables(conninfo(new_postgres_database))
    assert set(restored) == set(original)
    for table in ("orders_order", "orders_orderevent", "relay_outboxmessage", "orders_document", "orders_orderline"):
        assert restored[table] == original[table] != [], table
    assert restored == original
    assert files_of(tmp_path / "restored-media") == files_of(media)
    assert len(files_of(media)) == 3

    # A database that is not empty is never written over.
    with pytest.raises(CommandError, match="n'est pas vide"):
        call_command(
            "restore",
            str(backup),
            f"--database-url={database_url(new_postgres_database)}",
            f"--media-root={tmp_path / 'other-media'}",
        )


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_a_backup_restores_into_a_new_file(seeded, media, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite backup")
    call_command("backup", str(tmp_path / "sauvegardes"), stdout=io.StringIO())
    (backup,) = (tmp_path / "sauvegardes").iterdir()

    call_command(
        "restore",
        str(backup),
        f"--database-url=sqlite:///{tmp_path / 'restored.sqlite3'}",
        f"--media-root={tmp_path / 'restored-media'}",
        stdout=io.StringIO(),
    )

    # Read as Django reads its own (its converters: datetimes, decimals).
    restored = sqlite3.connect(
        tmp_path / "restored.sqlite3", detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES
    )
    with connection.cursor() as cursor:
        for table in ("orders_order", "orders_orderevent", "relay_outboxmessage", "orders_document"):
            cursor.execute(f"SELECT * FROM {table} ORDER BY 1")
            assert (
                [tuple(row) for row in cursor.fetchall()]
                == restored.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                != []
            )
    restored.close()
    assert files_of(tmp_path / "restored-media") == files_of(media)


def test_a_backup_folder_without_its_manifest_is_refused(tmp_path, db):
    (tmp_path / "portail-20261205-101500.partial").mkdir()

    with pytest.raises(CommandError, match="n'est pas une sauvegarde complète"):
        call_command(
            "restore",
            str(tmp_path / "portail-20261205-101500.partial"),
            f"--database-url=sqlite:///{tmp_path / 'x.sqlite3'}",
            f"--media-root={tmp_path / 'm'}",
        )
