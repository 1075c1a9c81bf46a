"""The order services: every change goes through them, is guarded, and leaves a history."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, close_old_connections, connection, transaction

from orders import planning, receiving, services, sharing
from orders.models import Order, OrderEvent
from orders.states import IllegalTransition, MissingRequirement, State
from tests.conftest import PARIS

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=PARIS)


def history(order: Order) -> list[str]:
    return list(order.events.order_by("at", "pk").values_list("label", flat=True))


def test_a_registered_order_is_to_acknowledge_with_its_due_date_lines_and_history(order, technician):
    assert order.state == State.TO_ACKNOWLEDGE
    # The service code's 72-hour completion delay runs from the hour after the
    # notification (CCAG-MI §3.2.1, issue 11: it ran from 9:30): Friday 10:00 + 72 h.
    assert order.due_at == datetime(2026, 11, 23, 10, 0, tzinfo=PARIS)
    assert order.technician == technician
    assert order.value_excl_vat() == Decimal("113.50")
    assert history(order) == [
        "Commande reçue, échéance le lundi 23 novembre 2026 à 10 h",
        "Ligne ajoutée : L1 – Recherche de fuite (1 u)",
        "Ligne ajoutée : L2 – Remplacement du siphon (1 u)",
        "Technicien : Karim Haddad",
    ]


def test_without_a_service_code_the_contracts_default_delay_sets_the_due_date(contract):
    notified = datetime(2026, 11, 2, 14, 0, tzinfo=PARIS)
    order = receiving.register_order(contract=contract, reference="R-1", actor=None, notified_at=notified)
    # CCAG-MI §3.2 (issue 11; it was notified + 15 × 24 h): from Tuesday 3 November,
    # 15 calendar days, the last is Tuesday 17 November, over at midnight.
    assert order.due_at == datetime(2026, 11, 18, 0, 0, tzinfo=PARIS)


def test_the_same_reference_twice_on_one_contract_is_refused_in_french(order, contract):
    with pytest.raises(services.ServiceError, match="Une commande OPH57_241122093015 existe déjà"):
        receiving.register_order(contract=contract, reference="OPH57_241122093015", actor=None)
    assert Order.objects.count() == 1


def test_an_asset_of_another_client_is_refused(contract):
    from portal.models import Asset, Client

    stranger = Client.objects.create(name="Autre bailleur")
    foreign = Asset.objects.create(client=stranger, reference="X-1", label="Ailleurs")
    with pytest.raises(services.ServiceError, match="n'appartient pas au client"):
        receiving.register_order(contract=contract, reference="R-2", actor=None, asset=foreign)
    assert not Order.objects.exists()


@pytest.fixture
def at_t0():
    """The order registered just before T0, whatever today's date."""
    with time_machine.travel(T0 - timedelta(hours=1), tick=False):
        yield


def test_a_whole_order_life_leaves_a_french_history_in_order(at_t0, order, supervisor, technician):
    services.acknowledge_order(order, actor=technician, at=T0)
    planning.plan_order(order, actor=technician, appointment=T0 + timedelta(days=1, minutes=30), at=T0)
    planning.plan_order(
        order, actor=technician, appointment=T0 + timedelta(days=2, hours=6), reason="Occupant absent", at=T0
    )
    services.start_work(order, actor=technician, at=T0 + timedelta(days=2, hours=6, minutes=5))
    services.set_progress(order, actor=technician, progress=50, at=T0 + timedelta(days=2, hours=7))
    line1, line2 = order.lines.all()
    services.mark_line(line1, actor=technician, done=True, at=T0 + timedelta(days=2, hours=7))
    services.suspend_work(
        order, actor=technician, reason="quote_request", note="pièce à commander", at=T0 + timedelta(days=2, hours=8)
    )
    services.resume_work(order, actor=technician, at=T0 + timedelta(days=3))
    services.mark_line(line2, actor=technician, done=True, at=T0 + timedelta(days=3, hours=1))
    services.finish_work(order, actor=technician, at=T0 + timedelta(days=3, hours=2))
    services.record_reception(order, actor=supervisor, reception_date=date(2026, 11, 27), at=T0 + timedelta(days=4))
    services.invoice_order(
        order, actor=supervisor, invoice_date=date(2026, 11, 30), invoice_number="F2026-118", at=T0 + timedelta(days=7)
    )
    services.close_order(order, actor=supervisor, outcome="done", at=T0 + timedelta(days=8))

    order.refresh_from_db()
    assert order.state == State.CLOSED
    assert order.progress == 100
    assert order.actual_start == T0 + timedelta(days=2, hours=6, minutes=5)
    assert order.actual_end == T0 + timedelta(days=3, hours=2)
    assert order.invoice_number == "F2026-118"
    labels = history(order)
    assert labels[4:] == [
        "Commande prise en compte",
        "Rendez-vous fixé le mar. 24 nov. à 8 h 30",
        "Rendez-vous reporté au mer. 25 nov. à 14 h 00 (motif : Occupant absent)",
        "Travaux démarrés le mer. 25 nov. à 14 h 05",
        "Avancement : 50 %",
        "Ligne L1 réalisée : Recherche de fuite",
        "Intervention suspendue : devis nécessaire (pièce à commander)",
        "Travaux repris",
        "Ligne L2 réalisée : Remplacement du siphon",
        "Travaux terminés le jeu. 26 nov. à 10 h 00",
        "Travaux réceptionnés le 27 novembre 2026",
        "Facture F2026-118 émise le 30 novembre 2026",
        "Commande clôturée : travaux réalisés",
    ]
    transitions = list(order.events.exclude(state_after="").order_by("pk").values_list("state_before", "state_after"))
    assert transitions[-1] == ("invoiced", "closed")
    assert ("in_progress", "suspended") in transitions


