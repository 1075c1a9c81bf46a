"""`python manage.py seed_demo_invoices`: the demo's invoicing (invoices.demo), once, after `seed_demo_quotes`."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from invoices import demo


class Command(BaseCommand):
    help = "Prépare une fois la facturation de démonstration (après seed_demo et seed_demo_quotes)."

    def handle(self, *args, **options) -> None:
        made = demo.create_demo_invoices()
        if not made:
            self.stdout.write("Facturation de démonstration : rien à créer.")
            return
        self.stdout.write(self.style.SUCCESS("Facturation de démonstration"))
        for line in made:
            self.stdout.write(f"  {line}")
