"""One definition each of an order's value, late and due soon: the queryset
annotations and the model's methods agree."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from orders import planning, queries, receiving, services
from orders.models import Order


def test_an_orders_value_is_the_same_in_a_lists_query_and_on_the_order(order, price_item, office):
    receiving.add_line(order, actor=office, price_item=price_item, quantity=Decimal("2.5"))
    receiving.add_line(order, actor=office, reference="HB-1", label="Hors bordereau", unit_price=Decimal("19.99"))
    annotated = Order.objects.with_value().get(pk=order.pk)
    assert annotated.value == order.value_excl_vat()
    assert order.value_excl_vat() == sum(line.amount_excl_vat for line in order.lines.all())


def test_an_order_without_lines_is_worth_nothing_in_both(order):
    order.lines.all().delete()
    assert Order.objects.with_value().get(pk=order.pk).value == order.value_excl_vat() == Decimal("0.00")


def test_late_and_due_soon_are_one_definition_for_filters_and_annotations(order):
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(due_at=now + timedelta(hours=47))
    assert list(Order.objects.due_soon(now)) == [order]
    assert not Order.objects.late(now).exists()
    assert list(Order.objects.late(now + timedelta(hours=48))) == [order]
    assert not Order.objects.due_soon(now + timedelta(hours=48)).exists()


def test_late_is_the_same_for_an_order_already_read_as_in_a_query(order, technician):
    now = timezone.now()
    for due_at in (now - timedelta(minutes=1), now, now + timedelta(minutes=1), None):
        Order.objects.filter(pk=order.pk).update(due_at=due_at)
        order.refresh_from_db()
        assert queries.is_late(order, now) == Order.objects.late(now).filter(pk=order.pk).exists(), due_at
    Order.objects.filter(pk=order.pk).update(due_at=now - timedelta(days=1))
    services.acknowledge_order(order, actor=technician)
    planning.plan_order(order, actor=technician, appointment=now - timedelta(hours=3), at=now - timedelta(hours=4))
    services.start_work(order, actor=technician, at=now - timedelta(hours=2))
    services.finish_work(order, actor=technician, at=now - timedelta(hours=1))
    order.refresh_from_db()
    assert not queries.is_late(order, now) and not Order.objects.late(now).exists()
