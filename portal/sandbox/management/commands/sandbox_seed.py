from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.sandbox import services


class Command(BaseCommand):
    help = "Loads the sandbox's reference data: the MULTITECH-2024-07 contract and a few assets. Idempotent."

    def handle(self, *args, **options) -> None:
        contracts, assets = services.seed_reference_data()
        self.stdout.write(f"Sandbox reference data: {contracts} contract(s), {assets} asset(s).")
