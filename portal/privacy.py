"""The log of who saw occupants' contact details (seed 004 §5.2.4: a breach
notification, within 48 hours, says whose data was seen), kept
ACCESS_LOG_RETENTION_DAYS days.

Pages call `record_contact_access` when they show an order's occupant (the
technician's and the supervisors' order pages, the admin's) or export them
(the list's CSV): one row per page shown (one insert, the page's queries are
otherwise the same), one per export with the number of orders in it. The pages
that refresh themselves (a report's PDF in progress) show no contact details
and log nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.models import ContactAccess, User


def record_contact_access(
    user: User,
    where: str,
    *,
    order_id: int | None = None,
    orders: int = 1,
    detail: str = "",
    at: datetime | None = None,
) -> ContactAccess:
    """Log that `user` saw the contact details of `orders` orders (one: `order_id`) at `where`."""
    at = at or timezone.now()
    return ContactAccess.objects.create(
        user=user, where=where, order_id=order_id, orders=orders, detail=detail[:300], at=at
    )


def purge_contact_accesses(now: datetime | None = None) -> int:
    """Delete what is older than the retention period. Returns how many."""
    limit = (now or timezone.now()) - timedelta(days=settings.ACCESS_LOG_RETENTION_DAYS)
    deleted, _ = ContactAccess.objects.filter(at__lt=limit).delete()
    return deleted
