"""Issue 11 through the services and the overview (with the database): the
numbered cases of the issue, each worked out by hand from the CCAG-MI 2021 (seed
002) and the platform annex (seed 000), then read where supervisors see them."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from html import unescape
from http import HTTPStatus

import pytest
import time_machine
from django.utils import timezone
from pypdf import PdfReader

from orders import buyer, deadlines, letters, receiving, remedies, services, tasks
from orders.models import AdmissionStep, BuyerStop, Letter, Order
from orders.states import State
from portal.relay import services as relay_services
from portal.relay.models import Breach, Connection, ConnectionKind, MessageKind, MessageStatus, OutboxMessage
from tests import factories
from tests.conftest import PARIS

D = Decimal
NB = "\u00a0"


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


def overview(client) -> tuple[object, str]:
    response = client.get("/pilotage/")
    assert response.status_code == HTTPStatus.OK
    return response, unescape(response.content.decode())


def exposure_of(response, contract) -> object:
    return next(row for row in response.context["exposure"].rows if row.contract == contract)


@pytest.fixture
def paris_asset(client_org):
    return factories.make_asset(client_org, reference="LGT-PARIS", postcode="75011", city="Paris")


@pytest.fixture
def signed_in(client, supervisor):
    client.force_login(supervisor)
    return client


# --- 1. Due dates (§3.2) -----------------------------------------------------------------------


def test_an_order_notified_on_friday_4_april_2025_for_15_days_is_due_on_tuesday_22_april_at_midnight(
    contract, paris_asset, signed_in
):
    """§3.2: from Sat 5 Apr, 15 days → Sat 19 Apr; Sat, Sun, Easter Monday 21 →
    Tue 22 Apr, over at midnight (the portal said Sat 19 Apr 08:00)."""
    order = receiving.register_order(
        contract=contract, reference="BC-PAQUES", actor=None, notified_at=paris(2025, 4, 4, 8, 0), asset=paris_asset
    )
    assert order.due_at == paris(2025, 4, 23, 0, 0)
    assert order.events.get(kind="received").label == "Commande reçue, échéance le mardi 22 avril 2025 à minuit"
    with time_machine.travel(paris(2025, 4, 22, 23, 59), tick=False):
        response, html = overview(signed_in)
        assert [row.order for row in response.context["late"]] == []
    with time_machine.travel(paris(2025, 4, 24, 9, 0), tick=False):
        response, html = overview(signed_in)
    assert [row.order for row in response.context["late"]] == [order]
    assert "<td>22/04/2025 à minuit</td>" in html


def test_in_moselle_good_friday_moves_the_last_day(contract, asset):
    """The default asset is in Metz (57): notified Thu 3 Apr 2025, 15 days → Fri 18
    Apr, Good Friday there; then Sat, Sun, Easter Monday → Tue 22 Apr."""
    order = receiving.register_order(
        contract=contract, reference="BC-METZ", actor=None, notified_at=paris(2025, 4, 3, 10, 0), asset=asset
    )
    assert order.due_at == paris(2025, 4, 23, 0, 0)


def test_a_72_hour_service_code_notified_at_14_20_is_due_three_days_later_at_15_00(contract, asset, service_code):
    """§3.2.1: Mon 3 Mar 2025 14:20 → starts 15:00 → Thu 6 Mar 15:00."""
    order = receiving.register_order(
        contract=contract,
        reference="BC-72H",
        actor=None,
        notified_at=paris(2025, 3, 3, 14, 20),
        asset=asset,
        service_code=service_code,
    )
    assert order.due_at == paris(2025, 3, 6, 15, 0)
    assert order.due_label == "06/03/2025 à 15:00"


# --- 2. Days late, and the last day ------------------------------------------------------------


def test_works_ending_seven_days_after_the_last_day_cost_seven_days(contract, signed_in):
    """Period over at midnight on 18 Mar 2025, works ended 25 Mar 09:00: 7 days (19
    to 25); 3 000 € × 7 / 3000 = 7,00 € (the whole-24-hour count said 6)."""
    order = factories.an_order(
        contract,
        "BC-7J",
        lines=[("1", "3000.00")],
        state=State.FINISHED,
        due_at=deadlines.end_of(date(2025, 3, 18)),
        actual_start=paris(2025, 3, 10, 8, 0),
        actual_end=paris(2025, 3, 25, 9, 0),
    )
    with time_machine.travel(paris(2025, 4, 10, 9, 0), tick=False):
        response, html = overview(signed_in)
    penalty = exposure_of(response, contract).late.orders[0]
    assert (penalty.order.key, penalty.order.days_late, penalty.amount) == (order.pk, 7, D("7.00"))
    assert (
        f"3{NB}000,00{NB}€ HT × 7{NB}j (arrêté à la fin des travaux) / 3000 = 7,00{NB}€. Dernier jour du délai : "
        "18/03/2025 ; jours de retard comptés du 19/03/2025 au 25/03/2025 (fin des travaux) (CCAG-MI art. 3.2, 15.1)."
    ) in html


def test_an_extension_may_be_asked_until_midnight_on_the_last_day(contract, paris_asset, supervisor):
    """§14.3.4 with §3.2.2: the period ends at midnight on Tue 22 Apr 2025."""
    order = receiving.register_order(
        contract=contract, reference="BC-MINUIT", actor=None, notified_at=paris(2025, 4, 4, 8, 0), asset=paris_asset
    )
    with time_machine.travel(paris(2025, 4, 22, 23, 30), tick=False):
        extension = remedies.request_extension(
            order, actor=supervisor, cause="Accès refusé", cause_date=date(2025, 4, 22), days=3
        )
    assert extension.pk
    with (
        time_machine.travel(paris(2025, 4, 23, 0, 0), tick=False),
        pytest.raises(services.ServiceError, match="a expiré le mardi 22 avril 2025 à minuit"),
    ):
        remedies.request_extension(order, actor=supervisor, cause="Pluie", cause_date=date(2025, 4, 22), days=3)


# --- 3. Finished late orders keep their penalty ------------------------------------------------

NOW = paris(2026, 11, 24, 10, 0)


def test_orders_finished_late_keep_their_penalty_after_reception(contract, signed_in, supervisor):
    """Four orders of 15 000 € whose period ended on 1 Sep 2026 and whose works
    ended on 31 Oct 2026 (2 Sep to 31 Oct: 60 days): 15 000 × 60 / 3000 = 300,00
    each; one of 24 000 € whose period ended on 7 Oct 2026, open on 24 Nov (8 Oct
    to 24 Nov: 48 days): 384,00. Total 1 584,00 > 1 000: all due. Two of the
    finished ones are then received: nothing changes (§14: frozen at the works' end)."""
    finished = [
        factories.an_order(
            contract,
            f"FINIE-{n}",
            lines=[("1", "15000.00")],
            state=State.FINISHED,
            due_at=deadlines.end_of(date(2026, 9, 1)),
            actual_start=paris(2026, 10, 1, 8, 0),
            actual_end=paris(2026, 10, 31, 16, 0),
        )
        for n in range(4)
    ]
    factories.an_order(contract, "OUVERTE", lines=[("1", "24000.00")], due_at=deadlines.end_of(date(2026, 10, 7)))
    with time_machine.travel(NOW, tick=False):
        for order in finished[:2]:
            services.record_reception(order, actor=supervisor, reception_date=date(2026, 11, 5))
        response, html = overview(signed_in)
    row = exposure_of(response, contract)
    assert [penalty.amount for penalty in row.late.orders] == [D("300.00")] * 4 + [D("384.00")]
    assert (row.late.total, row.late.exempt, row.late.due) == (D("1584.00"), False, D("1584.00"))
    assert (row.late.order_count, row.open_late_count, row.finished_late_count) == (5, 1, 4)
    assert "(dont 4 terminées en retard)" in html
    # The late list stays the open ones.
    assert [late.order.reference for late in response.context["late"]] == ["OUVERTE"]


# --- 4. V is the late part ------------------------------------------------------------------


def test_lines_done_on_time_are_not_in_v_unless_the_office_says_the_whole_is_unusable(contract, signed_in, supervisor):
    """§15.1: a line of 5 000 € done on 10 Nov (before the end of the period, 12 Nov
    at midnight) and one of 1 000 € still to do on 24 Nov (13 to 24 Nov: 12 days):
    V = 1 000 € → 1 000 × 12 / 3000 = 4,00 € (not 24,00 €); cap 10 % of 6 000 =
    600,00. With "the whole is unusable": 6 000 × 12 / 3000 = 24,00 €."""
    order = factories.an_order(
        contract, "BC-PARTIE", lines=[("1", "5000.00"), ("1", "1000.00")], due_at=deadlines.end_of(date(2026, 11, 12))
    )
    order.lines.filter(position=1).update(done=True, done_at=paris(2026, 11, 10, 15, 0))
    with time_machine.travel(NOW, tick=False):
        response, html = overview(signed_in)
        assert response.context["late"][0].penalty.amount == D("4.00")
        assert f"1{NB}000,00{NB}€ HT (partie en retard) × 12{NB}j / 3000 = 4,00{NB}€." in html

        buyer.set_late_scope(order, actor=supervisor, whole_unusable=True)
        response, html = overview(signed_in)
    assert response.context["late"][0].penalty.amount == D("24.00")
    assert order.events.filter(kind="late_scope").exists()
    assert not OutboxMessage.objects.filter(order=order).exists()  # the office's reading is not sent


def test_the_office_sets_the_scope_of_v_from_the_order_page(client, office, contract):
    order = factories.an_order(contract, "BC-SCOPE", lines=[("1", "100.00")], due_at=NOW - timedelta(days=3))
    client.force_login(office)
    response = client.post(f"/pilotage/commandes/{order.pk}/penalites/", {"whole_unusable": "on"})
    assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.late_whole_unusable


# --- 5. Each contract's own terms ---------------------------------------------------------------


def test_a_contract_with_its_own_ccap_terms_is_counted_and_explained_with_them(client_org, signed_in):
    """Seed 004 §14.1: 75,00 € per day, no exemption (and here no cap): an order 3
    days late (21 Nov at midnight → 22, 23, 24 Nov) owes 3 × 75 = 225,00 €, due
    although under 1 000 €."""
    ccap = factories.make_contract(
        client_org,
        reference="MOE-2025-04",
        late_penalty_divisor=None,
        late_penalty_per_day=D("75.00"),
        late_penalty_cap_percent=None,
        late_penalty_exemption=None,
    )
    factories.an_order(ccap, "MOE-1", lines=[("1", "100.00")], due_at=deadlines.end_of(date(2026, 11, 21)))
    with time_machine.travel(NOW, tick=False):
        response, html = overview(signed_in)
    row = exposure_of(response, ccap)
    assert (row.late.total, row.late.exempt, row.late.due) == (D("225.00"), False, D("225.00"))
    assert f"75,00{NB}€ par jour × 3{NB}j = 225,00{NB}€." in html
    assert "Conditions propres au marché (CCAP, dérogeant au CCAG-MI) : P = 75,00" in html
    assert "conditions du CCAP" in html


# --- 6. The data-sharing penalty ----------------------------------------------------------------


def a_message(
    order, connection, *, created_at, sequence=1, status=MessageStatus.PENDING, delivered_at=None
) -> OutboxMessage:
    return OutboxMessage.objects.create(
        connection=connection,
        order=order,
        sequence=sequence,
        kind=MessageKind.INTERVENTION_LOG,
        payload={},
        status=status,
        created_at=created_at,
        delivered_at=delivered_at,
    )


@pytest.fixture
def link(client_org) -> Connection:
    return Connection.objects.create(client=client_org, kind=ConnectionKind.NONE)


def test_a_message_typed_on_the_platform_by_hand_closes_its_breach(contract, link, signed_in, office):
    """Annex §3.1: a change on Tue 3 Nov 2026 09:00 never sent; the watch recorded
    its breach. Given up on 25 Nov 09:00 because the office typed it on the
    platform by hand then: 22 days − 15 min = 22 started days × 150 = 3 300,00 €.
    A week later it has not grown; in December it stays in November's history."""
    order = factories.an_order(contract, "BC-MAIN")
    message = a_message(order, link, created_at=paris(2026, 11, 3, 9, 0))
    Breach.objects.create(
        message=message, connection=link, changed_at=message.created_at, delivered_at=None, delay_seconds=3600
    )
    with time_machine.travel(paris(2026, 11, 25, 9, 30), tick=False):
        relay_services.cancel_message(
            message, actor=office, reason="Saisi à la main", entered_by_hand_at=paris(2026, 11, 25, 9, 0)
        )
    breach = Breach.objects.get()
    assert breach.entered_by_hand_at == paris(2026, 11, 25, 9, 0) and breach.closed
    with time_machine.travel(paris(2026, 11, 30, 9, 0), tick=False):
        response, html = overview(signed_in)
    assert exposure_of(response, contract).sharing.total == D("3300.00")
    assert f"Saisi à la main sur la plateforme 22{NB}j après la modification" in html
    with time_machine.travel(paris(2026, 12, 2, 9, 0), tick=False):
        response, html = overview(signed_in)
    assert response.context["exposure"].rows == []
    [month] = response.context["exposure"].history
    assert (month.month, month.contract, month.sharing.total) == (date(2026, 11, 1), contract, D("3300.00"))
    assert "novembre 2026" in html


def test_typed_by_hand_late_without_a_breach_yet_records_one(contract, link, office):
    """Given up 40 minutes after the change, typed by hand then: one started day."""
    order = factories.an_order(contract, "BC-SANS-BREACH")
    message = a_message(order, link, created_at=paris(2026, 11, 3, 9, 0))
    with time_machine.travel(paris(2026, 11, 3, 10, 0), tick=False):
        relay_services.cancel_message(
            message, actor=office, reason="Saisi à la main", entered_by_hand_at=paris(2026, 11, 3, 9, 40)
        )
        with pytest.raises(relay_services.Refused, match="dans le futur"):
            relay_services.cancel_message(
                a_message(order, link, created_at=paris(2026, 11, 3, 9, 50), sequence=2),
                actor=office,
                reason="Saisi",
                entered_by_hand_at=paris(2026, 11, 3, 12, 0),
            )
    assert Breach.objects.get().delay_seconds == 40 * 60


def test_ten_late_changes_in_one_outage_count_ten_days_or_one_as_the_contract_says(contract, link, signed_in):
    """Ten changes on Mon 2 Nov 2026 from 09:00, every 10 minutes, delivered at
    16:00: per change 10 × 150 = 1 500,00 €; per calendar day 1 × 150 = 150,00 €."""
    order = factories.an_order(contract, "BC-PANNE")
    for n in range(10):
        changed = paris(2026, 11, 2, 9, 0) + timedelta(minutes=10 * n)
        message = a_message(
            order,
            link,
            created_at=changed,
            sequence=n + 1,
            status=MessageStatus.DELIVERED,
            delivered_at=paris(2026, 11, 2, 16, 0),
        )
        Breach.objects.create(
            message=message,
            connection=link,
            changed_at=changed,
            delivered_at=paris(2026, 11, 2, 16, 0),
            delay_seconds=int((paris(2026, 11, 2, 16, 0) - changed).total_seconds()),
        )
    with time_machine.travel(NOW, tick=False):
        response, html = overview(signed_in)
        assert exposure_of(response, contract).sharing.total == D("1500.00")
        assert "chaque modification transmise en retard compte ses jours de retard commencés" in html
        contract.sharing_penalty_counting = "per_day"
        contract.save()
        response, html = overview(signed_in)
    assert exposure_of(response, contract).sharing.total == D("150.00")
    assert "chaque jour calendaire où au moins une modification était en retard compte une fois" in html


# --- 7. Several extension requests at once ---------------------------------------------------


def test_two_causes_pending_at_once_each_get_their_answer_form(client, supervisor, contract, paris_asset):
    order = receiving.register_order(
        contract=contract, reference="BC-2-CAUSES", actor=None, notified_at=paris(2026, 11, 2, 9, 0), asset=paris_asset
    )
    client.force_login(supervisor)
    with time_machine.travel(paris(2026, 11, 10, 9, 0), tick=False):
        first = remedies.request_extension(order, actor=supervisor, cause="Pluie", cause_date=date(2026, 11, 5), days=2)
        second = remedies.request_extension(
            order, actor=supervisor, cause="Accès refusé", cause_date=date(2026, 11, 9), days=4
        )
        html = unescape(client.get(f"/pilotage/commandes/{order.pk}/").content.decode())
    for extension in (first, second):
        assert f'action="/pilotage/commandes/{order.pk}/prolongations/{extension.pk}/reponse/"' in html


# --- 8. Suspensions and sursis stop the clock --------------------------------------------------


def test_a_suspension_stops_the_clock_and_moves_the_due_date_by_its_length(
    contract, paris_asset, supervisor, signed_in
):
    """§24, §30.6: due on Tue 17 Nov 2026 at midnight; suspended from 16 Nov, so not
    late on 24 Nov; resumed on 23 Nov after 7 days: 17 Nov + 7 = Tue 24 Nov."""
    order = receiving.register_order(
        contract=contract, reference="BC-SUSP", actor=None, notified_at=paris(2026, 11, 2, 9, 0), asset=paris_asset
    )
    assert order.due_at == deadlines.end_of(date(2026, 11, 17))
    with time_machine.travel(paris(2026, 11, 16, 9, 0), tick=False):
        stop = buyer.stop_clock(order, actor=supervisor, kind="suspension", starts_on=date(2026, 11, 16), reason="Gel")
        with pytest.raises(services.ServiceError, match="déjà arrêté"):
            buyer.stop_clock(order, actor=supervisor, kind="sursis", starts_on=date(2026, 11, 16), reason="Autre")
    with time_machine.travel(paris(2026, 11, 20, 9, 0), tick=False):
        response, _html = overview(signed_in)
        assert response.context["late"] == []
    with time_machine.travel(paris(2026, 11, 23, 9, 0), tick=False):
        ended = buyer.restart_clock(stop, actor=supervisor, ends_on=date(2026, 11, 23))
    order.refresh_from_db()
    assert (ended.days, order.due_at, order.clock_stopped_on) == (7, deadlines.end_of(date(2026, 11, 24)), None)
    assert not OutboxMessage.objects.filter(order=order).exclude(event__kind="received").exists()


def test_a_sursis_is_recorded_from_the_order_page(client, office, contract, paris_asset):
    order = receiving.register_order(
        contract=contract, reference="BC-SURSIS", actor=None, notified_at=paris(2026, 11, 2, 9, 0), asset=paris_asset
    )
    client.force_login(office)
    with time_machine.travel(paris(2026, 11, 10, 9, 0), tick=False):
        url = f"/pilotage/commandes/{order.pk}/suspensions/"
        response = client.post(url, {"kind": "sursis", "starts_on": "2026-11-09", "reason": ""})
        assert "Indiquez le motif donné par l'acheteur." in unescape(response.content.decode())
        response = client.post(url, {"kind": "sursis", "starts_on": "2026-11-09", "reason": "Fournisseur en grève"})
        assert response.status_code == HTTPStatus.FOUND
        stop = BuyerStop.objects.get()
        response = client.post(f"{url}{stop.pk}/reprise/", {"ends_on": "2026-11-10"})
        assert response.status_code == HTTPStatus.FOUND
    order.refresh_from_db()
    assert order.due_at == deadlines.end_of(date(2026, 11, 18))  # 17 Nov + 1 day


# --- 9. Admission ---------------------------------------------------------------------------


def finished_order(contract, reference: str, ended: datetime) -> Order:
    return factories.an_order(
        contract,
        reference,
        state=State.FINISHED,
        due_at=deadlines.end_of(date(2026, 12, 31)),
        actual_start=ended - timedelta(hours=2),
        actual_end=ended,
    )


def test_the_overview_counts_down_the_buyers_verification_and_shows_tacit_admission(contract, signed_in, office):
    """§33.1, §34: on Tue 24 Nov 2026, works ended Thu 19 Nov: 7 days → Thu 26 Nov,
    2 days left; ended Mon 9 Nov: 7 days → Mon 16 Nov, silence: admitted tacitly
    with effect on 16 Nov; ended 18 Nov, adjourned on 20 Nov: to accept by Mon 30
    Nov (10 days), 6 days left; ended 10 Nov, admitted on 12 Nov."""
    verifying = finished_order(contract, "VERIF", paris(2026, 11, 19, 15, 0))
    tacit = finished_order(contract, "TACITE", paris(2026, 11, 9, 15, 0))
    adjourned = finished_order(contract, "AJOURNEE", paris(2026, 11, 18, 15, 0))
    admitted = finished_order(contract, "ADMISE", paris(2026, 11, 10, 15, 0))
    with time_machine.travel(NOW, tick=False):
        buyer.record_admission_step(adjourned, actor=office, kind="adjourned", on=date(2026, 11, 20))
        buyer.record_admission_step(admitted, actor=office, kind="admitted", on=date(2026, 11, 12), source="platform")
        with pytest.raises(services.ServiceError, match="déjà réglée : « Admis tacitement »"):
            buyer.record_admission_step(tacit, actor=office, kind="rejected", on=date(2026, 11, 20))
        response, html = overview(signed_in)
    rows = {row.order.reference: row.status for row in response.context["admissions"]}
    assert (rows["VERIF"].label, rows["VERIF"].days_left) == ("En vérification", 2)
    assert (rows["TACITE"].label, rows["TACITE"].effective_on) == ("Admis tacitement", date(2026, 11, 16))
    assert (rows["AJOURNEE"].label, rows["AJOURNEE"].days_left) == ("Ajourné", 6)
    assert (rows["ADMISE"].label, rows["ADMISE"].effective_on) == ("Admis", date(2026, 11, 12))
    assert 'Admis tacitement</span> <small class="muted">(effet le 16/11/2026)</small>' in html
    assert verifying.pk and AdmissionStep.objects.count() == 2


def test_a_contract_with_a_technical_test_gives_thirty_days(contract, signed_in):
    """§33.1: ended Thu 19 Nov 2026 + 30 days = Sat 19 Dec → Mon 21 Dec: 27 days left on 24 Nov."""
    contract.verification_days = 30
    contract.save()
    finished_order(contract, "EPREUVE", paris(2026, 11, 19, 15, 0))
    with time_machine.travel(NOW, tick=False):
        response, _html = overview(signed_in)
    [row] = response.context["admissions"]
    assert (row.status.deadline.last_day, row.status.days_left) == (date(2026, 12, 21), 27)


def test_an_admission_step_is_refused_before_the_works_end(contract, office, paris_asset):
    order = receiving.register_order(contract=contract, reference="BC-PAS-FINIE", actor=None, asset=paris_asset)
    with pytest.raises(services.ServiceError, match="ne sont pas terminés"):
        buyer.record_admission_step(order, actor=office, kind="admitted", on=date(2026, 11, 24))


# --- Access ----------------------------------------------------------------------------------


def test_technicians_and_visitors_cannot_record_the_buyers_decisions(client, technician, contract):
    order = factories.an_order(contract, "BC-ACCES", due_at=NOW)
    stop = BuyerStop.objects.create(order=order, kind="suspension", starts_on=date(2026, 11, 1), reason="x")
    urls = [
        f"/pilotage/commandes/{order.pk}/suspensions/",
        f"/pilotage/commandes/{order.pk}/suspensions/{stop.pk}/reprise/",
        f"/pilotage/commandes/{order.pk}/admission/",
        f"/pilotage/commandes/{order.pk}/penalites/",
    ]
    for url in urls:
        response = client.post(url, {})
        assert response.status_code == HTTPStatus.FOUND
        assert response.url.startswith("/connexion/")
    client.force_login(technician)
    for url in urls:
        assert client.post(url, {}).status_code == HTTPStatus.FORBIDDEN


# --- 10. The buyer's notices as letters, with proof of their dates ------------------------------


def pdf_text(letter) -> str:
    with letter.pdf.open("rb") as stream:
        reader = PdfReader(io.BytesIO(stream.read()))
    return " ".join(" ".join(page.extract_text().split()) for page in reader.pages)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def test_observations_from_the_page_become_a_french_letter_to_the_buyers_representative(
    client, supervisor, contract, paris_asset, media, django_capture_on_commit_callbacks
):
    """§3.7.2 with §3.3: the observations go to the platform as a log and to the
    representative as a PDF letter; the office then notes when it was sent and
    received, from the acknowledgement."""
    contract.buyer_representative = "Mme Claire Fontaine, responsable de la maintenance"
    contract.save()
    order = receiving.register_order(
        contract=contract, reference="BC-COURRIER", actor=None, notified_at=paris(2026, 11, 16, 9, 0), asset=paris_asset
    )
    client.force_login(supervisor)
    with time_machine.travel(paris(2026, 11, 20, 10, 0), tick=False):
        with django_capture_on_commit_callbacks() as callbacks:
            response = client.post(
                f"/pilotage/commandes/{order.pk}/observations/", {"text": "Le robinet prescrit n'est plus fabriqué."}
            )
        assert response.status_code == HTTPStatus.FOUND
        [letter] = Letter.objects.all()
        assert len(callbacks) >= 1
        assert tasks.render_letter_pdf(letter.pk) == "done"
        letter.refresh_from_db()
        text = pdf_text(letter)
        assert "Mme Claire Fontaine, responsable de la maintenance, Office Public de l'Habitat de Metz" in text
        assert "Objet : Observations sur le bon de commande (CCAG-MI art. 3.7.2)" in text
        assert "Le robinet prescrit n'est plus fabriqué." in text
        assert "Bon de commande : BC-COURRIER" in text
        assert "20 novembre 2026" in text
        pdf = client.get(f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}.pdf")
        assert pdf.status_code == HTTPStatus.OK and pdf["Content-Type"] == "application/pdf"
        # Reading the stream to its end closes it as a server would (see test_documents).
        assert b"".join(pdf.streaming_content).startswith(b"%PDF")

        dates = f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}/dates/"
        response = client.post(dates, {"sent_on": "2026-11-20", "received_on": "2026-11-19"})
        assert "La date de réception doit être entre la date d'envoi et aujourd'hui." in unescape(
            response.content.decode()
        )
        response = client.post(dates, {"sent_on": "2026-11-20", "received_on": "2026-11-20"})
        assert response.status_code == HTTPStatus.FOUND
    letter.refresh_from_db()
    assert (letter.sent_on, letter.received_on) == (date(2026, 11, 20), date(2026, 11, 20))


