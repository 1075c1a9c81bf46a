"""The report's supplies put in a supplementary-works quote come back to « à
reprendre » when the quote will not be executed (issue 16, item 7): refused
by the manager (through the platform's webhook, as the sandbox sends it),
withdrawn, abandoned as a draft, expired, a line removed or a version sent
without them; they stay when it is accepted or while a version still holds
them; a new version or a late acceptance takes back those still to take up
and leaves out those taken up meanwhile (quotes/supplies.py)."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus

import pytest
import time_machine
from django.apps import apps as django_apps

from orders import materials
from orders.models import InterventionReport, MaterialDestination
from orders.states import State
from portal.relay import inbound
from portal.relay.models import InboundNotification, NotificationStatus
from quotes import drafts, services, tasks
from quotes.models import Quote, QuoteLine, QuoteState
from tests import factories
from tests.conftest import PARIS
from tests.test_report_materials import post_report

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=PARIS)
SUPPLIES = "PLB-012 × 1 u, PLB-020 × 4 u"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture
def started(order, technician, contract, outbox_connection):
    """An order of a client on the platform, in progress, with two supplies of the schedule in its report."""
    factories.make_price_item(contract, code="PLB-020", label="Joint fibre 15x21", unit="u", unit_price=Decimal("3.20"))
    return factories.bring_to(order, State.IN_PROGRESS, technician, at=NOW - timedelta(hours=1))


@pytest.fixture
def report(client, started, technician, price_item):
    client.force_login(technician)
    assert post_report(client, started, ("PLB-012", "1"), ("PLB-020", "4")).status_code == HTTPStatus.FOUND
    client.logout()
    return InterventionReport.objects.get()


@pytest.fixture
def sent(client, started, supervisor, report) -> Quote:
    """The supplies put in a quote by the supervisor, sent to the manager."""
    client.force_login(supervisor)
    assert client.post(f"/pilotage/commandes/{started.pk}/devis/fournitures/").status_code == HTTPStatus.FOUND
    quote = Quote.objects.get()
    assert client.post(f"/pilotage/devis/{quote.pk}/envoyer/").status_code == HTTPStatus.FOUND
    quote.refresh_from_db()
    assert quote.state == QuoteState.SENT
    return quote


def destinations(report) -> set[str]:
    return {material.destination for material in report.materials.all()}


def answer(client, connection, quote: Quote, *, accepted: bool) -> None:
    """The manager's answer as the platform's webhook brings it, applied as the relay's worker does."""
    status, event = ("closed", "accepted") if accepted else ("denied", "refused")
    body = [
        {
            "type": "operations:quotation:update",
            "id": f"notif-{quote.number}-{InboundNotification.objects.count() + 1}",
            "event": {
                "type": "operations",
                "body": {
                    "reference": quote.number,
                    "contractReference": quote.contract.reference,
                    "type": "quotation",
                    "status": status,
                    "event": event,
                },
            },
        }
    ]
    response = client.post(connection.webhook_path, body, content_type="application/json")
    assert response.status_code < 300
    notification = InboundNotification.objects.latest("pk")
    assert inbound.process_notification(notification.pk) == NotificationStatus.PROCESSED


def returned_labels(order) -> list[str]:
    return list(order.events.filter(kind="materials_returned").values_list("label", flat=True))


def test_refused_by_the_manager_they_come_back_once_and_are_added_to_the_order(
    client, started, supervisor, report, sent, outbox_connection
):
    assert destinations(report) == {MaterialDestination.QUOTE}
    assert set(QuoteLine.objects.values_list("material__code", flat=True)) == {"PLB-012", "PLB-020"}
    # The supervisor's page names the quote that holds them.
    html = client.get(f"/pilotage/commandes/{started.pk}/").content.decode()
    section = html[html.index('id="fournitures"') :]
    assert section.count(f'Dans le devis <a href="/pilotage/devis/{sent.pk}/">{sent.number}</a> (envoyé)') == 2
    answer(client, outbox_connection, sent, accepted=False)
    sent.refresh_from_db()
    assert sent.state == QuoteState.REFUSED
    assert destinations(report) == {MaterialDestination.PENDING}
    assert returned_labels(started) == [
        f"Fournitures revenues à reprendre après le refus du devis {sent.number} : {SUPPLIES}"
    ]
    # The same answer received again gives nothing back twice.
    answer(client, outbox_connection, sent, accepted=False)
    assert len(returned_labels(started)) == 1

    client.force_login(supervisor)
    html = client.get(f"/pilotage/commandes/{started.pk}/").content.decode()
    section = html[html.index('id="fournitures"') :]
    assert "2 à reprendre" in section and "Ajouter aux lignes de la commande (2)" in section
    assert f"Fournitures revenues à reprendre après le refus du devis {sent.number}" in html
    assert "Devis avec les fournitures des rapports (2)" in html
    response = client.post(f"/pilotage/commandes/{started.pk}/fournitures/")
    assert response.status_code == HTTPStatus.FOUND
    assert destinations(report) == {MaterialDestination.ORDER}
    assert started.lines.filter(reference__in=["PLB-012", "PLB-020"], done=True).count() == 2


