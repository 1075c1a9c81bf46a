"""What people do about the relay: correct and resend a rejected message, or
give it up with a reason (the contract's *reprise sur erreur*). Audited."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from portal.errors import Refused
from portal.models import User
from portal.relay import delivery, outbox, tasks
from portal.relay.models import MessageAudit, MessageStatus, OutboxMessage


@transaction.atomic
def resend_message(message: OutboxMessage, *, actor: User | None, note: str = "") -> OutboxMessage:
    """Send a rejected message again, its payload rebuilt from the order as it is now
    (after the person corrected it)."""
    # Lock the message row only: `event` is nullable, and PostgreSQL refuses FOR UPDATE
    # on the nullable side of the outer join select_related makes for it.
    locked = OutboxMessage.objects.select_for_update(of=("self",)).select_related("event").get(pk=message.pk)
    if locked.status != MessageStatus.REJECTED:
        raise Refused(f"Seul un message refusé peut être renvoyé (celui-ci est « {locked.get_status_display()} »).")
    before = locked.payload
    locked.payload = outbox.rebuilt_payload(locked, logged_at=timezone.now())
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
    transaction.on_commit(lambda: tasks.queue_delivery(locked.pk))
    return locked


@transaction.atomic
def cancel_message(message: OutboxMessage, *, actor: User | None, reason: str) -> OutboxMessage:
    """Give a message up (e.g. the information was entered on the platform by hand).
    The order's later messages may then go."""
    reason = reason.strip()
    if not reason:
        raise Refused("Indiquez pourquoi ce message ne sera pas transmis.")
    locked = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if locked.status not in (MessageStatus.REJECTED, MessageStatus.PENDING):
        raise Refused(f"Ce message est « {locked.get_status_display()} » : il n'y a rien à abandonner.")
    now = timezone.now()
    OutboxMessage.objects.filter(pk=locked.pk).update(
        status=MessageStatus.CANCELLED, resolved_at=now, resolved_by=actor, resolution_note=reason, lease_until=None
    )
    MessageAudit.objects.create(
        message=locked, actor=actor, action="cancel", note=reason, payload_before=locked.payload
    )
    transaction.on_commit(lambda: _queue_next(locked))
    locked.refresh_from_db()
    return locked


def _queue_next(message: OutboxMessage) -> None:
    if (following := delivery.next_due(message)) is not None:
        tasks.queue_delivery(following)