def test_an_extension_request_gets_its_letter_with_the_period_and_the_days_asked(
    contract, paris_asset, supervisor, media
):
    order = receiving.register_order(
        contract=contract, reference="BC-PROLONG", actor=None, notified_at=paris(2026, 11, 2, 9, 0), asset=paris_asset
    )
    with time_machine.travel(paris(2026, 11, 10, 9, 0), tick=False):
        letter = letters.ask_extension(
            order, actor=supervisor, cause="Pièce en rupture", cause_date=date(2026, 11, 9), days=6
        )
    assert letter.extension.days == 6
    assert "qui expire le 17 novembre 2026 à minuit" in letter.body
    assert "prolonger ce délai de 6 jours" in letter.body
    assert tasks.render_letter_pdf(letter.pk) == "done"
    assert tasks.render_letter_pdf(letter.pk) == "nothing to do"


def test_the_answer_to_a_penalty_notice_is_due_within_fifteen_days_of_its_receipt(
    client, office, contract, paris_asset, media
):
    """§15.1: an invitation received Mon 2 Nov 2026: 15 days → Tue 17 Nov at midnight."""
    order = receiving.register_order(contract=contract, reference="BC-PENAL", actor=None, asset=paris_asset)
    client.force_login(office)
    url = f"/pilotage/commandes/{order.pk}/penalites/observations/"
    with time_machine.travel(paris(2026, 11, 18, 0, 5), tick=False):
        response = client.post(url, {"notice_received_on": "2026-11-02", "text": "Retard dû à l'accès refusé."})
    assert "a expiré le 17 novembre 2026 à minuit (CCAG-MI art. 15.1)" in unescape(response.content.decode())
    with time_machine.travel(paris(2026, 11, 17, 23, 55), tick=False):
        response = client.post(url, {"notice_received_on": "2026-11-02", "text": "Retard dû à l'accès refusé."})
    assert response.status_code == HTTPStatus.FOUND
    letter = Letter.objects.get()
    assert (letter.kind, letter.notice_received_on) == ("penalty_answer", date(2026, 11, 2))
    assert order.events.filter(kind="penalty_answer").exists()
    assert not OutboxMessage.objects.filter(order=order, event__kind="penalty_answer").exists()
    assert tasks.render_letter_pdf(letter.pk) == "done"
    letter.refresh_from_db()
    assert "Votre invitation à présenter nos observations, reçue le : 2 novembre 2026" in pdf_text(letter)


