"""The supervisor's page of one order, under /pilotage/commandes/<pk>/.

Everything the technician sees of the order (its state actions use the
technician's forms and services), plus what the supervisor does: assign the
technician and the pilot, set the dates, correct the order's details and
lines, raise observations and ask for extensions of the period (CCAG-MI §3.7.2
and §14.3), and follow the timeline of what reached the client's platform,
resending what it refused once the order is corrected.

Every change is a POST to a URL of its own that works as a plain form (then a
redirect back to the page, at the section concerned) and with htmx (then the
page's panel). A refused change shows the page again with the French reason,
and what was typed kept in its form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from orders import actions, buyer, deadlines, formatting, letters, materials, receiving, remedies, services, timing
from orders.access import get_order_for
from orders.forms import add_refusal
from orders.models import ExtensionDecision, ExtensionRequest, MaterialDestination, Order
from orders.queries import is_late
from orders.states import WORK_STATES, Action
from orders.supervisor import timeline
from orders.supervisor.forms import (
    AdmissionStepForm,
    AssignForm,
    BuyerStopForm,
    DetailsForm,
    ExtensionRequestForm,
    LateScopeForm,
    LetterDatesForm,
    LineEditForm,
    NewLineForm,
    ObservationForm,
    PenaltyAnswerForm,
    RestartForm,
    extension_answer_form,
)
from portal.access import role_required
from portal.errors import Refused
from portal.htmx import render_page_or_fragment, show_from_the_top
from portal.models import ContactAccess, Role
from portal.privacy import record_contact_access
from portal.relay import services as relay_services
from portal.relay.forms import ResolveForm
from portal.relay.models import OutboxMessage

TEMPLATE = "orders/supervisor_order.html"
supervisors = role_required(Role.SUPERVISOR, Role.OFFICE)


@dataclass(frozen=True)
class RefusedForm:
    """A form sent and refused: shown again where it was, with the reason above."""

    key: str
    form: forms.Form
    anchor: str


# --- The page ----------------------------------------------------------------------


def _state_buttons(order: Order, refused: RefusedForm | None) -> list[actions.ActionButton]:
    """The technician's state actions, posted here (the supervisor comes back to this page);
    a refused one keeps its place, with the form as it was sent."""

    def url(spec: actions.ActionSpec) -> str:
        return reverse("orders:supervisor_action", args=[order.pk, spec.action.value])

    # No bar at the bottom here (main=False): every action is shown alike.
    return [
        replace(button, main=False, form=refused.form if refused and refused.key == button.key else button.form)
        for button in actions.buttons(order, url)
    ]


def _ccag(order: Order, extensions: list[ExtensionRequest], now: Any, refused: RefusedForm | None) -> dict[str, Any]:
    """Observations and extensions: the forms, and the deadlines that govern them.
    Several extension requests may wait for the buyer at once (one per cause, §14.3.2)."""
    observation_deadline = deadlines.observation_deadline(order.received_at, order.department)
    pending = [
        (
            extension,
            deadlines.extension_answer_deadline(extension.requested_at, order.department),
            _refused_or(
                refused,
                f"answer-{extension.pk}",
                lambda extension=extension: extension_answer_form(extension_pk=extension.pk),
            ),
        )
        for extension in extensions
        if extension.is_pending
    ]
    in_period = order.state in WORK_STATES and order.due_at is not None
    expired = in_period and now >= order.due_at
    return {
        "observation_deadline": observation_deadline,
        "observation_open": observation_deadline.is_open(now) and order.state != "cancelled",
        "observation_days_left": observation_deadline.days_left(now),
        "pending_extensions": pending,
        "can_request_extension": in_period and not expired,
        "extension_expired": expired,
        "extension_window_days": deadlines.EXTENSION_REQUEST_DAYS,
    }


def _buyer(order: Order, now: Any, refused: RefusedForm | None) -> dict[str, Any]:
    """The buyer's decisions: suspensions and sursis (§24, §30.5), admission (§33-34), the scope of V (§15.1)."""
    stops = list(order.buyer_stops.all())
    steps = list(order.admission_steps.all())
    open_stop = next((stop for stop in stops if stop.ends_on is None), None)
    return {
        "stops": stops,
        "open_stop": open_stop,
        "stop_form": _refused_or(refused, "stop", lambda: BuyerStopForm(auto_id="stop-%s")),
        "restart_form": _refused_or(refused, "restart", lambda: RestartForm(auto_id="restart-%s")),
        "can_stop": order.state in WORK_STATES and order.due_at is not None and open_stop is None,
        "admission_steps": steps,
        "admission": buyer.status_of(order, timezone.localdate(now), steps),
        "admission_form": _refused_or(refused, "admission", lambda: AdmissionStepForm(auto_id="admission-%s")),
        "letters": [
            (
                letter,
                _refused_or(
                    refused,
                    f"letter-{letter.pk}",
                    lambda letter=letter: LetterDatesForm(
                        initial={"sent_on": letter.sent_on, "received_on": letter.received_on},
                        auto_id=f"letter-{letter.pk}-%s",
                    ),
                ),
            )
            for letter in order.letters.all()
        ],
        "penalty_form": _refused_or(refused, "penalty", lambda: PenaltyAnswerForm(auto_id="penalty-%s")),
        "scope_form": _refused_or(
            refused, "scope", lambda: LateScopeForm(initial={"whole_unusable": order.late_whole_unusable})
        ),
    }


