from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orders import erasure
from portal.errors import Refused
from portal.models import Contract

LABELS = {
    "orders": "commandes",
    "signatures": "signatures",
    "photos": "photos de personnes",
    "events": "entrées d'historique",
    "messages": "messages à la plateforme",
    "notifications": "notifications reçues",
}


class Command(BaseCommand):
    help = (
        "Efface les données personnelles des occupants des marchés terminés depuis leur délai de conservation "
        "(--dry-run : montre ce qui serait effacé, sans rien effacer)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Compter sans effacer.")
        parser.add_argument("--contract", help="La référence d'un marché (sinon : tous ceux dont la date est passée).")

    def handle(self, *args, dry_run: bool, contract: str | None, **options) -> None:
        if contract:
            contracts = list(Contract.objects.filter(reference=contract))
            if not contracts:
                raise CommandError(f"Marché inconnu : {contract}.")
        else:
            contracts = erasure.due_contracts()
        if not contracts:
            self.stdout.write("Aucun marché dont les données personnelles sont à effacer.")
        for item in contracts:
            try:
                counts = erasure.erase_contract(item, dry_run=dry_run).as_dict()
            except Refused as error:
                raise CommandError(str(error)) from error
            summary = ", ".join(f"{value} {LABELS[name]}" for name, value in counts.items())
            verb = "serait effacé" if dry_run else "effacé"
            self.stdout.write(f"{item.reference} ({item.client}) : {verb} — {summary}.")
