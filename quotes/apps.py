from __future__ import annotations

from django.apps import AppConfig


class QuotesConfig(AppConfig):
    name = "quotes"
    verbose_name = "Devis"

    def ready(self) -> None:
        # The relay knows no quote: tell it how the platform's decisions become
        # the quotes', and how a refused quotation log is rebuilt.
        from portal.relay import inbound as relay_inbound
        from portal.relay import outbox
        from portal.relay.models import MessageKind
        from quotes import inbound, sharing  # models are ready only now

        relay_inbound.register_handler(inbound.QUOTE_TYPES, inbound.apply_notification)
        # A platform may also answer through the interventions' update, its body saying "quotation".
        relay_inbound.register_handler(
            inbound.UPDATE_TYPES, inbound.apply_notification, element_type=inbound.ELEMENT_TYPE
        )
        relay_inbound.register_reconciler(inbound.reconcile)
        outbox.register_rebuilder(MessageKind.QUOTATION_LOG, sharing.rebuild_log)