def test_the_suspension_is_recorded_with_its_reason(order, technician):
    services.acknowledge_order(order, actor=technician)
    services.start_work(order, actor=technician)
    event = services.suspend_work(order, actor=technician, reason="occupant_absent", note="personne au rendez-vous")
    assert event.label == "Intervention suspendue : occupant absent (personne au rendez-vous)"
    assert order.suspend_reason == "occupant_absent"


def test_planning_by_period_records_both_dates(order, technician):
    services.acknowledge_order(order, actor=technician)
    event = planning.plan_order(
        order, actor=technician, planned_start=T0, planned_end=T0 + timedelta(days=2), at=T0 - timedelta(days=1)
    )
    assert event.label == "Travaux planifiés du lun. 23 nov. à 8 h 00 au mer. 25 nov. à 8 h 00"
    assert order.appointment_at is None
    assert order.planned_end == T0 + timedelta(days=2)


def test_an_illegal_action_raises_a_clear_error_and_changes_nothing(order, technician):
    before = order.events.count()
    with pytest.raises(IllegalTransition, match="« Terminer les travaux » impossible .* « À prendre en compte »"):
        services.finish_work(order, actor=technician, at=T0)
    order.refresh_from_db()
    assert order.state == State.TO_ACKNOWLEDGE
    assert order.actual_end is None
    assert order.events.count() == before


def test_an_action_missing_its_data_is_refused(order, technician):
    services.acknowledge_order(order, actor=technician)
    with pytest.raises(MissingRequirement, match="il faut un rendez-vous"):
        planning.plan_order(order, actor=technician)
    with pytest.raises(MissingRequirement, match="motif d'annulation"):
        services.cancel_order(order, actor=technician, reason="  ")
    order.refresh_from_db()
    assert order.state == State.ACKNOWLEDGED


def test_finishing_before_the_start_is_refused(order, technician):
    services.acknowledge_order(order, actor=technician)
    services.start_work(order, actor=technician, at=T0)
    with pytest.raises(MissingRequirement, match="ne peut pas précéder"):
        services.finish_work(order, actor=technician, at=T0 - timedelta(minutes=1))


def test_a_stale_copy_of_the_order_cannot_apply_an_action(order, technician):
    stale = Order.objects.get(pk=order.pk)
    services.acknowledge_order(order, actor=technician)
    with pytest.raises(services.ConcurrentChange, match="modifiée entre-temps .*« Pris en compte »"):
        services.acknowledge_order(stale, actor=technician)
    assert order.events.filter(kind="acknowledge").count() == 1


def test_marking_a_line_as_it_already_is_records_nothing(order, technician):
    services.acknowledge_order(order, actor=technician)
    line = order.lines.first()
    assert services.mark_line(line, actor=technician, done=True) is not None
    assert services.mark_line(line, actor=technician, done=True) is None
    assert order.events.filter(kind="mark_line").count() == 1
    services.mark_line(line, actor=technician, done=False)
    line.refresh_from_db()
    assert not line.done
    assert line.done_at is None


def test_progress_is_refused_out_of_range_and_on_a_closed_order(order, technician):
    services.acknowledge_order(order, actor=technician)
    with pytest.raises(MissingRequirement):
        services.set_progress(order, actor=technician, progress=120)
    services.cancel_order(order, actor=technician, reason="Doublon")
    with pytest.raises(IllegalTransition):
        services.set_progress(order, actor=technician, progress=20)


def test_only_an_active_technician_can_be_assigned(order, supervisor, other_technician):
    with pytest.raises(services.ServiceError, match="n'est pas technicien"):
        services.assign_order(order, actor=supervisor, technician=supervisor)
    event = services.assign_order(order, actor=supervisor, technician=other_technician, pilot=supervisor)
    # One action, one event naming both.
    assert event.label == "Technicien : Lucie Moreau ; Pilote : Sophie Lambert"
    assert event.data["technician"] == other_technician.pk
    assert event.data["pilot_mobile"] == "06 55 44 33 22"
    assert order.events.filter(kind="assign").count() == 2  # the registration's, and this one
    assert services.assign_order(order, actor=supervisor, technician=other_technician) is None


