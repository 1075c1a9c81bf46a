"""The one table of actions (orders.actions): every page that offers an action
reads it, so that an action added there reaches the technician's pages, the
supervisor's page and the admin, and nowhere else lists actions.

Also the receipt of an action sent with a key (orders.offline.apply_once), the
service behind the phone's replays; the pages' side is in tests/test_offline.py."""

from __future__ import annotations

import inspect
import re
import uuid
from datetime import timedelta
from functools import partial

import pytest
from django.urls import resolve, reverse
from django.utils import timezone

from orders import actions, offline, planning, services, views
from orders.models import ActionReceipt
from orders.states import ACTION_LABELS, TRANSITIONS, Action, State
from portal.errors import Refused

# The technician's forms carry these; their cleaned data give the service `at` instead.
PHONE_FIELDS = {"client_at", "idempotency_key"}


def walk(order, state: State, actor) -> None:
    """Bring `order` to `state` through the services."""
    at = timezone.now() - timedelta(hours=1)
    acknowledge = partial(services.acknowledge_order, order, actor=actor, at=at)
    plan = partial(planning.plan_order, order, actor=actor, appointment=at + timedelta(hours=3), at=at)
    start = partial(services.start_work, order, actor=actor, at=at)
    suspend = partial(services.suspend_work, order, actor=actor, reason="occupant_absent", at=at)
    finish = partial(services.finish_work, order, actor=actor, at=at + timedelta(minutes=30))
    steps = {
        State.TO_ACKNOWLEDGE: [],
        State.ACKNOWLEDGED: [acknowledge],
        State.PLANNED: [acknowledge, plan],
        State.IN_PROGRESS: [acknowledge, plan, start],
        State.SUSPENDED: [acknowledge, plan, start, suspend],
        State.FINISHED: [acknowledge, plan, start, finish],
    }
    for step in steps[state]:
        step()
    order.refresh_from_db()


WALKABLE = [State.TO_ACKNOWLEDGE, State.ACKNOWLEDGED, State.PLANNED, State.IN_PROGRESS, State.SUSPENDED, State.FINISHED]


# --- The table itself ---------------------------------------------------------------


def test_every_action_of_the_state_machine_is_in_the_table_once_with_a_label_and_a_service():
    assert sorted(spec.action for spec in actions.TABLE) == sorted(Action)  # each once
    for spec in actions.TABLE:
        assert spec.label == ACTION_LABELS[spec.action]
        assert callable(spec.service)


def test_the_keys_of_the_actions_are_distinct():
    names = [spec.name for spec in actions.TABLE]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", list(actions.technician_actions()), ids=lambda spec: spec.action.value)
def test_every_technician_action_has_its_url_served_by_the_one_action_view(spec):
    args = [1, 2] if spec.on_line else [1]
    url = reverse(spec.url_name, args=args)

    assert url == "/commandes/1/" + spec.path.replace("<int:line_pk>", "2") + "/"
    match = resolve(url)
    assert match.func is views.order_action
    assert match.kwargs["action"] == spec.action
    if not spec.own_section:
        assert spec.button, "a button says what it does"


def test_the_technicians_urls_are_those_the_templates_and_the_phone_use():
    assert {spec.url: f"/commandes/1/{spec.path}/" for spec in actions.technician_actions() if not spec.on_line} == {
        "acknowledge": "/commandes/1/prendre-en-compte/",
        "plan": "/commandes/1/planifier/",
        "start": "/commandes/1/demarrer/",
        "resume": "/commandes/1/reprendre/",
        "suspend": "/commandes/1/suspendre/",
        "finish": "/commandes/1/terminer/",
        "progress": "/commandes/1/avancement/",
    }
    assert reverse("orders:mark_line", args=[1, 2]) == "/commandes/1/lignes/2/"