def _refused_or(refused: RefusedForm | None, key: str, make: Callable[[], forms.Form]) -> forms.Form:
    return refused.form if refused is not None and refused.key == key else make()


def _context(order: Order, *, notice: str = "", refused: RefusedForm | None = None) -> dict[str, Any]:
    now = timezone.now()
    lines = list(order.lines.select_related("price_item"))
    extensions = list(order.extension_requests.select_related("requested_by", "answered_by"))
    buttons = _state_buttons(order, refused)
    return {
        "order": order,
        "now": now,
        "late": is_late(order, now),
        "notice": notice,
        "refused": refused,
        "plan_button": next((button for button in buttons if button.key == Action.PLAN), None),
        "state_buttons": [button for button in buttons if button.key != Action.PLAN],
        "assign_form": _refused_or(
            refused,
            "assign",
            lambda: AssignForm(initial={"technician": order.technician_id, "pilot": order.pilot_id}),
        ),
        "details_form": _refused_or(refused, "details", lambda: DetailsForm(order=order)),
        "can_edit": Action.EDIT in order.allowed_actions,
        "lines": [
            (
                line,
                _refused_or(
                    refused,
                    f"line-{line.pk}",
                    lambda line=line: LineEditForm(
                        initial={name: getattr(line, name) for name in LineEditForm.base_fields},
                        auto_id=f"line-{line.pk}-%s",
                    ),
                ),
            )
            for line in lines
        ],
        "lines_done": sum(line.done for line in lines),
        "lines_total": sum(line.amount_excl_vat for line in lines),
        "new_line_form": _refused_or(refused, "line-new", lambda: NewLineForm(order=order, auto_id="new-line-%s")),
        "observations": list(order.observations.select_related("made_by")),
        "observation_form": _refused_or(refused, "observation", ObservationForm),
        "extensions": extensions,
        "extension_form": _refused_or(refused, "extension", lambda: ExtensionRequestForm(auto_id="extension-%s")),
        **_ccag(order, extensions, now, refused),
        **_buyer(order, now, refused),
        "timeline": timeline.build(order, now=now),
        **_time_and_materials(order, now),
        # The rejected message whose resend or abandon was refused, to show its form's errors.
        "refused_message": int(refused.key.removeprefix("message-"))
        if refused and refused.key.startswith("message-")
        else None,
    }


