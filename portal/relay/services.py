"""What people do about the relay: correct and resend a rejected message, or
give it up with a reason (the contract's *reprise sur erreur*). Audited."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from orders.services import ServiceError
from portal.models import User
from portal.relay import outbox
from portal.relay.delivery import queue_next
from portal.relay.models import MessageAudit, MessageKind, MessageStatus, OutboxMessage


@transaction.atomic
def resend_message(message: OutboxMessage, *, actor: User | None, note: str = "") -> OutboxMessage:
    """Send a rejected message again, its payload rebuilt from the order as it is now
    (after the person corrected it)."""
    # Lock the message row only: `event` is nullable, and PostgreSQL refuses FOR UPDATE
    # on the nullable side of the outer join select_related makes for it.
    locked = OutboxMessage.objects.select_for_update(of=("self",)).select_related("order", "event").get(pk=message.pk)
    if locked.status != MessageStatus.REJECTED:
        raise ServiceError(
            f"Seul un message refusé peut être renvoyé (celui-ci est « {locked.get_status_display()} »)."
        )
    before = locked.payload
    if locked.kind == MessageKind.INTERVENTION_LOG and locked.event is not None:
        locked.payload = outbox.build_log(
            locked.order, locked.event, logged_at=timezone.now(), before_sequence=locked.sequence
        )
    now = timezone.now()
    locked.status = MessageStatus.PENDING
    locked.next_attempt_at = now
    locked.queued_at = now
    locked.rejected_at = None
    locked.resolved_at = now
    locked.resolved_by = actor
    locked.resolution_note = note.strip()
    locked.save(
        update_fields=[
            "payload",
            "status",
            "next_attempt_at",
            "queued_at",
            "rejected_at",
            "resolved_at",
            "resolved_by",
            "resolution_note",
        ]
    )
    MessageAudit.objects.create(message=locked, actor=actor, action="resend", note=note.strip(), payload_before=before)
    transaction.on_commit(lambda: outbox.queue_delivery(locked.pk))
    return locked


@transaction.atomic
def cancel_message(message: OutboxMessage, *, actor: User | None, reason: str) -> OutboxMessage:
    """Give a message up (e.g. the information was entered on the platform by hand).
    The order's later messages may then go."""
    reason = reason.strip()
    if not reason:
        raise ServiceError("Indiquez pourquoi ce message ne sera pas transmis.")
    locked = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if locked.status not in (MessageStatus.REJECTED, MessageStatus.PENDING):
        raise ServiceError(f"Ce message est « {locked.get_status_display()} » : il n'y a rien à abandonner.")
    now = timezone.now()
    OutboxMessage.objects.filter(pk=locked.pk).update(
        status=MessageStatus.CANCELLED, resolved_at=now, resolved_by=actor, resolution_note=reason, lease_until=None
    )
    MessageAudit.objects.create(
        message=locked, actor=actor, action="cancel", note=reason, payload_before=locked.payload
    )
    transaction.on_commit(lambda: queue_next(locked))
    locked.refresh_from_db()
    return locked
