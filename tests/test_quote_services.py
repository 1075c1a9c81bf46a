"""quotes/services.py, quotes/drafts.py and quotes/decisions.py: every
transition, the refused ones with their French message, numbering and the
relay's messages."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from orders.states import State
from portal.errors import Refused
from portal.relay.models import MessageKind, OutboxMessage
from quotes import decisions, documents, drafts, services
from quotes.models import PartSupplier, Quote, QuoteEvent, QuoteState
from tests import factories
from tests.conftest import PARIS

D = Decimal


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def started(order, technician):
    return factories.bring_to(order, State.IN_PROGRESS, technician)


@pytest.fixture
def draft(started, supervisor, price_item):
    quote = services.create_quote_for_order(started, actor=supervisor)
    drafts.add_line(quote, actor=supervisor, price_item=price_item, quantity="2")
    return quote


def test_numbers_follow_each_other_within_a_year_and_start_again_the_next(contract, supervisor):
    at = datetime(2026, 12, 30, 10, 0, tzinfo=PARIS)
    first = services.create_quote(contract=contract, actor=supervisor, title="Un", at=at)
    second = services.create_quote(contract=contract, actor=supervisor, title="Deux", at=at)
    next_year = services.create_quote(contract=contract, actor=supervisor, title="Trois", at=at + timedelta(days=3))
    assert [first.number, second.number, next_year.number] == ["D2026-0001", "D2026-0002", "D2027-0001"]


def test_a_creation_that_fails_gives_its_number_back(contract, supervisor, client_org):
    other = factories.make_asset(factories.make_client(name="Autre bailleur"), reference="X")
    with pytest.raises(Refused, match="n'appartient pas au client"):
        services.create_quote(contract=contract, actor=supervisor, title="Faux", asset=other)
    quote = services.create_quote(contract=contract, actor=supervisor, title="Vrai")
    assert quote.rank == 1


def test_a_draft_takes_schedule_lines_and_out_of_schedule_lines_with_their_justification(draft, supervisor):
    line = drafts.add_line(
        draft,
        actor=supervisor,
        label="Dépose de faïence",
        unit="m²",
        unit_price="32,40",
        quantity="3,5",
        vat_rate="10",
        justification="Faïence ancienne non prévue au bordereau",
    )
    assert line.out_of_schedule and line.price_item is None
    draft.refresh_from_db()
    # 2 × 48,50 + 3,5 × 32,40 = 97,00 + 113,40 = 210,40 HT; 10 % = 21,04
    assert (draft.total_excl_vat, draft.total_vat, draft.total_incl_vat) == (D("210.40"), D("21.04"), D("231.44"))


def test_an_out_of_schedule_line_without_justification_is_refused(draft, supervisor):
    with pytest.raises(Refused, match="Justifiez le prix"):
        drafts.add_line(draft, actor=supervisor, label="Divers", unit_price="10")


@pytest.mark.parametrize(
    ("quantity", "message"), [("0", "positive"), ("abc", "saisissez un nombre"), ("1.234", "deux décimales")]
)
def test_a_bad_quantity_is_refused_in_french(draft, supervisor, price_item, quantity, message):
    with pytest.raises(Refused, match=message):
        drafts.add_line(draft, actor=supervisor, price_item=price_item, quantity=quantity)


def test_a_line_rate_can_be_changed_but_not_a_schedule_price(draft, supervisor):
    line = draft.lines.get()
    drafts.update_line(line, actor=supervisor, changes={"vat_rate": "5.5", "quantity": "3"})
    line.refresh_from_db()
    assert (line.vat_rate, line.quantity) == (D("5.50"), D("3.00"))
    with pytest.raises(Refused, match="garde le libellé, l'unité et le prix du bordereau"):
        drafts.update_line(line, actor=supervisor, changes={"unit_price": "1"})
    with pytest.raises(Refused, match="Taux de TVA inconnu"):
        drafts.update_line(line, actor=supervisor, changes={"vat_rate": "7"})


def test_the_two_parts_lists(draft, supervisor):
    drafts.add_part(draft, actor=supervisor, supplied_by=PartSupplier.CONTRACTOR, description="Siphon PVC 40")
    drafts.add_part(draft, actor=supervisor, supplied_by=PartSupplier.BUYER, description="Meuble sous évier")
    assert sorted(draft.parts.values_list("supplied_by", flat=True)) == ["buyer", "contractor"]
    with pytest.raises(Refused, match="Décrivez la pièce"):
        drafts.add_part(draft, actor=supervisor, supplied_by=PartSupplier.BUYER, description=" ")


def test_sending_fixes_the_totals_starts_the_30_days_and_records_the_quotation_log(
    draft, supervisor, outbox_connection
):
    at = datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)
    services.send_quote(draft, actor=supervisor, at=at)
    draft.refresh_from_db()
    assert draft.state == QuoteState.SENT
    # 30 days from 1 December: 31 December (a Thursday).
    assert draft.answer_due_on == date(2026, 12, 31)
    log = OutboxMessage.objects.filter(kind=MessageKind.QUOTATION_LOG).get()
    assert log.order_id == draft.order_id
    payload = log.payload
    assert (payload["status"], payload["event"]) == ("open", "proposed")
    assert payload["reference"] == draft.number
    assert payload["parentReference"] == draft.order.reference
    assert payload["tags"]["quote_reference"] == draft.number
    assert payload["tags"]["quote_amount_excl_vat"] == "97.00"
    assert payload["tags"]["quote_amount_incl_vat"] == "106.70"
    assert payload["serviceCode"] == "PLB-FUITE"
    assert payload["location"] == {"assetReference": "LGT-0412"}


def test_a_sent_quote_is_never_edited(draft, supervisor, price_item):
    services.send_quote(draft, actor=supervisor)
    with pytest.raises(Refused, match="ne se modifie plus \\(créez une nouvelle version\\)"):
        drafts.add_line(draft, actor=supervisor, price_item=price_item)
    with pytest.raises(Refused, match="ne se modifie plus"):
        drafts.update_quote(draft, actor=supervisor, changes={"title": "Autre"})


def test_an_empty_quote_cannot_be_sent(started, supervisor):
    quote = services.create_quote_for_order(started, actor=supervisor)
    with pytest.raises(Refused, match="Ajoutez au moins une ligne"):
        services.send_quote(quote, actor=supervisor)


def test_a_connected_quote_without_asset_or_service_code_cannot_be_sent(
    contract, supervisor, price_item, outbox_connection
):
    quote = services.create_quote(contract=contract, actor=supervisor, title="Sans patrimoine")
    drafts.add_line(quote, actor=supervisor, price_item=price_item)
    with pytest.raises(Refused, match="sans l'élément de patrimoine ni le code prestation"):
        services.send_quote(quote, actor=supervisor)


def test_a_revision_keeps_the_old_version_and_supersedes_it_when_sent(draft, supervisor, price_item):
    services.send_quote(draft, actor=supervisor)
    revision = services.revise_quote(draft, actor=supervisor)
    assert (revision.number, revision.version, revision.state) == (draft.number, 2, QuoteState.DRAFT)
    assert revision.lines.count() == 1
    with pytest.raises(Refused, match="plus récente"):
        services.revise_quote(draft, actor=supervisor)
    drafts.add_line(revision, actor=supervisor, price_item=price_item, quantity="1")
    services.send_quote(revision, actor=supervisor)
    draft.refresh_from_db()
    assert draft.state == QuoteState.SUPERSEDED
    assert draft.lines.count() == 1  # unchanged
    assert str(revision) == f"{draft.number} v2"


def test_a_draft_cannot_be_revised_and_a_cancellation_needs_a_reason(draft, supervisor):
    with pytest.raises(Refused, match="ne se révise pas"):
        services.revise_quote(draft, actor=supervisor)
    with pytest.raises(Refused, match="motif"):
        services.cancel_quote(draft, actor=supervisor, reason="  ")
    services.cancel_quote(draft, actor=supervisor, reason="Doublon")
    draft.refresh_from_db()
    assert draft.state == QuoteState.CANCELLED


def test_withdrawing_a_sent_quote_tells_the_platform(draft, supervisor, outbox_connection):
    services.send_quote(draft, actor=supervisor)
    services.cancel_quote(draft, actor=supervisor, reason="Erreur de métré")
    logs = OutboxMessage.objects.filter(kind=MessageKind.QUOTATION_LOG).order_by("sequence")
    assert [(m.payload["status"], m.payload["event"]) for m in logs] == [("open", "proposed"), ("denied", "canceled")]


def test_an_accepted_supplementary_quote_adds_its_lines_to_the_order(draft, supervisor, started):
    services.send_quote(draft, actor=supervisor)
    decisions.record_decision(draft, accepted=True)
    draft.refresh_from_db()
    assert draft.state == QuoteState.ACCEPTED
    line = started.lines.get(reference=f"{draft.number}-1")
    assert (line.label, line.quantity, line.unit_price) == ("Remplacement de siphon d'évier", D("2.00"), D("48.50"))
    # A repeated answer changes nothing.
    assert decisions.record_decision(draft, accepted=True) == "Réponse déjà enregistrée."
    assert started.lines.filter(reference__startswith=draft.number).count() == 1


def test_a_refused_quote_leaves_the_order_as_it_was_and_emails_who_sent_it(
    draft, supervisor, started, mailoutbox, django_capture_on_commit_callbacks
):
    services.send_quote(draft, actor=supervisor)
    lines_before = started.lines.count()
    with django_capture_on_commit_callbacks(execute=True):
        decisions.record_decision(draft, accepted=False)
    draft.refresh_from_db()
    assert draft.state == QuoteState.REFUSED
    assert started.lines.count() == lines_before
    assert [email.to for email in mailoutbox] == [[supervisor.email]]
    assert f"Devis {draft.number} refusé" in mailoutbox[0].subject
    assert "reste telle qu'elle était" in mailoutbox[0].body


def test_a_draft_cannot_be_accepted(draft):
    with pytest.raises(Refused, match="a changé entre-temps"):
        decisions.record_decision(draft, accepted=True)


def test_works_waiting_for_the_quote_put_the_order_on_hold_once_the_pdf_is_out_and_resume_on_acceptance(
    draft, supervisor, started, outbox_connection
):
    drafts.update_quote(draft, actor=supervisor, changes={"works_wait": True})
    services.send_quote(draft, actor=supervisor)
    started.refresh_from_db()
    assert started.state == State.IN_PROGRESS
    assert documents.attach_quote_pdf(draft.pk, content=b"%PDF-1.7 test")
    started.refresh_from_db()
    assert (started.state, started.suspend_reason) == (State.SUSPENDED, "quote_request")
    kinds = list(OutboxMessage.objects.filter(order=started).order_by("sequence").values_list("kind", "payload__event"))
    # The quote's log, its PDF, then the order's hold (after the order's own earlier logs).
    assert kinds[-3:] == [("quotation_log", "proposed"), ("document", None), ("intervention_log", "quote_request")]
    decisions.record_decision(draft, accepted=True)
    started.refresh_from_db()
    assert started.state == State.IN_PROGRESS


def test_expiry_closes_sent_quotes_past_their_validity(draft, supervisor):
    services.send_quote(draft, actor=supervisor)
    draft.refresh_from_db()
    after = datetime.combine(draft.valid_until + timedelta(days=1), datetime.min.time(), tzinfo=PARIS)
    assert decisions.expire_quotes(after - timedelta(days=1)) == 0
    assert decisions.expire_quotes(after + timedelta(hours=1)) == 1
    draft.refresh_from_db()
    assert draft.state == QuoteState.EXPIRED
    assert QuoteEvent.objects.filter(quote=draft, kind="expired").exists()


def test_a_quote_from_a_report_takes_its_text_once(started, supervisor, technician):
    report = factories.build_report(
        started, quote_needed=True, quote_description="Remplacer le ballon d'eau chaude\n200 L"
    )
    report.save()
    quote = services.create_quote_from_report(report, actor=supervisor)
    assert (quote.title, quote.order, quote.report, quote.works_wait) == (
        "Remplacer le ballon d'eau chaude",
        started,
        report,
        True,
    )
    with pytest.raises(Refused, match="déjà été commencé"):
        services.create_quote_from_report(report, actor=supervisor)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sends_of_one_draft_exactly_one_wins(contract, supervisor, price_item, asset, service_code):
    quote = services.create_quote(
        contract=contract, actor=supervisor, title="Concurrence", asset=asset, service_code=service_code
    )
    drafts.add_line(quote, actor=supervisor, price_item=price_item)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def send() -> None:
        try:
            barrier.wait()
            services.send_quote(Quote.objects.get(pk=quote.pk), actor=supervisor)
            outcomes.append("sent")
        except Refused as error:
            outcomes.append(str(error))
        finally:
            db_connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("sent") == 1
    assert QuoteEvent.objects.filter(quote=quote, kind="sent").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_numbers_have_no_gap_or_duplicate_under_concurrency(contract, supervisor):
    numbers: list[str] = []
    barrier = threading.Barrier(8)

    def create(index: int) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                numbers.append(
                    services.create_quote(contract=contract, actor=supervisor, title=f"Devis {index}").number
                )
        finally:
            db_connection.close()

    threads = [threading.Thread(target=create, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    year = timezone.localdate().year
    assert sorted(numbers) == [f"D{year}-{rank:04d}" for rank in range(1, 41)]
