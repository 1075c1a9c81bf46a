from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal.models import Client
from portal.relay.models import Connection, ConnectionKind
from portal.sandbox import bus
from portal.sandbox.management.commands.sandbox_connect_demo import Command as ConnectDemo
from portal.sandbox.models import Contract as PlatformContract


class Command(BaseCommand):
    help = (
        "Connects the demo's second client to the sandbox through Nexxio (Google Pub/Sub on the emulator "
        "at SANDBOX_PUBSUB_EMULATOR_HOST): the topics and subscriptions, the portal's connection, the "
        "client's contracts and assets on the sandbox, marked to travel over the bus. Idempotent."
    )

    def handle(self, *args, **options) -> None:
        if not settings.SANDBOX_ENABLED:
            raise CommandError("Le bac à sable n'est pas activé (SANDBOX_ENABLED).")
        host = bus.emulator_host()
        if not host:
            raise CommandError("Aucun émulateur Pub/Sub (SANDBOX_PUBSUB_EMULATOR_HOST).")
        clients = list(Client.objects.filter(contracts__isnull=False).distinct().order_by("pk")[:2])
        if len(clients) < 2:
            raise CommandError("Il faut un second client avec un marché : chargez d'abord les données (seed_demo).")
        client = clients[1]
        bus.set_up()
        with transaction.atomic():
            connection = Connection.objects.filter(client=client).first() or Connection(client=client)
            connection.kind = ConnectionKind.PUBSUB
            connection.enabled = True
            connection.gcp_project = bus.PROJECT
            connection.pubsub_topic = bus.FROM_PORTAL
            connection.pubsub_subscription = bus.PORTAL_SUBSCRIPTION
            connection.pubsub_emulator_host = host
            connection.timeout_seconds = 5
            connection.save()
            ConnectDemo().publish_reference_data(client)
            PlatformContract.objects.filter(reference__in=client.contracts.values("reference")).update(via_bus=True)
        self.stdout.write(self.style.SUCCESS("Client Nexxio relié"))
        self.stdout.write(f"  {client} ↔ Pub/Sub {host} (projet {bus.PROJECT})")
