from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal import backups
from portal.errors import Refused


class Command(BaseCommand):
    help = (
        "Restaure une sauvegarde (manage.py backup) dans une base neuve et vide et un dossier de fichiers neuf, "
        "puis vérifie l'empreinte de chaque fichier."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("backup", type=Path, help="Le dossier portail-<date>-<heure>/ de la sauvegarde.")
        parser.add_argument(
            "--database-url", required=True, help="La base à remplir, par exemple postgres://…/portal2."
        )
        parser.add_argument("--media-root", required=True, type=Path, help="Le dossier des fichiers à remplir.")

    def handle(self, *args, backup: Path, database_url: str, media_root: Path, **options) -> None:
        try:
            count = backups.restore_backup(backup, database_url=database_url, media_root=media_root)
        except Refused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Restauration terminée : la base et {count} fichier(s), empreintes vérifiées.")