def test_accepted_they_stay_in_the_quote_whose_lines_join_the_order(
    client, started, supervisor, report, sent, outbox_connection
):
    answer(client, outbox_connection, sent, accepted=True)
    sent.refresh_from_db()
    assert sent.state == QuoteState.ACCEPTED
    assert destinations(report) == {MaterialDestination.QUOTE}
    assert returned_labels(started) == []
    assert set(started.lines.filter(reference__startswith=sent.number).values_list("reference", flat=True)) == {
        f"{sent.number}-1",
        f"{sent.number}-2",
    }
    with pytest.raises(materials.ServiceError, match="Aucune fourniture"):
        materials.add_to_order(started, actor=supervisor)


def test_a_new_version_keeps_them_and_only_its_own_outcome_counts(
    client, started, supervisor, report, sent, outbox_connection
):
    assert client.post(f"/pilotage/devis/{sent.pk}/reviser/").status_code == HTTPStatus.FOUND
    draft = Quote.objects.get(previous=sent)
    assert sorted(draft.lines.values_list("material__code", flat=True)) == ["PLB-012", "PLB-020"]
    # The manager refuses the version he has while the next one is being written: they stay for it.
    answer(client, outbox_connection, sent, accepted=False)
    assert destinations(report) == {MaterialDestination.QUOTE}
    assert returned_labels(started) == []
    html = client.get(f"/pilotage/commandes/{started.pk}/").content.decode()
    assert html.count(f'Dans le devis <a href="/pilotage/devis/{draft.pk}/">{sent.number} v2</a> (brouillon)') == 2
    assert client.post(f"/pilotage/devis/{draft.pk}/envoyer/").status_code == HTTPStatus.FOUND
    sent.refresh_from_db()
    draft.refresh_from_db()
    assert (sent.state, draft.state) == (QuoteState.SUPERSEDED, QuoteState.SENT)
    assert destinations(report) == {MaterialDestination.QUOTE}
    # The new version's refusal is the one that counts.
    answer(client, outbox_connection, draft, accepted=False)
    assert destinations(report) == {MaterialDestination.PENDING}
    assert returned_labels(started) == [
        f"Fournitures revenues à reprendre après le refus du devis {sent.number} v2 : {SUPPLIES}"
    ]


def test_a_line_removed_from_a_new_version_comes_back_once_that_version_is_sent(
    client, started, supervisor, report, sent
):
    draft = services.revise_quote(sent, actor=supervisor)
    joints = draft.lines.get(code="PLB-020")
    client.force_login(supervisor)
    assert client.post(f"/pilotage/devis/{draft.pk}/lignes/{joints.pk}/retirer/").status_code == HTTPStatus.FOUND
    # The sent version still holds it.
    assert destinations(report) == {MaterialDestination.QUOTE}
    services.send_quote(draft, actor=supervisor)
    assert {(m.code, m.destination) for m in report.materials.all()} == {
        ("PLB-012", MaterialDestination.QUOTE),
        ("PLB-020", MaterialDestination.PENDING),
    }
    assert returned_labels(started) == [
        f"Fournitures revenues à reprendre après l'envoi du devis {sent.number} v2 sans elles : PLB-020 × 4 u"
    ]


def test_a_line_removed_from_a_draft_comes_back_at_once(client, started, supervisor, report):
    quote = services.quote_materials(started, actor=supervisor)
    joints = quote.lines.get(code="PLB-020")
    client.force_login(supervisor)
    assert client.post(f"/pilotage/devis/{quote.pk}/lignes/{joints.pk}/retirer/").status_code == HTTPStatus.FOUND
    assert report.materials.get(code="PLB-020").destination == MaterialDestination.PENDING
    assert returned_labels(started) == [
        f"Fournitures revenues à reprendre après le retrait de sa ligne du devis {quote.number} : PLB-020 × 4 u"
    ]


