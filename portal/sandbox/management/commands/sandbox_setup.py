from __future__ import annotations

from django.core.management.base import BaseCommand

from portal.sandbox import services


class Command(BaseCommand):
    help = "Creates (or updates) a sandbox API client and, if given, the webhook target. Idempotent."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret", required=True)
        parser.add_argument("--label", default="", help="A name for the client (the contractor).")
        parser.add_argument("--webhook-url", default="", help="Where the sandbox sends its webhooks.")
        parser.add_argument("--webhook-secret", default="", help="HMAC secret for X-Intent-Signature.")

    def handle(
        self, *args, client_id: str, client_secret: str, label: str, webhook_url: str, webhook_secret: str, **options
    ) -> None:
        client, target = services.setup_client(
            client_id=client_id,
            client_secret=client_secret,
            label=label,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
        self.stdout.write(f"Sandbox client {client.client_id} ready.")
        if target:
            signed = " (signed)" if target.secret else ""
            self.stdout.write(f"Webhooks go to {target.url}{signed}.")
