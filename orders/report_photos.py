"""A report's photos sent ahead of the report (orders.photo_models).

The phone (static/js/report-store.js) shrinks each photo as soon as it is
chosen and sends it at once, in parts of 512 KB (most photos, once shrunk,
are one part): each part with the offset it starts at, the first one also
with the photo's kind, size and name (which opens its upload). The server
keeps a part only when it starts where the last one ended, and always answers
with the offset it has (`received`): after a lost connection the phone sends
its part again, is told where the server stands, and resumes from there, so a
weak signal costs at most one part, never the photo. Once whole, the photo is
checked by its content and shrunk here as every photo is (orders.images, its
own limits whatever the phone did), and waits for the report that names its
key (`take_photos`, in the report's transaction). A report that comes before
its photos is told so (`PhotosPending`): the phone's queue sends it again
once they are up. A taken photo leaves its key behind (`TakenPhoto`): a
part of it arriving late (sent twice, its answer lost) is told the report
has it (`PhotoTaken`), rather than opening the photo again.

Parts may come at once (the page's two lanes, the page and its service
worker, a send the browser retried on a fresh connection): the photo's row is
locked while a part is kept, a second copy of one part is told where the
server stands (`PartOutOfStep`), and a part that waited too long for another
request's lock (`LOCK_WAIT`, or SQLite's busy timeout) is told to come again
(the view's 503 with Retry-After): never an error.

Photos sent with the form itself (without JavaScript) and kept when the form
comes back with an error are kept here too (`keep_photos`), so that nothing
has to be chosen again. What no report took is forgotten after two weeks.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import QuerySet

from orders import images
from orders.models import Order, PhotoKind, StagedPhoto, StagedPhotoPart, StagedPhotoStatus, TakenPhoto
from orders.services import ServiceError
from portal.models import User

# One request's part: the phone sends 512 KB (a photo shrunk on the phone is
# one part, most often); more is refused before it is read.
MAX_PART_BYTES = 1024 * 1024
# Photos of one person on one order that no report took yet (two reports' worth, and more).
MAX_WAITING_PHOTOS = 40
KEPT_FOR = timedelta(days=14)
# How long a part waits for another request's lock on its photo (PostgreSQL;
# SQLite has its busy timeout) before it is told to come again.
LOCK_WAIT = timedelta(seconds=10)


@dataclass(frozen=True)
class ReportPhotoUpload:
    """A photo already checked and shrunk by `orders.images.process_photo`, for a report."""

    kind: PhotoKind
    image: images.ProcessedImage


@dataclass(frozen=True)
class Opening:
    """What the phone says of a photo with its first part."""

    kind: str
    size: int
    name: str = ""


class UnknownPhoto(LookupError):
    """No such photo of this person's on this order (never opened, or forgotten): the phone opens it again."""


class PartOutOfStep(Exception):
    """A part that does not start where the received ones end (one was lost, or
    sent twice): not kept; the phone resumes from `received`."""

    def __init__(self, received: int) -> None:
        super().__init__(f"expected offset {received}")
        self.received = received


class PhotoTaken(LookupError):
    """A part of a photo its report took already (sent twice, its answer lost,
    or by the page and its service worker at once): the report has it, nothing
    more is to be sent."""


def is_transient(error: OperationalError) -> bool:
    """A lock that did not come in time: SQLite's "database is locked" (or a
    table, in a shared cache), PostgreSQL's lock timeout, deadlock or
    serialization failure. The request may be sent again as it was."""
    state = getattr(error.__cause__, "sqlstate", None)
    if state is not None:
        return state in {"55P03", "40P01", "40001"}
    return "locked" in str(error)


class PhotosPending(ServiceError):
    """The report names photos that have not all arrived yet: it is not saved,
    and comes again once they have (a refusal only for the person at the form)."""

    def __init__(self, missing: Sequence[UUID]) -> None:
        count = len(missing)
        super().__init__(
            "Une photo n'est pas encore arrivée : patientez pendant son envoi, ou retirez-la."
            if count == 1
            else f"{count} photos ne sont pas encore arrivées : patientez pendant leur envoi, ou retirez-les."
        )
        self.missing = list(missing)


def _photo_label(name: str) -> str:
    return f"La photo « {name or 'sans nom'} »"


def _mine(order: Order, actor: User) -> QuerySet[StagedPhoto]:
    return StagedPhoto.objects.filter(order=order, user=actor)


def _open(order: Order, *, actor: User, key: UUID, opening: Opening) -> StagedPhoto:
    """A photo's first part: its upload opened, with the server's own limits."""
    name = opening.name.strip()[:200]
    if opening.kind not in PhotoKind.values:
        raise ServiceError("Indiquez si la photo est d'avant ou d'après les travaux.")
    if opening.size <= 0:
        raise ServiceError(f"{_photo_label(name)} est vide.")
    if opening.size > images.MAX_PHOTO_BYTES:
        raise ServiceError(f"{_photo_label(name)} dépasse 15 Mo.")
    if _mine(order, actor).count() >= MAX_WAITING_PHOTOS:
        raise ServiceError(
            f"{MAX_WAITING_PHOTOS} photos attendent déjà leur rapport sur cette commande : "
            "enregistrez le rapport, ou retirez des photos."
        )
    try:
        with transaction.atomic():
            return StagedPhoto.objects.create(
                key=key, order=order, user=actor, kind=opening.kind, size=opening.size, name=name
            )
    except IntegrityError:
        # The key is taken: another order's, or the same first part sent twice at once.
        photo = StagedPhoto.objects.select_for_update().filter(key=key).first()
        if photo is None:
            raise
    if photo.order_id != order.pk or photo.user_id != actor.pk:
        raise ServiceError("Cette photo a déjà été reçue pour une autre commande : elle n'est pas reprise.")
    return photo


