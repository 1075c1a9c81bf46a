"""What people do about the relay: correct and resend a rejected message, or
give it up with a reason (the contract's *reprise sur erreur*). Audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from portal.errors import Refused
from portal.limits import SHARING_LIMIT
from portal.models import User
from portal.relay import claims, outbox, tasks
from portal.relay.models import Breach, MessageAudit, MessageStatus, OutboxMessage

CLOCK_SLACK = timedelta(minutes=5)  # a person's clock and the server's may differ a little


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
def cancel_message(
    message: OutboxMessage, *, actor: User | None, reason: str, entered_by_hand_at: datetime | None = None
) -> OutboxMessage:
    """Give a message up (e.g. the information was entered on the platform by hand,
    at `entered_by_hand_at`: a breach of the 15-minute limit ends there, and one
    is recorded if the data got there late). The order's later messages may then go."""
    reason = reason.strip()
    if not reason:
        raise Refused("Indiquez pourquoi ce message ne sera pas transmis.")
    locked = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if locked.status not in (MessageStatus.REJECTED, MessageStatus.PENDING):
        raise Refused(f"Ce message est « {locked.get_status_display()} » : il n'y a rien à abandonner.")
    now = timezone.now()
    if entered_by_hand_at is not None:
        _close_breach_by_hand(locked, entered_by_hand_at, now)
    else:
        # Given up for another reason: the breach, if any, stops growing now.
        Breach.objects.filter(message=locked, delivered_at=None, entered_by_hand_at=None).update(
            delay_seconds=int((now - locked.created_at).total_seconds())
        )
    OutboxMessage.objects.filter(pk=locked.pk).update(
        status=MessageStatus.CANCELLED, resolved_at=now, resolved_by=actor, resolution_note=reason, lease_until=None
    )
    MessageAudit.objects.create(
        message=locked, actor=actor, action="cancel", note=reason, payload_before=locked.payload
    )
    transaction.on_commit(lambda: _queue_next(locked))
    locked.refresh_from_db()
    return locked


def _close_breach_by_hand(message: OutboxMessage, entered_at: datetime, now: datetime) -> None:
    if entered_at < message.created_at:
        raise Refused("La saisie sur la plateforme ne peut pas précéder la modification qu'elle reprend.")
    if entered_at > now + CLOCK_SLACK:
        raise Refused("La date de saisie sur la plateforme ne peut pas être dans le futur.")
    delay = entered_at - message.created_at
    if delay <= SHARING_LIMIT:
        Breach.objects.filter(message=message).delete()  # recorded early by the watch: it was on time after all
        return
    Breach.objects.update_or_create(
        message=message,
        defaults={
            "connection_id": message.connection_id,
            "changed_at": message.created_at,
            "delivered_at": None,
            "delay_seconds": int(delay.total_seconds()),
            "entered_by_hand_at": entered_at,
        },
    )


def _queue_next(message: OutboxMessage) -> None:
    if (following := claims.next_due(message)) is not None:
        tasks.queue_delivery(following)