def _accepts(service, target_kwargs: set[str]) -> bool:
    parameters = inspect.signature(service).parameters
    keyword = {name for name, p in parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    required = {
        name
        for name, p in parameters.items()
        if p.kind == p.KEYWORD_ONLY and p.default is inspect.Parameter.empty and name != "actor"
    }
    return target_kwargs <= keyword and required <= target_kwargs


@pytest.mark.parametrize("spec", [s for s in actions.TABLE if s.technician_form], ids=lambda s: s.action.value)
def test_the_cleaned_data_of_a_technicians_form_are_its_services_arguments(spec):
    fields = set(spec.technician_form.base_fields) - PHONE_FIELDS | {"at"}
    assert _accepts(spec.service, fields), (spec.action, fields)


@pytest.mark.parametrize("spec", list(actions.admin_actions()), ids=lambda s: s.action.value)
def test_the_cleaned_data_of_an_admin_form_are_its_services_arguments(spec):
    fields = set(spec.admin_form.base_fields)
    assert _accepts(spec.service, fields), (spec.action, fields)


@pytest.mark.parametrize("state", list(State))
def test_the_main_action_of_a_state_is_allowed_in_it_and_is_a_technicians_button(state):
    main = actions.main_action(state)
    holders = [spec for spec in actions.TABLE if state in spec.main_in]

    assert len(holders) <= 1
    if main is not None:
        assert state in TRANSITIONS[main]
        spec = actions.ACTIONS[main]
        assert spec.technician_form is not None and not spec.own_section


def test_a_state_where_work_goes_on_has_a_next_step():
    for state in (State.TO_ACKNOWLEDGE, State.ACKNOWLEDGED, State.PLANNED, State.IN_PROGRESS, State.SUSPENDED):
        assert actions.main_action(state) is not None


def test_an_unknown_name_is_no_action():
    assert actions.get("teleport") is None
    assert actions.get("start") is actions.ACTIONS[Action.START]


# --- The pages read it ----------------------------------------------------------------


def _action_urls(html: str, pattern: str) -> list[str]:
    return re.findall(pattern, html)


@pytest.mark.parametrize("state", WALKABLE)
def test_the_technicians_page_offers_exactly_the_tables_buttons_its_state_allows(client, order, technician, state):
    walk(order, state, technician)
    client.force_login(technician)

    html = client.get(f"/commandes/{order.pk}/").content.decode()

    expected = {
        reverse(spec.url_name, args=[order.pk])
        for spec in actions.technician_actions()
        if not spec.own_section and spec.action in order.allowed_actions
    }
    offered = set(_action_urls(html, rf'action="(/commandes/{order.pk}/[a-z-]+/)"')) - {
        f"/commandes/{order.pk}/avancement/",
        f"/commandes/{order.pk}/notes/",
    }
    assert offered == expected


@pytest.mark.parametrize("state", WALKABLE)
def test_the_supervisors_page_offers_exactly_the_tables_buttons_its_state_allows(client, order, supervisor, state):
    walk(order, state, supervisor)
    client.force_login(supervisor)

    html = client.get(f"/pilotage/commandes/{order.pk}/").content.decode()

    expected = {
        spec.action.value
        for spec in actions.technician_actions()
        if not spec.own_section and spec.action in order.allowed_actions
    }
    assert set(_action_urls(html, rf'action="/pilotage/commandes/{order.pk}/actions/([a-z_]+)/"')) == expected


@pytest.mark.parametrize("action", ["set_progress", "mark_line", "record_reception", "teleport"])
def test_the_supervisors_page_takes_only_the_buttons_actions(client, order, supervisor, action):
    client.force_login(supervisor)
    assert client.post(f"/pilotage/commandes/{order.pk}/actions/{action}/").status_code == 404


@pytest.mark.parametrize("state", WALKABLE)
def test_the_admin_offers_exactly_the_tables_admin_actions_its_state_allows(client, order, office, state):
    walk(order, state, office)
    client.force_login(office)

    html = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()

    expected = [
        spec.action.value for spec in actions.admin_actions() if spec.action in order.allowed_actions
    ]  # in the table's order
    assert _action_urls(html, rf'href="/admin/orders/order/{order.pk}/action/([a-z_]+)/"') == expected


@pytest.mark.parametrize("spec", list(actions.TABLE), ids=lambda s: s.action.value)
def test_an_admin_action_page_exists_exactly_for_the_tables_admin_actions(client, order, office, spec):
    client.force_login(office)
    response = client.get(f"/admin/orders/order/{order.pk}/action/{spec.action.value}/")
    assert response.status_code == (200 if spec.admin_form else 404)
    if spec.admin_form:
        assert spec.label in response.content.decode()


# --- The receipt of an action sent with a key ------------------------------------------


@pytest.mark.django_db
def test_an_action_with_a_key_is_applied_once_and_receipted(order, technician):
    key = uuid.uuid4()

    def apply():
        return services.acknowledge_order(order, actor=technician)

    first = offline.apply_once(apply, key=key, user=technician, order=order, action="acknowledge")
    second = offline.apply_once(apply, key=key, user=technician, order=order, action="acknowledge")

    assert first.status == "applied" and first.label
    assert second.status == "duplicate" and second.label == first.label
    receipt = ActionReceipt.objects.get(key=key)
    assert (receipt.user, receipt.order, receipt.action, receipt.label) == (
        technician,
        order,
        "acknowledge",
        first.label,
    )


@pytest.mark.django_db
def test_an_action_refused_leaves_no_receipt(order, technician):
    key = uuid.uuid4()

    with pytest.raises(Refused):
        offline.apply_once(
            lambda: services.start_work(order, actor=technician), key=key, user=technician, order=order, action="start"
        )

    assert not ActionReceipt.objects.filter(key=key).exists()


@pytest.mark.django_db
def test_a_key_received_for_another_action_is_refused(order, technician):
    key = uuid.uuid4()
    offline.apply_once(
        lambda: services.acknowledge_order(order, actor=technician),
        key=key,
        user=technician,
        order=order,
        action="acknowledge",
    )

    with pytest.raises(Refused, match="déjà été reçue"):
        offline.apply_once(lambda: None, key=key, user=technician, order=order, action="note")


@pytest.mark.django_db
def test_without_a_key_nothing_is_receipted(order, technician):
    outcome = offline.apply_once(
        lambda: services.acknowledge_order(order, actor=technician),
        key=None,
        user=technician,
        order=order,
        action="acknowledge",
    )

    assert outcome.status == "applied"
    assert not ActionReceipt.objects.exists()