def _time_and_materials(order: Order, now: Any) -> dict[str, Any]:
    """The time on site counted from the history, and the reports' supplies with their prices."""
    on_site, typed = timing.order_time_on_site(order, now=now)
    supplies = list(materials.of_order(order))
    return {
        "on_site": on_site,
        "on_site_typed": typed,
        "materials": supplies,
        "materials_pending": sum(1 for supply in supplies if supply.destination == MaterialDestination.PENDING),
        "materials_total": sum((supply.amount for supply in supplies), Decimal(0)),
    }


def _render(request: HttpRequest, order: Order, **context: Any) -> HttpResponse:
    """The whole page, or its panel for htmx: one URL serves both."""
    return render_page_or_fragment(request, TEMPLATE, "panel", _context(order, **context))


@supervisors
def supervisor_order(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    record_contact_access(request.user, ContactAccess.Where.SUPERVISOR_PAGE, order_id=order.pk, detail=order.reference)
    return _render(request, order)


# --- The changes -------------------------------------------------------------------


def _change(
    request: HttpRequest,
    order: Order,
    key: str,
    form: forms.Form,
    apply: Callable[[dict[str, Any]], str],
    *,
    anchor: str,
) -> HttpResponse:
    """The end of every change: parse, call the service through `apply` (which
    returns what to tell the person), then show the page; a refusal or an
    invalid form shows the page again with the form as it was sent."""
    if form.is_valid():
        try:
            notice = apply(form.cleaned_data)
        except Refused as error:
            add_refusal(form, error)
        else:
            if not request.htmx:
                messages.success(request, notice)
                return redirect(reverse("orders:supervisor_order", args=[order.pk]) + f"#{anchor}")
            return _render(request, get_order_for(request, order.pk), notice=notice)
    # Reloaded: the order may have changed meanwhile.
    response = _render(request, get_order_for(request, order.pk), refused=RefusedForm(key, form, anchor))
    return show_from_the_top(request, response)


def _label(event: Any, unchanged: str = "Rien n'a changé.") -> str:
    return event.label if event is not None else unchanged


@supervisors
@require_POST
def supervisor_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """A state action, with the technician's form (its cleaned data are the service's arguments)."""
    spec = actions.get(action)
    if spec is None or spec.technician_form is None or spec.own_section:
        raise Http404
    order = get_order_for(request, pk)
    form = actions.technician_form(spec, order, request.POST)

    def apply(data: dict[str, Any]) -> str:
        return _label(spec.service(order, actor=request.user, **data), "C'était déjà fait : rien n'a changé.")

    anchor = "dates" if spec.action == Action.PLAN else "actions"
    return _change(request, order, spec.name, form, apply, anchor=anchor)


@supervisors
@require_POST
def supervisor_assign(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)

    def apply(data: dict[str, Any]) -> str:
        event = services.assign_order(order, actor=request.user, **data)
        return event.label if event is not None else "Rien n'a changé."

    return _change(request, order, "assign", AssignForm(request.POST), apply, anchor="affectation")


@supervisors
@require_POST
def supervisor_details(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)

    def apply(data: dict[str, Any]) -> str:
        return _label(receiving.update_order_details(order, actor=request.user, changes=data))

    return _change(request, order, "details", DetailsForm(request.POST, order=order), apply, anchor="details")


@supervisors
@require_POST
def supervisor_line_add(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    form = NewLineForm(request.POST, order=order, auto_id="new-line-%s")

    def apply(data: dict[str, Any]) -> str:
        line = receiving.add_line(order, actor=request.user, **data)
        return f"Ligne ajoutée : {line.reference} – {line.label}"

    return _change(request, order, "line-new", form, apply, anchor="lignes")


@supervisors
@require_POST
def supervisor_materials_to_lines(request: HttpRequest, pk: int) -> HttpResponse:
    """The reports' supplies still to take up become the order's lines, done (orders.materials)."""
    order = get_order_for(request, pk)

    def apply(data: dict[str, Any]) -> str:
        return materials.add_to_order(order, actor=request.user).label

    return _change(request, order, "materials", forms.Form(request.POST), apply, anchor="fournitures")


@supervisors
@require_POST
def supervisor_line_update(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    line = get_object_or_404(order.lines, pk=line_pk)
    form = LineEditForm(request.POST, auto_id=f"line-{line.pk}-%s")

    def apply(data: dict[str, Any]) -> str:
        return _label(receiving.update_line(line, actor=request.user, changes=data))

    return _change(request, order, f"line-{line.pk}", form, apply, anchor="lignes")


@supervisors
@require_POST
def supervisor_line_remove(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    line = get_object_or_404(order.lines, pk=line_pk)

    def apply(data: dict[str, Any]) -> str:
        return receiving.remove_line(line, actor=request.user).label

    return _change(request, order, f"line-{line.pk}", forms.Form(request.POST), apply, anchor="lignes")


@supervisors
@require_POST
def supervisor_observation(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)

    def apply(data: dict[str, Any]) -> str:
        letters.send_observations(order, actor=request.user, text=data["text"])
        return "Observations enregistrées : elles sont transmises au client, et leur courrier est en préparation."

    return _change(request, order, "observation", ObservationForm(request.POST), apply, anchor="ccag")


@supervisors
@require_POST
def supervisor_extension(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    form = ExtensionRequestForm(request.POST, auto_id="extension-%s")

    def apply(data: dict[str, Any]) -> str:
        extension = letters.ask_extension(order, actor=request.user, **data).extension
        days = extension.days if extension else data["days"]
        return f"Demande de prolongation de {days} jour(s) enregistrée : elle est transmise au client."

    return _change(request, order, "extension", form, apply, anchor="ccag")


@supervisors
@require_POST
def supervisor_extension_answer(request: HttpRequest, pk: int, extension_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    extension = get_object_or_404(order.extension_requests, pk=extension_pk)
    form = extension_answer_form(request.POST, extension_pk=extension.pk)

    def apply(data: dict[str, Any]) -> str:
        answered = remedies.answer_extension(extension, actor=request.user, **data)
        if answered.decision == ExtensionDecision.GRANTED:
            due = formatting.format_deadline(answered.due_at_after)
            return f"Prolongation accordée : {answered.granted_days} jour(s), nouvelle échéance le {due}."
        return "Refus de la prolongation enregistré : l'échéance reste inchangée."

    return _change(request, order, f"answer-{extension.pk}", form, apply, anchor="ccag")


@supervisors
@require_POST
def supervisor_stop(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)

    def apply(data: dict[str, Any]) -> str:
        stop = buyer.stop_clock(order, actor=request.user, **data)
        return f"{stop.get_kind_display()} enregistré(e) : le délai d'exécution est arrêté."

    return _change(request, order, "stop", BuyerStopForm(request.POST, auto_id="stop-%s"), apply, anchor="acheteur")


@supervisors
@require_POST
def supervisor_restart(request: HttpRequest, pk: int, stop_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    stop = get_object_or_404(order.buyer_stops, pk=stop_pk)

    def apply(data: dict[str, Any]) -> str:
        ended = buyer.restart_clock(stop, actor=request.user, **data)
        due = formatting.format_deadline(ended.due_at_after) if ended.due_at_after else "—"
        return f"Reprise enregistrée : {ended.days} jour(s) d'arrêt, nouvelle échéance le {due}."

    return _change(request, order, "restart", RestartForm(request.POST, auto_id="restart-%s"), apply, anchor="acheteur")


@supervisors
@require_POST
def supervisor_admission(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    form = AdmissionStepForm(request.POST, auto_id="admission-%s")

    def apply(data: dict[str, Any]) -> str:
        step = buyer.record_admission_step(order, actor=request.user, **data)
        return f"{step.get_kind_display()} enregistré(e)."

    return _change(request, order, "admission", form, apply, anchor="acheteur")


@supervisors
@require_POST
def supervisor_late_scope(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)

    def apply(data: dict[str, Any]) -> str:
        buyer.set_late_scope(order, actor=request.user, **data)
        return "Valeur retenue pour les pénalités de retard enregistrée."

    return _change(request, order, "scope", LateScopeForm(request.POST), apply, anchor="acheteur")


@supervisors
@require_POST
def supervisor_penalty_answer(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    form = PenaltyAnswerForm(request.POST, auto_id="penalty-%s")

    def apply(data: dict[str, Any]) -> str:
        letters.answer_penalty_notice(order, actor=request.user, **data)
        return "Observations sur les pénalités enregistrées : leur courrier est en préparation."

    return _change(request, order, "penalty", form, apply, anchor="courriers")


@supervisors
@require_POST
def supervisor_letter_dates(request: HttpRequest, pk: int, letter_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    letter = get_object_or_404(order.letters, pk=letter_pk)
    form = LetterDatesForm(request.POST, auto_id=f"letter-{letter.pk}-%s")

    def apply(data: dict[str, Any]) -> str:
        letters.record_letter_dates(letter, actor=request.user, **data)
        return "Dates d'envoi et de réception du courrier enregistrées."

    return _change(request, order, f"letter-{letter.pk}", form, apply, anchor="courriers")


@supervisors
@require_POST
def supervisor_letter_render(request: HttpRequest, pk: int, letter_pk: int) -> HttpResponse:
    order = get_order_for(request, pk)
    letter = get_object_or_404(order.letters, pk=letter_pk)

    def apply(data: dict[str, Any]) -> str:
        letters.request_letter_pdf(letter)
        return "PDF du courrier demandé à nouveau."

    return _change(request, order, f"letter-{letter.pk}", forms.Form(request.POST), apply, anchor="courriers")


@supervisors
def supervisor_letter_pdf(request: HttpRequest, pk: int, letter_pk: int) -> HttpResponse:
    """The letter's PDF, to those who may see the order (never from the static files)."""
    order = get_order_for(request, pk)
    letter = get_object_or_404(order.letters, pk=letter_pk)
    if not letter.pdf:
        raise Http404("Le PDF de ce courrier n'est pas encore prêt.")
    try:
        stream = letter.pdf.open("rb")
    except OSError as error:  # gone from the storage: « Produire le PDF » makes it again
        raise Http404("Le PDF de ce courrier est introuvable.") from error
    return FileResponse(stream, content_type="application/pdf", filename=f"courrier-{letter.pk}.pdf")


@supervisors
@require_POST
def supervisor_resend(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    """« Renvoyer »: the relay rebuilds a log from the order as it is now (see
    portal.relay.services.resend_message), so correct the order first."""
    order = get_order_for(request, pk)
    message = get_object_or_404(OutboxMessage, pk=message_pk, order=order)

    def apply(data: dict[str, Any]) -> str:
        relay_services.resend_message(message, actor=request.user, note=data["note"])
        return f"Message n° {message.sequence} renvoyé à la plateforme, reconstruit à partir de la commande actuelle."

    form = ResolveForm(request.POST, auto_id=f"message-{message.pk}-%s")
    return _change(request, order, f"message-{message.pk}", form, apply, anchor=f"message-{message.pk}")


@supervisors
@require_POST
def supervisor_abandon(request: HttpRequest, pk: int, message_pk: int) -> HttpResponse:
    """« Abandonner »: with a reason (e.g. entered by hand on the platform); the
    order's next messages may then go."""
    order = get_order_for(request, pk)
    message = get_object_or_404(OutboxMessage, pk=message_pk, order=order)

    def apply(data: dict[str, Any]) -> str:
        relay_services.cancel_message(
            message, actor=request.user, reason=data["note"], entered_by_hand_at=data.get("entered_by_hand_at")
        )
        return f"Message n° {message.sequence} abandonné : les suivants de la commande peuvent partir."

    form = ResolveForm(request.POST, auto_id=f"message-{message.pk}-%s")
    return _change(request, order, f"message-{message.pk}", form, apply, anchor=f"message-{message.pk}")
