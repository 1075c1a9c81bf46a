"""Letters to the buyer's representative, with proof of their dates (issue 11).

The contractor's side of the CCAG's exchanges about an order goes to the
platform as a log, which proves neither that the buyer received it nor when.
So each also becomes a French letter (a PDF) addressed to the buyer's
representative (CCAG-MI §3.3): observations on an order (§3.7.2), a request to
extend its period (§14.3), and the answer to a penalty notice (§15.1: the
buyer's written invitation to present observations within 15 days). The office
records when it was sent and when the buyer received it, from the
acknowledgement.

The services here write the remedy (through `orders.remedies`) and its letter
in one transaction, and have the PDF rendered after the commit, in the
background (`orders.tasks.render_letter_pdf`), never in the request.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from orders import deadlines, remedies, tasks
from orders.formatting import format_date
from orders.models import Letter, LetterKind, LetterPdf, Order, OrderEvent
from orders.services import ServiceError
from portal.models import User

PENALTY_ANSWER_DAYS = 15  # §15.1
TEXT_MAX_LENGTH = 5000
CLOCK_SLACK = timedelta(minutes=5)


def _addressee(order: Order) -> str:
    contract = order.contract
    representative = contract.buyer_representative.strip()
    client = contract.client.name
    return f"{representative}, {client}" if representative else f"Le représentant de l'acheteur, {client}"


def _write(order: Order, *, kind: str, body: str, actor: User | None, at: datetime, **links: object) -> Letter:
    letter = Letter.objects.create(
        order=order,
        kind=kind,
        addressee=_addressee(order),
        body=body,
        written_at=at,
        written_by=actor if actor is not None and actor.pk else None,
        **links,
    )
    _queue_pdf(letter.pk)
    return letter


def _queue_pdf(letter_id: int) -> None:
    # `delay` inside on_commit with robust=True: a broker that is down must not undo
    # what was saved; the order's page offers to ask for a missing PDF again.
    transaction.on_commit(functools.partial(tasks.render_letter_pdf.delay, letter_id), robust=True)


@transaction.atomic
def request_letter_pdf(letter: Letter) -> Letter:
    """Ask again for a PDF that failed, whose task was lost or whose file is gone
    (the letter's text and dates are kept: the PDF is made again from them)."""
    Letter.objects.filter(pk=letter.pk).update(pdf_status=LetterPdf.PENDING)
    _queue_pdf(letter.pk)
    letter.refresh_from_db()
    return letter


@transaction.atomic
def send_observations(order: Order, *, actor: User | None, text: str, at: datetime | None = None) -> Letter:
    """Observations on the order (§3.7.2), relayed to the platform, and their letter."""
    at = at or timezone.now()
    observation = remedies.raise_observation(order, actor=actor, text=text, at=at)
    return _write(
        order, kind=LetterKind.OBSERVATIONS, body=observation.text, actor=actor, at=at, observation=observation
    )


@transaction.atomic
def ask_extension(
    order: Order, *, actor: User | None, cause: str, cause_date: date, days: int, at: datetime | None = None
) -> Letter:
    """A request to extend the period (§14.3.2), relayed to the platform, and its letter."""
    at = at or timezone.now()
    extension = remedies.request_extension(order, actor=actor, cause=cause, cause_date=cause_date, days=days, at=at)
    body = (
        f"Nous ne sommes pas en mesure de respecter le délai d'exécution du bon de commande {order.reference}, "
        f"qui expire le {format_date(deadlines.deadline_of(extension.due_at_before).last_day)} à minuit, "
        f"pour la cause suivante, apparue le {format_date(extension.cause_date)} : {extension.cause}.\n\n"
        f"En application de l'article 14.3.2 du CCAG-MI, nous vous la signalons et vous demandons de prolonger "
        f"ce délai de {extension.days} jour{'s' if extension.days > 1 else ''}."
    )
    return _write(order, kind=LetterKind.EXTENSION, body=body, actor=actor, at=at, extension=extension)


def penalty_answer_deadline(notice_received_on: date, department: str | None = None) -> deadlines.Deadline:
    """15 days from the receipt of the buyer's invitation to present observations (§15.1)."""
    return deadlines.period(notice_received_on, PENALTY_ANSWER_DAYS, department)


@transaction.atomic
def answer_penalty_notice(
    order: Order, *, actor: User | None, notice_received_on: date, text: str, at: datetime | None = None
) -> Letter:
    """The contractor's observations on the penalties the buyer intends to apply,
    within 15 days of receiving its invitation (§15.1); written in the order's
    history (not sent to the platform: a matter between the parties)."""
    at = at or timezone.now()
    text = text.strip()
    if not text:
        raise ServiceError("Écrivez vos observations sur les pénalités envisagées.")
    if len(text) > TEXT_MAX_LENGTH:
        raise ServiceError(f"Vos observations tiennent en {TEXT_MAX_LENGTH} caractères au plus.")
    if notice_received_on > deadlines.local_date(at):
        raise ServiceError("L'invitation de l'acheteur ne peut pas avoir été reçue après aujourd'hui.")
    locked = Order.objects.select_for_update().get(pk=order.pk)
    deadline = penalty_answer_deadline(notice_received_on, locked.department)
    if not deadline.is_open(at):
        raise ServiceError(
            f"L'invitation a été reçue le {format_date(notice_received_on)} : le délai de {PENALTY_ANSWER_DAYS} jours "
            f"pour présenter des observations a expiré le {format_date(deadline.last_day)} à minuit "
            "(CCAG-MI art. 15.1)."
        )
    letter = _write(
        locked,
        kind=LetterKind.PENALTY_ANSWER,
        body=text,
        actor=actor,
        at=at,
        notice_received_on=notice_received_on,
    )
    OrderEvent.objects.create(
        order=locked,
        at=at,
        kind="penalty_answer",
        label=f"Observations sur les pénalités envisagées (invitation reçue le {format_date(notice_received_on)})",
        actor=actor if actor is not None and actor.pk else None,
        data={"letter": letter.pk},
    )
    return letter


@transaction.atomic
def record_letter_dates(
    letter: Letter, *, actor: User | None, sent_on: date | None, received_on: date | None, at: datetime | None = None
) -> Letter:
    """When the letter was sent, and when the buyer received it (from the acknowledgement)."""
    at = at or timezone.now()
    locked = Letter.objects.select_for_update().get(pk=letter.pk)
    today = deadlines.local_date(at + CLOCK_SLACK)
    written = deadlines.local_date(locked.written_at)
    if sent_on is None and received_on is not None:
        raise ServiceError("Indiquez d'abord la date d'envoi.")
    if sent_on is not None and not written <= sent_on <= today:
        raise ServiceError(f"La date d'envoi doit être entre le {format_date(written)} (rédaction) et aujourd'hui.")
    if received_on is not None and sent_on is not None and not sent_on <= received_on <= today:
        raise ServiceError("La date de réception doit être entre la date d'envoi et aujourd'hui.")
    Letter.objects.filter(pk=locked.pk).update(sent_on=sent_on, received_on=received_on)
    locked.refresh_from_db()
    return locked