def test_outsiders_cannot_read_or_date_the_letters(client, technician, contract, supervisor, paris_asset, media):
    order = receiving.register_order(contract=contract, reference="BC-SECRET", actor=None, asset=paris_asset)
    with time_machine.travel(timezone.now(), tick=False):
        letter = letters.send_observations(order, actor=supervisor, text="Observations")
    tasks.render_letter_pdf(letter.pk)
    urls = [
        f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}.pdf",
        f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}/dates/",
        f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}/produire/",
        f"/pilotage/commandes/{order.pk}/penalites/observations/",
    ]
    for url in urls:
        response = client.post(url, {}) if not url.endswith(".pdf") else client.get(url)
        assert response.status_code == HTTPStatus.FOUND and response.url.startswith("/connexion/")
    client.force_login(technician)
    assert client.get(urls[0]).status_code == HTTPStatus.FORBIDDEN
    for url in urls[1:]:
        assert client.post(url, {}).status_code == HTTPStatus.FORBIDDEN


def test_the_error_queue_gives_a_message_up_with_the_moment_it_was_typed_by_hand(client, office, contract, link):
    """From /relais/erreurs/: refused at 09:05 on 3 Nov 2026, typed by hand at 11:00
    (1 h 45 past the 15 minutes: one started day, 150,00 €); a bad date is refused in French."""
    order = factories.an_order(contract, "BC-FILE")
    message = a_message(order, link, created_at=paris(2026, 11, 3, 9, 0), status=MessageStatus.REJECTED)
    client.force_login(office)
    url = f"/relais/erreurs/{message.pk}/abandonner/"
    with time_machine.travel(paris(2026, 11, 3, 12, 0), tick=False):
        response = client.post(url, {"note": "Saisi à la main", "entered_by_hand_at": "hier"}, follow=True)
        assert "Saisi à la main sur la plateforme le : " in unescape(response.content.decode())
        message.refresh_from_db()
        assert message.status == MessageStatus.REJECTED
        response = client.post(url, {"note": "Saisi à la main", "entered_by_hand_at": "2026-11-03T11:00"})
    assert response.status_code == HTTPStatus.FOUND
    breach = Breach.objects.get()
    assert (breach.entered_by_hand_at, breach.delay_seconds) == (paris(2026, 11, 3, 11, 0), 2 * 3600)


def test_a_letter_whose_file_is_gone_is_a_404_and_can_be_made_again(client, supervisor, contract, paris_asset, media):
    order = receiving.register_order(contract=contract, reference="BC-PERDU", actor=None, asset=paris_asset)
    letter = letters.send_observations(order, actor=supervisor, text="Observations")
    tasks.render_letter_pdf(letter.pk)
    letter.refresh_from_db()
    letter.pdf.storage.delete(letter.pdf.name)
    client.force_login(supervisor)
    assert client.get(f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}.pdf").status_code == HTTPStatus.NOT_FOUND
    response = client.post(f"/pilotage/commandes/{order.pk}/courriers/{letter.pk}/produire/")
    assert response.status_code == HTTPStatus.FOUND
    assert tasks.render_letter_pdf(letter.pk) == "done"
    letter.refresh_from_db()
    assert letter.pdf.storage.exists(letter.pdf.name)
