from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.models import Client, Company
from portal.relay.models import Connection, ConnectionKind
from portal.sandbox import services
from portal.sandbox.models import Asset as PlatformAsset
from portal.sandbox.models import Contract as PlatformContract

# Fixed on purpose: this is the demo's own stand-in platform, on the same machine.
DEMO_CLIENT_ID = "portail-demo"
DEMO_CLIENT_SECRET = "secret-du-bac-a-sable"
DEMO_WEBHOOK_SECRET = "signature-du-bac-a-sable"

ASSET_TYPES = {"entrance": "building"}


class Command(BaseCommand):
    help = (
        "Connects the demo's first client to the embedded sandbox: the portal's connection, the sandbox's "
        "API client and webhook target, and the client's contracts and assets on the sandbox. Idempotent."
    )

    def handle(self, *args, **options) -> None:
        if not settings.SANDBOX_ENABLED:
            raise CommandError("Le bac à sable n'est pas activé (SANDBOX_ENABLED).")
        client = Client.objects.filter(contracts__isnull=False).order_by("pk").first()
        if client is None:
            raise CommandError("Aucun client avec un marché : chargez d'abord les données (seed_demo).")
        with transaction.atomic():
            connection = self.connect(client)
            self.publish_reference_data(client)
            # The other clients are served through their platform's own screens.
            for other in Client.objects.exclude(pk=client.pk):
                Connection.objects.get_or_create(client=other, defaults={"kind": ConnectionKind.NONE})
        self.stdout.write(self.style.SUCCESS("Bac à sable relié"))
        self.stdout.write(f"  {client} ↔ {settings.SITE_URL}/sandbox/ (webhook {connection.webhook_path})")

    def connect(self, client: Client) -> Connection:
        connection = Connection.objects.filter(client=client).first() or Connection(client=client)
        connection.kind = ConnectionKind.INTENT
        connection.enabled = True
        connection.auth_base_url = f"{settings.SITE_URL}/sandbox"
        connection.api_base_url = f"{settings.SITE_URL}/sandbox/api"
        connection.oauth_client_id = DEMO_CLIENT_ID
        connection.client_secret = DEMO_CLIENT_SECRET
        connection.webhook_hmac_secret = DEMO_WEBHOOK_SECRET
        connection.save()
        company = Company.objects.first()
        services.setup_client(
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            label=company.name if company else "Portail prestataire",
            webhook_url=connection.webhook_url,
            webhook_secret=DEMO_WEBHOOK_SECRET,
        )
        return connection

    def publish_reference_data(self, client: Client) -> None:
        """What the manager's platform knows: the contracts with their catalogue, the estate."""
        for contract in client.contracts.prefetch_related("service_codes"):
            PlatformContract.objects.update_or_create(
                reference=contract.reference,
                defaults={
                    "label": contract.label,
                    "manager_name": client.name,
                    "service_codes": [
                        {
                            "code": code.code,
                            "label": code.label,
                            "sla": {
                                key: {"value": hours, "unit": "hour"}
                                for key, hours in (
                                    ("maxTimeToIntervention", code.intervention_delay_hours),
                                    ("maxTimeToRecovery", code.completion_delay_hours),
                                )
                                if hours
                            },
                        }
                        for code in contract.service_codes.all()
                    ],
                },
            )
        for asset in client.assets.select_related("parent"):
            PlatformAsset.objects.update_or_create(
                code=asset.reference,
                defaults={
                    "label": asset.label,
                    "type": ASSET_TYPES.get(asset.kind, asset.kind),
                    "way": asset.address,
                    "zip": asset.postcode,
                    "city": asset.city,
                    "complement": asset.address_complement,
                    "parent_reference": asset.parent.reference if asset.parent else "",
                },
            )
