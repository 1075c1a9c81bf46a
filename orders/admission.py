"""Where the admission of an order's works stands, as CCAG-MI 2021 §33-34 say.
Pure Python, no Django: the steps in, a status with its countdown and a French
explanation out; the overview and the order's page show it, its tests need no
database.

- §33.1: the buyer verifies and notifies its decision within 7 days of the
  services' arrival where they are delivered (the works' end, on site), 30
  when a technical test is required (a contract's `verification_days`).
- §34: if the buyer notifies nothing within that period, the services are
  deemed admitted (*admission tacite*), with effect on the day the period
  expires (§34.1). An admission takes effect on its notification.
- §34.2.1: an adjournment invites the contractor to present the services again
  within 15 days; the contractor makes its acceptance known within 10 days. If
  it refuses or stays silent, the buyer has 15 days more to admit with a price
  reduction or reject; its silence past them is a rejection.
- §34.2.2: presented again, the buyer has the whole verification period again.
- §34.4: a rejection obliges the contractor to execute the services again.

Periods are counted as §3.2 says (`orders.deadlines.period`). "Réceptionné",
the platform's state, means admitted: a reception date is an admission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from orders.deadlines import Deadline, period

VERIFICATION_DAYS = 7  # §33.1, on site
VERIFICATION_WITH_TEST_DAYS = 30  # §33.1, with a technical test
ADJOURNMENT_ACCEPT_DAYS = 10  # §34.2.1
ADJOURNMENT_PRESENT_DAYS = 15  # §34.2.1
ADJOURNMENT_DECIDE_DAYS = 15  # §34.2.1


class Step(StrEnum):
    """The values of `orders.models.AdmissionKind`."""

    PRESENTED = "presented"
    ADMITTED = "admitted"
    ADJOURNED = "adjourned"
    ADJOURNMENT_ACCEPTED = "adjournment_accepted"
    REJECTED = "rejected"


class Status(StrEnum):
    NOT_FINISHED = "not_finished"
    VERIFYING = "verifying"
    ADMITTED = "admitted"
    TACITLY_ADMITTED = "tacitly_admitted"
    ADJOURNED = "adjourned"
    REJECTED = "rejected"
    TACITLY_REJECTED = "tacitly_rejected"


STATUS_LABELS = {
    Status.NOT_FINISHED: "Travaux non terminés",
    Status.VERIFYING: "En vérification",
    Status.ADMITTED: "Admis",
    Status.TACITLY_ADMITTED: "Admis tacitement",
    Status.ADJOURNED: "Ajourné",
    Status.REJECTED: "Rejeté",
    Status.TACITLY_REJECTED: "Rejeté (silence de l'acheteur)",
}


@dataclass(frozen=True)
class AdmissionStatus:
    status: Status
    explanation: str
    effective_on: date | None = None  # when an admission or a rejection takes effect
    deadline: Deadline | None = None  # the next period that runs (verification, presenting again...)
    days_left: int | None = None  # after today, on that deadline (0: its last day)

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def admitted(self) -> bool:
        return self.status in (Status.ADMITTED, Status.TACITLY_ADMITTED)


def _fmt(day: date) -> str:
    return f"{day:%d/%m/%Y}"


def _left(deadline: Deadline, today: date) -> int:
    return (deadline.last_day - today).days


def admission_status(
    works_end: date | None,
    steps: Iterable[tuple[str, date]],
    today: date,
    *,
    verification_days: int = VERIFICATION_DAYS,
    reception_date: date | None = None,
    department: str | None = None,
) -> AdmissionStatus:
    """Where the admission stands on `today`, from the works' end and the
    recorded steps `(Step value, date)` in the order they happened."""
    if works_end is None:
        return AdmissionStatus(Status.NOT_FINISHED, "Les travaux ne sont pas terminés : pas encore de vérification.")
    if reception_date is not None:
        return AdmissionStatus(
            Status.ADMITTED,
            f"Réceptionné le {_fmt(reception_date)} : prestations admises (CCAG-MI art. 34.1).",
            effective_on=reception_date,
        )
    presented = works_end
    again = False
    adjourned: date | None = None
    accepted: date | None = None
    for kind, on in sorted(steps, key=lambda step: step[1]):
        if kind == Step.ADMITTED:
            return AdmissionStatus(
                Status.ADMITTED,
                f"Admission notifiée le {_fmt(on)}, avec effet à cette date (CCAG-MI art. 34.1).",
                effective_on=on,
            )
        if kind == Step.REJECTED:
            return AdmissionStatus(
                Status.REJECTED,
                f"Rejet notifié le {_fmt(on)} : les prestations sont à exécuter à nouveau (CCAG-MI art. 34.4.2), "
                "et à enlever dans les 30 jours (art. 34.4.3).",
                effective_on=on,
                deadline=period(on, 30, department),
                days_left=_left(period(on, 30, department), today),
            )
        if kind == Step.ADJOURNED:
            adjourned, accepted = on, None
        elif kind == Step.ADJOURNMENT_ACCEPTED:
            accepted = on
        elif kind == Step.PRESENTED:
            presented, again, adjourned, accepted = on, True, None, None
    if adjourned is not None:
        return _adjourned(adjourned, accepted, today, department)
    verification = period(presented, verification_days, department)
    since = (
        f"Prestations présentées à nouveau le {_fmt(presented)} (CCAG-MI art. 34.2.2)"
        if again
        else f"Travaux terminés le {_fmt(presented)}"
    )
    if today > verification.last_day:
        return AdmissionStatus(
            Status.TACITLY_ADMITTED,
            f"{since} ; aucune décision notifiée dans les {verification_days} jours de vérification "
            f"(CCAG-MI art. 33.1) : admission tacite, avec effet le {_fmt(verification.last_day)} (art. 34.1).",
            effective_on=verification.last_day,
        )
    left = _left(verification, today)
    remaining = "dernier jour" if left == 0 else f"encore {left} jour{'s' if left > 1 else ''}"
    return AdmissionStatus(
        Status.VERIFYING,
        f"{since} : l'acheteur a jusqu'au {_fmt(verification.last_day)} pour notifier sa décision "
        f"({verification_days} jours, CCAG-MI art. 33.1), {remaining} ; sans décision, admission tacite.",
        deadline=verification,
        days_left=left,
    )


def _adjourned(adjourned: date, accepted: date | None, today: date, department: str | None) -> AdmissionStatus:
    accept = period(adjourned, ADJOURNMENT_ACCEPT_DAYS, department)
    present = period(adjourned, ADJOURNMENT_PRESENT_DAYS, department)
    head = f"Ajournement notifié le {_fmt(adjourned)} (CCAG-MI art. 34.2.1)"
    if accepted is not None or today <= accept.last_day:
        agreed = f"accepté le {_fmt(accepted)}" if accepted else f"à accepter au plus tard le {_fmt(accept.last_day)}"
        deadline = present if accepted is not None or today > accept.last_day else accept
        return AdmissionStatus(
            Status.ADJOURNED,
            f"{head} : {agreed} ; prestations mises au point à présenter à nouveau au plus tard le "
            f"{_fmt(present.last_day)}.",
            deadline=deadline,
            days_left=_left(deadline, today),
        )
    # Silence of the contractor past its 10 days: the buyer has 15 more to decide, then its silence rejects.
    decide = period(accept.last_day, ADJOURNMENT_DECIDE_DAYS, department)
    if today > decide.last_day:
        return AdmissionStatus(
            Status.TACITLY_REJECTED,
            f"{head}, non accepté dans les 10 jours ; l'acheteur n'a pas statué dans les 15 jours suivants : "
            f"rejet le {_fmt(decide.last_day)} (art. 34.2.1).",
            effective_on=decide.last_day,
        )
    return AdmissionStatus(
        Status.ADJOURNED,
        f"{head}, non accepté dans les 10 jours (jusqu'au {_fmt(accept.last_day)}) : l'acheteur peut admettre avec "
        f"réfaction ou rejeter jusqu'au {_fmt(decide.last_day)} ; son silence vaudra rejet.",
        deadline=decide,
        days_left=_left(decide, today),
    )
