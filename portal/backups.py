"""Backups of the whole portal, the database and the files together, and their
restoration into a new database and media folder (`manage.py backup`,
`manage.py restore`).

A backup is a folder `portail-<date>-<time>/` holding:
- `database.dump`: PostgreSQL's own format (pg_dump, a consistent snapshot of
  every table at one moment), or `database.sqlite3` (SQLite's online backup);
- `media/`: every file of the storage (reports, photos, signatures, documents),
  read through Django's storage, so a local folder and S3 alike;
- `manifest.json`, written last: the time, the database, each file with its
  size and SHA-256. A folder without it is an unfinished backup: the folder is
  written under a `.partial` name and renamed only once complete.

Why the database first, then the files: a file is always stored before the row
that names it is committed, and files are never changed in place, so every file
the dump names already exists when the copy of the files starts. A file that
disappeared meanwhile (the erasure of personal data deletes photos) is listed
in the manifest under "missing", not silently absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dj_database_url
from django.apps import apps
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.db import connection, models
from django.utils import timezone

from portal.errors import Refused

MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BackupSummary:
    folder: Path
    files: int
    missing: list[str]


# --- Files -------------------------------------------------------------------------


def _walk(storage: Storage, folder: str = "") -> Iterator[str]:
    folders, files = storage.listdir(folder)
    for name in sorted(files):
        yield f"{folder}/{name}" if folder else name
    for name in sorted(folders):
        yield from _walk(storage, f"{folder}/{name}" if folder else name)


def _copy(source, destination) -> tuple[int, str]:
    """Copy one open file to another in chunks; its size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        destination.write(chunk)
    return size, digest.hexdigest()


def referenced_files() -> set[str]:
    """The names every FileField of every model points at."""
    names: set[str] = set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.FileField):
                values = model._default_manager.values_list(field.name, flat=True)
                names.update(name for name in values if name)
    return names


# --- The database ------------------------------------------------------------------


def _postgres_environment(database: Mapping[str, Any]) -> dict[str, str]:
    """libpq's variables for `database` (Django's settings form), so that no
    password appears on a command line."""
    environment = dict(os.environ)
    for variable, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if database.get(key):
            environment[variable] = str(database[key])
    environment["PGDATABASE"] = str(database["NAME"])
    return environment


def _dump_database(folder: Path) -> str:
    database = settings.DATABASES["default"]
    if connection.vendor == "postgresql":
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={folder / 'database.dump'}"],
            env=_postgres_environment(database),
            check=True,
            capture_output=True,
        )
        return "postgresql"
    if connection.vendor == "sqlite":
        # SQLite's online backup, from Django's own connection (an in-memory
        # database too): a consistent copy even while others write.
        connection.ensure_connection()
        target = sqlite3.connect(str(folder / "database.sqlite3"))
        with target:
            connection.connection.backup(target)
        target.close()
        return "sqlite"
    raise Refused(f"Sauvegarde impossible : base de données {connection.vendor} non prise en charge.")


# --- Backing up ----------------------------------------------------------------------


def make_backup(destination: Path, *, storage: Storage | None = None) -> BackupSummary:
    """A complete backup under `destination` (created if need be)."""
    storage = storage or default_storage
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    final = destination / f"portail-{stamp}"
    partial = destination / f"portail-{stamp}.partial"
    if final.exists() or partial.exists():
        raise Refused(f"Une sauvegarde {final.name} existe déjà : attendez une seconde et recommencez.")
    partial.mkdir(parents=True)
    try:
        vendor = _dump_database(partial)
        files = []
        for name in _walk(storage):
            target = partial / "media" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(name, "rb") as source, target.open("wb") as output:
                size, sha256 = _copy(source, output)
            files.append({"name": name, "size": size, "sha256": sha256})
        copied = {item["name"] for item in files}
        missing = sorted(referenced_files() - copied)
        manifest = {
            "created_at": timezone.now().isoformat(),
            "database": vendor,
            "files": files,
            "missing": missing,
        }
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(final)
    return BackupSummary(final, len(files), missing)


# --- Restoring ---------------------------------------------------------------------


def _postgres_is_empty(environment: dict[str, str]) -> bool:
    done = subprocess.run(
        ["psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command", _COUNT_TABLES],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() == "0"


_COUNT_TABLES = "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"


def restore_backup(folder: Path, *, database_url: str, media_root: Path) -> int:
    """Restore the backup in `folder` into the database at `database_url`, which
    must exist and be empty, and the files into `media_root`. Every file is
    checked against its SHA-256. Returns how many files were restored."""
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise Refused(f"{folder} n'est pas une sauvegarde complète (pas de {MANIFEST}).")
    manifest = json.loads(manifest_path.read_text())
    database = dj_database_url.parse(database_url)
    if manifest["database"] == "postgresql":
        if database["ENGINE"] != "django.db.backends.postgresql":
            raise Refused("Cette sauvegarde est celle d'une base PostgreSQL : indiquez une base PostgreSQL.")
        environment = _postgres_environment(database)
        if not _postgres_is_empty(environment):
            raise Refused(f"La base {database['NAME']} n'est pas vide : restaurez dans une base neuve.")
        subprocess.run(
            [
                "pg_restore",
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--single-transaction",
                f"--dbname={database['NAME']}",
                str(folder / "database.dump"),
            ],
            env=environment,
            check=True,
            capture_output=True,
        )
    else:
        target = Path(str(database["NAME"]))
        if target.exists() and target.stat().st_size:
            raise Refused(f"La base {target} existe déjà : restaurez dans un fichier neuf.")
        shutil.copyfile(folder / "database.sqlite3", target)
    storage = FileSystemStorage(location=media_root)
    for item in manifest["files"]:
        with (folder / "media" / item["name"]).open("rb") as source:
            digest = hashlib.file_digest(source, "sha256").hexdigest()
            if digest != item["sha256"]:
                raise Refused(f"Le fichier {item['name']} de la sauvegarde est altéré (empreinte différente).")
            source.seek(0)
            saved = storage.save(item["name"], File(source))
        if saved != item["name"]:
            raise Refused(f"Le fichier {item['name']} existe déjà dans {media_root} : restaurez dans un dossier neuf.")
    return len(manifest["files"])
