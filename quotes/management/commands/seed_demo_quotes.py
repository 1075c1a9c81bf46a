"""`python manage.py seed_demo_quotes`: the demo's quotes (quotes.demo), once, after `seed_demo`."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from quotes import demo


class Command(BaseCommand):
    help = "Crée une fois des devis de démonstration dans chaque état (après seed_demo)."

    def handle(self, *args, **options) -> None:
        made = demo.create_demo_quotes()
        if not made:
            self.stdout.write("Devis de démonstration : rien à créer.")
            return
        self.stdout.write(self.style.SUCCESS("Devis de démonstration créés"))
        for line in made:
            self.stdout.write(f"  {line}")
