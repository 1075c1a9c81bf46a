from __future__ import annotations

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Commandes"

    def ready(self) -> None:
        # The relay below knows no order: tell it how an intervention from the
        # platform becomes an order, and how a refused log is rebuilt.
        from orders import inbound, sharing  # models are ready only now
        from portal.relay import inbound as relay_inbound
        from portal.relay import outbox
        from portal.relay.models import MessageKind

        relay_inbound.register_handler(inbound.ORDER_TYPES, inbound.apply_notification)
        relay_inbound.register_reconciler(inbound.reconcile)
        outbox.register_rebuilder(MessageKind.INTERVENTION_LOG, sharing.rebuild_log)
