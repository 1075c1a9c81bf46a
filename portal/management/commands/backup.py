from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal import backups
from portal.errors import Refused


class Command(BaseCommand):
    help = "Sauvegarde la base de données et les fichiers ensemble, dans un dossier portail-<date>-<heure>/."

    def add_arguments(self, parser) -> None:
        parser.add_argument("destination", type=Path, help="Dossier où créer la sauvegarde.")

    def handle(self, *args, destination: Path, **options) -> None:
        try:
            summary = backups.make_backup(destination)
        except Refused as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Sauvegarde complète : {summary.folder} ({summary.files} fichier(s)).")
        if summary.missing:
            self.stderr.write(f"Fichiers nommés par la base mais absents du stockage : {', '.join(summary.missing)}")