@transaction.atomic
def receive_part(
    order: Order, *, actor: User, key: UUID, offset: int, data: bytes, opening: Opening | None = None
) -> StagedPhoto:
    """Keep `data` if it starts where the photo's received bytes end; once the
    photo is whole, check and shrink it. The first part (`offset` 0) comes with
    the photo's `opening` (its kind, size and name), so that a photo of one
    part costs one request. A part of a photo already whole (the last one sent
    again, its answer lost) changes nothing; one of a photo its report took is
    told so (PhotoTaken)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{LOCK_WAIT.total_seconds() * 1000:.0f}ms"])
    photo = _mine(order, actor).select_for_update().filter(key=key).first()
    if photo is None:
        if TakenPhoto.objects.filter(order=order, user=actor, key=key).exists():
            raise PhotoTaken(key)
        if opening is None or offset != 0:
            raise UnknownPhoto(key)
        photo = _open(order, actor=actor, key=key, opening=opening)
    elif opening is not None and opening.size != photo.size:
        raise ServiceError("Cette photo a déjà été reçue pour une autre commande : elle n'est pas reprise.")
    if photo.status != StagedPhotoStatus.RECEIVING:
        return photo
    if offset != photo.received:
        raise PartOutOfStep(photo.received)
    if not data:
        raise ServiceError("Ce morceau de photo est vide.")
    if len(data) > MAX_PART_BYTES or offset + len(data) > photo.size:
        raise ServiceError(f"{_photo_label(photo.name)} est plus longue qu'annoncé : choisissez-la à nouveau.")
    try:
        with transaction.atomic():
            StagedPhotoPart.objects.create(photo=photo, offset=offset, data=data)
    except IntegrityError:
        # The same part at once in another request (a send the browser retried on a fresh
        # connection; where rows are not locked, as on SQLite): that one keeps it.
        photo.refresh_from_db(fields=["received"])
        raise PartOutOfStep(photo.received) from None
    photo.received = offset + len(data)
    if photo.received < photo.size:
        photo.save(update_fields=["received"])
        return photo
    _process(photo)
    return photo


def _process(photo: StagedPhoto) -> None:
    """The whole photo: checked by its content, oriented, shrunk and stripped of
    its metadata (orders.images), or refused with the reason; the parts go."""
    parts = photo.parts.order_by("offset").values_list("data", flat=True)
    content = b"".join(bytes(part) for part in parts)
    try:
        image = images.process_photo(io.BytesIO(content), name=photo.name or "sans nom", size=len(content))
    except images.ImageRefused as error:
        photo.status, photo.error = StagedPhotoStatus.REFUSED, str(error)[:500]
    else:
        photo.status = StagedPhotoStatus.READY
        photo.content, photo.width, photo.height = image.content, image.width, image.height
    photo.save()
    photo.parts.all().delete()


def forget_upload(order: Order, *, actor: User, key: UUID) -> bool:
    """« Retirer »: the photo goes, unless a report took it already."""
    deleted, _ = _mine(order, actor).filter(key=key).delete()
    return deleted > 0


def ready_photos(order: Order, *, actor: User) -> QuerySet[StagedPhoto]:
    return _mine(order, actor).filter(status=StagedPhotoStatus.READY)


def show_again(
    order: Order, *, actor: User, keys: Sequence[UUID], new: Sequence[ReportPhotoUpload]
) -> list[StagedPhoto]:
    """A form that came back with an error (without JavaScript): the photos it
    named that are here, in its order, then those sent with it (already checked
    and shrunk), kept for the form to name again."""
    found = {photo.key: photo for photo in ready_photos(order, actor=actor).filter(key__in=keys).defer("content")}
    named = [found[key] for key in dict.fromkeys(keys) if key in found]
    kept = [
        StagedPhoto.objects.create(
            key=uuid4(),
            order=order,
            user=actor,
            kind=photo.kind,
            size=len(photo.image.content),
            received=len(photo.image.content),
            status=StagedPhotoStatus.READY,
            content=photo.image.content,
            width=photo.image.width,
            height=photo.image.height,
        )
        for photo in new
    ]
    return named + kept


def take_photos(order: Order, *, actor: User | None, keys: Sequence[UUID]) -> list[ReportPhotoUpload]:
    """The photos `keys` names, for the report being saved (in its transaction):
    each once, in that order; gone from here once taken, but for their keys
    (TakenPhoto). A photo refused for its content is left out (the phone said
    so when it was sent); one still on its way, or unknown, holds the report
    back (PhotosPending)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    if actor is None:
        raise PhotosPending(keys)
    found = {photo.key: photo for photo in _mine(order, actor).select_for_update().filter(key__in=keys)}
    missing = [key for key in keys if key not in found or found[key].status == StagedPhotoStatus.RECEIVING]
    if missing:
        raise PhotosPending(missing)
    taken = [
        ReportPhotoUpload(
            kind=PhotoKind(found[key].kind),
            image=images.ProcessedImage(bytes(found[key].content), found[key].width, found[key].height),
        )
        for key in keys
        if found[key].status == StagedPhotoStatus.READY
    ]
    StagedPhoto.objects.filter(pk__in=[photo.pk for photo in found.values()]).delete()
    TakenPhoto.objects.bulk_create(
        [TakenPhoto(key=key, order=order, user=actor) for key in keys], ignore_conflicts=True
    )
    return taken


def forget_stale_uploads(now: datetime) -> int:
    """Every night: the photos no report took within two weeks (the phone still
    has them, and sends them again if its report comes later)."""
    deleted, _ = StagedPhoto.objects.filter(created_at__lt=now - KEPT_FOR).delete()
    TakenPhoto.objects.filter(taken_at__lt=now - KEPT_FOR).delete()
    return deleted