def test_editing_details_records_what_changed(order, office):
    event = receiving.update_order_details(order, actor=office, changes={"occupant_name": "M. Paul Martin"})
    assert event.label == "Commande modifiée : occupant"
    assert event.data == {"occupant_name": {"avant": "Mme Claire Martin", "après": "M. Paul Martin"}}
    assert receiving.update_order_details(order, actor=office, changes={"occupant_name": "M. Paul Martin"}) is None


def test_a_line_done_cannot_be_removed(order, technician):
    services.acknowledge_order(order, actor=technician)
    line = order.lines.first()
    services.mark_line(line, actor=technician, done=True)
    with pytest.raises(services.ServiceError, match="ne peut plus être retirée"):
        receiving.remove_line(line, actor=technician)


def test_a_line_from_the_price_schedule_takes_its_label_and_price(order, price_item, office):
    line = receiving.add_line(order, actor=office, price_item=price_item, quantity=Decimal(2))
    assert (line.reference, line.label, line.unit_price, line.amount_excl_vat) == (
        "PLB-012",
        "Remplacement de siphon d'évier",
        Decimal("48.50"),
        Decimal("97.00"),
    )


def test_every_change_passes_through_the_relay_seam(order, technician, supervisor, monkeypatch):
    shared: list[int] = []
    original = sharing.share_event
    monkeypatch.setattr(sharing, "share_event", lambda o, event: (shared.append(event.pk), original(o, event)))
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=T0, at=T0 - timedelta(days=1))
    services.assign_order(order, actor=supervisor, pilot=supervisor)
    services.start_work(order, actor=technician)
    services.set_progress(order, actor=technician, progress=30)
    services.mark_line(order.lines.first(), actor=technician, done=True)
    receiving.update_order_details(order, actor=supervisor, changes={"description": "Fuite importante"})
    services.finish_work(order, actor=technician)
    assert len(shared) == 8
    assert shared == list(order.events.order_by("pk").values_list("pk", flat=True))[-8:]


def test_the_history_cannot_be_changed_or_deleted(order):
    event = order.events.first()
    event.label = "Falsifié"
    with pytest.raises(ValueError, match="ne se modifie pas"):
        event.save()
    with pytest.raises(ValueError, match="ne se supprime pas"):
        event.delete()


def test_the_database_refuses_progress_above_100(order):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(progress=101)


def test_the_database_refuses_an_end_before_the_start(order):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(actual_start=T0, actual_end=T0 - timedelta(hours=1))


def test_the_database_refuses_an_unknown_state(order):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(state="lost")


def test_the_database_refuses_an_invoiced_order_without_invoice_date(order):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=order.pk).update(state="invoiced")


# --- Concurrency, on PostgreSQL ---------------------------------------------


def _in_thread(target, results, index, *args):
    try:
        results[index] = target(*args)
    except Exception as error:  # the outcome is what the test checks
        results[index] = error
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_starts_exactly_one_wins(order, technician):
    services.acknowledge_order(order, actor=technician)
    first_updated = threading.Event()
    second_waiting = threading.Event()
    results: list = [None, None]

    def first():
        copy = Order.objects.get(pk=order.pk)
        with transaction.atomic():
            event = services.start_work(copy, actor=technician, at=T0)
            first_updated.set()
            # Hold the transaction open while the second request runs into the row.
            second_waiting.wait(5)
            time.sleep(0.3)
        return event

    def second():
        copy = Order.objects.get(pk=order.pk)
        assert copy.state == State.ACKNOWLEDGED
        first_updated.wait(5)
        second_waiting.set()
        return services.start_work(copy, actor=technician, at=T0 + timedelta(minutes=1))

    threads = [threading.Thread(target=_in_thread, args=(fn, results, i)) for i, fn in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    close_old_connections()

    assert isinstance(results[0], OrderEvent)
    assert isinstance(results[1], services.ConcurrentChange)
    order.refresh_from_db()
    assert order.state == State.IN_PROGRESS
    assert order.actual_start == T0
    assert order.events.filter(kind="start").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_of_eight_simultaneous_transitions_exactly_one_wins(order, technician):
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=T0, at=T0 - timedelta(days=1))
    barrier = threading.Barrier(8)
    results: list = [None] * 8

    def act(index):
        copy = Order.objects.get(pk=order.pk)
        barrier.wait(5)
        if index % 2:
            return services.start_work(copy, actor=technician, at=T0)
        return services.cancel_order(copy, actor=technician, reason=f"annulation {index}")

    threads = [threading.Thread(target=_in_thread, args=(act, results, i, i)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    close_old_connections()

    winners = [r for r in results if isinstance(r, OrderEvent)]
    losers = [r for r in results if isinstance(r, services.ConcurrentChange)]
    assert len(winners) == 1
    assert len(losers) == 7
    order.refresh_from_db()
    assert order.state == winners[0].state_after
    assert order.events.filter(kind__in=["start", "cancel"]).count() == 1
