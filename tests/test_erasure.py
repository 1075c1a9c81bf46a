"""The end of a contract (issue 14, item 6): after its end and its retention
period, the occupants' personal data of its orders is erased everywhere it was
copied (history, messages to the platform, notifications received), what
accounting needs is kept, a dry run shows what would go, and the erasure is
recorded per contract and shown in the admin."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.utils import timezone

from orders import images, receiving, reports
from orders.models import InterventionReport, Order, OrderEvent, PhotoKind, ReportPhoto, SignatureStatus
from orders.states import State
from orders.tasks import erase_ended_contracts
from portal.models import ContractErasure
from portal.relay.models import InboundNotification, OutboxMessage
from tests import factories
from tests.test_reports import data_url, processed, signature_png

NAME, MOBILE, EMAIL = "Mme Claire Martin", "06 12 34 56 78", "claire.martin@example.fr"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def ended(contract):
    """The contract ended ten days ago, with five days of retention."""
    today = timezone.localdate()
    contract.starts_on = today - timedelta(days=800)
    contract.ends_on = today - timedelta(days=10)
    contract.retention_days = 5
    contract.save()
    return contract


@pytest.fixture
def finished(ended, asset, service_code, technician, outbox_connection):
    """An order with the occupant's data everywhere: the order, a change in its
    history, the messages to the platform, a notification received, a signed
    report with a photo of a person and one of the works."""
    order = factories.register_order(
        ended, asset=asset, service_code=service_code, occupant_email=EMAIL, access_notes="Code 4521B, 3e étage"
    )
    order = factories.bring_to(order, State.IN_PROGRESS, technician)
    receiving.update_order_details(order, actor=technician, changes={"occupant_mobile": "07 98 76 54 32"})
    InboundNotification.objects.create(
        connection=outbox_connection,
        notification_id="n-1",
        type="operations:intervention:share",
        body={"event": {"body": {"contacts": [f"BEGIN:VCARD\nFN:{NAME}\nTEL:{MOBILE}\nEND:VCARD"]}}},
        order=order,
    )
    report = reports.submit_report(
        order,
        actor=technician,
        works_done="Siphon remplacé",
        time_on_site_minutes=45,
        signature_status=SignatureStatus.SIGNED,
        signature=images.read_signature(data_url(signature_png())),
        signatory_name=NAME,
        photos=[
            reports.ReportPhotoUpload(kind=PhotoKind.BEFORE, image=processed()),
            reports.ReportPhotoUpload(kind=PhotoKind.AFTER, image=processed((10, 20, 30))),
        ],
    )
    ReportPhoto.objects.filter(report=report, kind=PhotoKind.BEFORE).update(shows_person=True)
    return Order.objects.get(pk=order.pk)


def everything_about(order: Order) -> str:
    """Every text the database keeps about the order, as one string."""
    parts = [json.dumps(list(Order.objects.filter(pk=order.pk).values()), default=str)]
    parts += [json.dumps(event.data) + event.label for event in OrderEvent.objects.filter(order=order)]
    parts += [json.dumps(message.payload) for message in OutboxMessage.objects.filter(order=order)]
    parts += [json.dumps(item.body) for item in InboundNotification.objects.filter(order=order)]
    parts += [report.signatory_name for report in InterventionReport.objects.filter(order=order)]
    return "\n".join(parts)


def test_the_occupants_data_is_in_many_places_before(finished):
    text = everything_about(finished)
    assert NAME in text and MOBILE in text and "07 98 76 54 32" in text


def test_a_dry_run_shows_what_would_go_and_changes_nothing(finished, ended):
    before = everything_about(finished)
    output = io.StringIO()

    call_command("erase_personal_data", "--dry-run", stdout=output)

    assert f"{ended.reference} (" in output.getvalue()
    assert "serait effacé — 1 commandes, 1 signatures, 1 photos de personnes" in output.getvalue()
    assert everything_about(finished) == before
    assert not ContractErasure.objects.exists()


def test_the_nightly_task_erases_the_personal_data_and_keeps_the_rest(finished, ended, media):
    report = InterventionReport.objects.get(order=finished)
    signature_file = media / report.signature.name
    person, works = (ReportPhoto.objects.get(report=report, kind=kind) for kind in (PhotoKind.BEFORE, PhotoKind.AFTER))
    person_file = media / person.image.name
    assert signature_file.exists() and person_file.exists()

    with django_capture():
        done = erase_ended_contracts()

    assert done[ended.reference]["orders"] == 1
    text = everything_about(finished)
    for secret in (NAME, MOBILE, "07 98 76 54 32", EMAIL, "Code 4521B"):
        assert secret not in text, secret
    order = Order.objects.get(pk=finished.pk)
    assert (order.reference, order.state, order.value_excl_vat()) == (
        finished.reference,
        finished.state,
        finished.value_excl_vat(),
    )
    assert order.events.count() == finished.events.count()
    report.refresh_from_db()
    assert report.signature_status == SignatureStatus.SIGNED and report.signature
    assert not signature_file.exists()
    assert not ReportPhoto.objects.filter(pk=person.pk).exists()
    assert not person_file.exists()
    assert ReportPhoto.objects.filter(pk=works.pk).exists()
    erasure = ContractErasure.objects.get()
    assert (erasure.contract, erasure.actor, erasure.counts["photos"]) == (ended, None, 1)
    # Done once: the next night finds nothing.
    assert erase_ended_contracts() == {}


class django_capture:
    """Run the on-commit callbacks (the files' deletion) as the test's transaction never commits."""

    def __enter__(self):
        from django.test import TestCase

        self.context = TestCase.captureOnCommitCallbacks(execute=True)
        return self.context.__enter__()

    def __exit__(self, *exc):
        return self.context.__exit__(*exc)


def test_nothing_is_erased_before_the_end_of_the_retention_period(finished, ended):
    ended.ends_on = timezone.localdate() - timedelta(days=3)
    ended.save()

    assert erase_ended_contracts() == {}
    assert NAME in everything_about(finished)


def test_the_admin_shows_the_erasures_and_what_the_next_would_erase(client, office, finished, ended):
    client.force_login(office)

    response = client.get("/admin/portal/contracterasure/")
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert ended.reference in html
    assert "1 commandes, 1 signatures, 1 photos de personnes" in html

    erase_ended_contracts()
    html = client.get("/admin/portal/contracterasure/").content.decode()
    assert "Aucun marché terminé en attente d'effacement." in html
    assert "1 commandes, 1 signatures" in html


def test_outsiders_have_no_erasure_page(client, technician, supervisor):
    assert client.get("/admin/portal/contracterasure/").status_code == HTTPStatus.FOUND
    client.force_login(supervisor)
    assert client.get("/admin/portal/contracterasure/").status_code == HTTPStatus.FOUND


def test_the_office_flags_a_photo_that_shows_a_person(client, office, finished):
    works = ReportPhoto.objects.get(report__order=finished, kind=PhotoKind.AFTER)
    client.force_login(office)

    response = client.post(f"/admin/orders/reportphoto/{works.pk}/change/", {"shows_person": "on"})

    assert response.status_code == HTTPStatus.FOUND
    works.refresh_from_db()
    assert works.shows_person
