"""The end of a contract (seed 004 §5): once it has ended and its retention
period (`Contract.retention_days`, 0 by default) has passed, the occupants'
personal data of its orders is erased, and the erasure recorded per contract
(`portal.ContractErasure`, shown in the admin).

Erased: the occupant's name, phones and email and the access notes of each
order; the signatory's name and the signature of each report (the image is
replaced by a blank one, so that the report still says it was signed); the
photos flagged as showing a person; and every copy of those values in the
orders' history, the messages sent to the platform and the notifications it
sent (the text is replaced by « [effacé] »). Kept: references, dates, states,
lines and amounts, what accounting and the contract's proof need; the PDFs
already sent stay on the platform, the manager's copy.

`dry_run` counts what would go and writes nothing.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image

from orders.models import InterventionReport, Order, OrderEvent, ReportPhoto
from portal.errors import Refused
from portal.models import Contract, ContractErasure, User
from portal.relay.models import InboundNotification, MessageAudit, OutboxMessage

ERASED = "[effacé]"
# Shorter values are not looked for in the texts (a "06" would match everywhere).
MIN_LENGTH = 4
PERSONAL_FIELDS = ("occupant_name", "occupant_phone", "occupant_mobile", "occupant_email", "access_notes")


@dataclass
class ErasureCounts:
    orders: int = 0
    signatures: int = 0
    photos: int = 0
    events: int = 0
    messages: int = 0
    notifications: int = 0

    def add(self, other: ErasureCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def erasure_date(contract: Contract) -> date | None:
    """The first day the contract's personal data may be erased, None while it has no end."""
    if contract.ends_on is None:
        return None
    return contract.ends_on + timedelta(days=contract.retention_days + 1)


def due_contracts(today: date | None = None) -> list[Contract]:
    """The contracts whose personal data is due for erasure and not erased yet."""
    today = today or timezone.localdate()
    candidates = Contract.objects.filter(ends_on__lt=today, erasures__isnull=True).select_related("client")
    return [contract for contract in candidates if (erasure_date(contract) or today) <= today]


def _scrub(value: Any, secrets: list[str]) -> Any:
    """`value` (JSON) with every occurrence of `secrets` in its texts replaced."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, ERASED)
        return value
    if isinstance(value, list):
        return [_scrub(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _scrub(item, secrets) for key, item in value.items()}
    return value


def _blank_signature() -> bytes:
    output = io.BytesIO()
    Image.new("RGBA", (300, 100), (255, 255, 255, 0)).save(output, "PNG")
    return output.getvalue()


def _erase_order(order: Order, *, dry_run: bool, doomed_files: list[str]) -> ErasureCounts:
    counts = ErasureCounts()
    reports = list(InterventionReport.objects.filter(order=order))
    secrets = {getattr(order, name) for name in PERSONAL_FIELDS}
    secrets |= {report.signatory_name for report in reports}
    # Earlier values, from the history of changes (`update_order_details`
    # keeps each changed field's {"avant", "après"}).
    for data in OrderEvent.objects.filter(order=order).values_list("data", flat=True):
        if isinstance(data, dict):
            for name in PERSONAL_FIELDS:
                change = data.get(name)
                if isinstance(change, dict):
                    secrets |= {str(value) for value in change.values() if value}
    # Longest first: a full name before the surname it contains.
    found = sorted((value.strip() for value in secrets if len(value.strip()) >= MIN_LENGTH), key=len, reverse=True)
    photos = ReportPhoto.objects.filter(report__order=order, shows_person=True)
    signed = [report for report in reports if report.signature]
    if any(getattr(order, name) for name in PERSONAL_FIELDS) or any(r.signatory_name for r in reports):
        counts.orders = 1
    counts.signatures = len(signed)
    counts.photos = photos.count()
    rows: list[tuple[QuerySet, str, list]] = [
        (OrderEvent.objects.filter(order=order), "data", []),
        (OutboxMessage.objects.filter(order=order), "payload", []),
        (MessageAudit.objects.filter(message__order=order), "payload_before", []),
        (InboundNotification.objects.filter(order=order), "body", []),
    ]
    for queryset, field, changed in rows:
        for pk, value in queryset.values_list("pk", field):
            scrubbed = _scrub(value, found)
            if scrubbed != value:
                changed.append((pk, scrubbed))
    counts.events, counts.messages = len(rows[0][2]), len(rows[1][2]) + len(rows[2][2])
    counts.notifications = len(rows[3][2])
    if dry_run:
        return counts
    Order.objects.filter(pk=order.pk).update(
        **dict.fromkeys(PERSONAL_FIELDS, ""), description=_scrub(order.description, found)
    )
    for queryset, field, changed in rows:
        # Updated in the database directly: the history is append-only for
        # people and services, and this is the one exception the contract makes.
        for pk, scrubbed in changed:
            queryset.model.objects.filter(pk=pk).update(**{field: scrubbed})
    for report in reports:
        updates: dict[str, Any] = {"signatory_name": ""}
        if report.signature:
            doomed_files.append(str(report.signature.name))
            updates["signature"] = default_storage.save(
                "reports/signatures/effacee.png", ContentFile(_blank_signature())
            )
        InterventionReport.objects.filter(pk=report.pk).update(**updates)
    doomed_files.extend(str(photo.image.name) for photo in photos)
    photos.delete()
    return counts


def _delete_files(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)


def erase_contract(
    contract: Contract, *, actor: User | None = None, dry_run: bool = False, at: datetime | None = None
) -> ErasureCounts:
    """Erase (or, with `dry_run`, count) the occupants' personal data of
    `contract`'s orders; record the erasure. Refused before the erasure date
    (a dry run may be made at any time)."""
    at = at or timezone.now()
    first_day = erasure_date(contract)
    if first_day is None:
        raise Refused(f"Le marché {contract.reference} n'a pas de date de fin : rien n'est effacé.")
    if not dry_run and timezone.localdate(at) < first_day:
        raise Refused(
            f"Les données du marché {contract.reference} sont conservées jusqu'au "
            f"{first_day - timedelta(days=1):%d/%m/%Y} (fin du marché et délai de conservation)."
        )
    counts = ErasureCounts()
    doomed_files: list[str] = []
    with transaction.atomic():
        for order in Order.objects.filter(contract=contract).order_by("pk").iterator(chunk_size=200):
            counts.add(_erase_order(order, dry_run=dry_run, doomed_files=doomed_files))
        if not dry_run:
            ContractErasure.objects.create(contract=contract, at=at, actor=actor, counts=counts.as_dict())
            # The files go once the database no longer names them.
            transaction.on_commit(lambda: _delete_files(doomed_files))
    return counts


def erase_due_contracts(today: date | None = None) -> dict[str, dict[str, int]]:
    """The periodic task's work: every contract due, each in its own transaction."""
    return {contract.reference: erase_contract(contract).as_dict() for contract in due_contracts(today)}