def test_withdrawn_by_the_supervisor_they_come_back(client, started, supervisor, report, sent):
    client.force_login(supervisor)
    response = client.post(f"/pilotage/devis/{sent.pk}/annuler/", {"reason": "Travaux repris dans la commande"})
    assert response.status_code == HTTPStatus.FOUND
    sent.refresh_from_db()
    assert sent.state == QuoteState.CANCELLED
    assert destinations(report) == {MaterialDestination.PENDING}
    assert returned_labels(started) == [
        f"Fournitures revenues à reprendre après l'annulation du devis {sent.number} : {SUPPLIES}"
    ]


def test_a_draft_abandoned_gives_them_back(client, started, supervisor, report):
    quote = services.quote_materials(started, actor=supervisor)
    services.cancel_quote(quote, actor=supervisor, reason="Fait par erreur")
    assert destinations(report) == {MaterialDestination.PENDING}
    assert len(returned_labels(started)) == 1


def test_expired_they_come_back_and_a_late_acceptance_takes_them_back(
    client, started, supervisor, report, sent, outbox_connection
):
    with time_machine.travel(NOW + timedelta(days=100), tick=False):
        assert tasks.expire_quotes() == 1
        sent.refresh_from_db()
        assert sent.state == QuoteState.EXPIRED
        assert destinations(report) == {MaterialDestination.PENDING}
        assert returned_labels(started) == [
            f"Fournitures revenues à reprendre après l'expiration du devis {sent.number} : {SUPPLIES}"
        ]
        answer(client, outbox_connection, sent, accepted=True)
    sent.refresh_from_db()
    assert sent.state == QuoteState.ACCEPTED
    assert destinations(report) == {MaterialDestination.QUOTE}
    assert started.events.filter(kind="materials_quoted", label__contains=sent.number).exists()
    assert started.lines.filter(reference__startswith=sent.number).count() == 2


def test_a_late_acceptance_does_not_bill_twice_what_was_added_to_the_order_meanwhile(
    client, started, supervisor, report, sent, outbox_connection
):
    with time_machine.travel(NOW + timedelta(days=100), tick=False):
        tasks.expire_quotes()
        materials.add_to_order(started, actor=supervisor)
        answer(client, outbox_connection, sent, accepted=True)
    assert destinations(report) == {MaterialDestination.ORDER}
    assert not started.lines.filter(reference__startswith=sent.number).exists()
    assert sent.events.filter(kind="line_left_out").count() == 2


def test_a_new_version_after_a_refusal_takes_back_only_those_still_to_take_up(
    client, started, supervisor, report, sent, outbox_connection
):
    answer(client, outbox_connection, sent, accepted=False)
    # Meanwhile the supervisor quotes the joints on their own, in another quote.
    other = services.quote_materials(started, actor=supervisor)
    drafts.remove_line(other.lines.get(code="PLB-012"), actor=supervisor)
    assert report.materials.get(code="PLB-012").destination == MaterialDestination.PENDING
    revision = services.revise_quote(sent, actor=supervisor)
    assert list(revision.lines.values_list("code", flat=True)) == ["PLB-012"]
    assert destinations(report) == {MaterialDestination.QUOTE}
    assert started.events.filter(
        kind="materials_quoted", label=f"Fournitures remises dans le devis {sent.number} v2 : PLB-012 × 1 u"
    ).exists()
    assert revision.events.filter(kind="line_left_out", label__contains="PLB-020").exists()


def test_the_supplies_quoted_before_the_link_are_linked_by_the_migration(started, supervisor, report):
    quote = services.quote_materials(started, actor=supervisor)
    services.send_quote(quote, actor=supervisor)
    revision = services.revise_quote(quote, actor=supervisor)
    QuoteLine.objects.update(material=None)
    migration = importlib.import_module("quotes.migrations.0002_quote_line_report_material")
    migration.link_quoted_supplies(django_apps, None)
    linked = {(line.quote_id, line.code, line.material.code) for line in QuoteLine.objects.select_related("material")}
    assert linked == {
        (quote.pk, "PLB-012", "PLB-012"),
        (quote.pk, "PLB-020", "PLB-020"),
        (revision.pk, "PLB-012", "PLB-012"),
        (revision.pk, "PLB-020", "PLB-020"),
    }
