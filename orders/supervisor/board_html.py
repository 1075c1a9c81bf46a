"""The dispatch board's two repeated fragments, written with `format_html`
rather than the template engine: an order of the backlog and a visit on a
technician's row. The board shows up to 300 of the one and, for 30 technicians,
150 of the other; through the engine (a lookup, a filter and an escape per
value) they were most of the page's time, here a small part (bench/README.md).
orders/board.html and orders/_board_row.html place them; the markup is theirs
to read, and static/js/dispatch.js reads their data attributes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from orders.models import CriticalLevel, Order
from orders.planning import plans_again
from portal import moments

if TYPE_CHECKING:
    from orders.supervisor.board import Block, BoardRow

EMPTY = mark_safe("")
CRITICAL = CriticalLevel.URGENT  # from this level on, the order is marked in red


def _milliseconds(order: Order) -> int:
    assert order.due_at is not None
    return int(order.due_at.timestamp() * 1000)


def _due(order: Order, due: str) -> SafeString:
    return format_html(' data-due="{}" data-due-label="{}"', _milliseconds(order), due) if due else EMPTY


def _replan(order: Order, *, appointment: bool) -> SafeString:
    """For the script: a new time moves the date it has (or had, then lost its
    technician), so the reason is asked (`orders.planning.is_replanning`); with the
    appointment (`data-appointment`), the same time is no move."""
    if not plans_again(order):
        return EMPTY
    if not appointment or order.appointment_at is None:
        return mark_safe(" data-replan")
    return format_html(' data-replan data-appointment="{}"', int(order.appointment_at.timestamp() * 1000))


def backlog_item(order: Order, *, picked: int | None, prefix: str) -> SafeString:
    """One order of the backlog « À planifier », chosen by its radio button (of
    the form beside the list) or dragged by the whole item."""
    due = moments.moment(order.due_at) if order.due_at else ""
    critical = order.critical_level >= CRITICAL
    address = order.full_address
    facts = [format_html("{} · {}", order.contract.client.name, address or "Adresse non renseignée")]
    if due:
        facts.append(format_html(" · échéance <strong>{}</strong>", due))
    if critical:
        facts.append(format_html(' · <span class="badge badge-critical">{}</span>', order.get_critical_level_display()))
    if order.technician:
        facts.append(format_html(" · {}, sans date", order.technician))
    else:
        facts.append(mark_safe(" · <em>non affectée</em>"))
    if order.appointment_at:
        facts.append(format_html(" · rendez-vous {}", moments.moment(order.appointment_at)))
    return format_html(
        '<li class="backlog-item{critical}" id="a-planifier-{pk}" data-order="{pk}" data-reference="{reference}" '
        'data-minutes="{minutes}"{due_data}{replan}>'
        '<input type="radio" name="commande" value="{pk}" id="pick-{pk}" form="dispatch-form"{checked}>'
        '<label for="pick-{pk}"><strong>{reference}</strong> {code}<span class="backlog-duration">{duration}</span> '
        '<span class="muted">{summary}</span> <span class="backlog-facts">{facts}</span></label>'
        '<a class="backlog-open" href="{prefix}{pk}/">Ouvrir<span class="visually-hidden"> {reference}</span></a>'
        "</li>",
        critical=" is-critical" if critical else "",
        pk=order.pk,
        reference=order.reference,
        minutes=order.visit_length_minutes,
        due_data=_due(order, due),
        replan=_replan(order, appointment=True),
        checked=mark_safe(" checked") if order.pk == picked else EMPTY,
        code=format_html('<strong class="service-code">{}</strong> ', order.service_code.code)
        if order.service_code
        else EMPTY,
        duration=order.visit_label,
        summary=Truncator(order.description).words(10),
        facts=mark_safe("".join(facts)),  # each part escaped by format_html above
        prefix=prefix,
    )


def visit(block: Block) -> SafeString:
    """A visit on a technician's row, on the grid of quarter hours, with what
    the script compares while an order is dragged (start, end, label, whether
    it holds its technician) and, when it can be moved, what it needs to check
    the visit itself dragged elsewhere (its due date, whether a reason is asked)."""
    item, order = block.item, block.item.order
    movable = EMPTY
    if block.movable:
        due = moments.moment(order.due_at) if order.due_at else ""
        # draggable="false": the script's drag (SortableJS), not the browser's drag of a link.
        movable = format_html(
            ' data-movable draggable="false"{}{}', _due(order, due), _replan(order, appointment=False)
        )
    classes = f"board-visit q-from-{block.first} q-span-{block.span}"
    notes = []
    if item.conflicts:
        classes += " is-conflict"
        notes.append("chevauchement")
    if not block.holds:
        classes += " is-done"
        notes.append(order.get_state_display().lower())
    if item.late:
        classes += " is-late"
    if order.service_code:
        notes.append(order.service_code.code)
    if order.asset and order.asset.city:
        notes.append(order.asset.city)
    title = " · ".join(
        part
        for part in (
            order.reference,
            block.when,
            item.description,
            order.service_code.code if order.service_code else "",
            order.full_address,
        )
        if part
    )
    return format_html(
        '<a class="{classes}" href="{url}" title="{title}" data-order="{pk}" data-reference="{reference}" '
        'data-label="{label}" data-start="{start}" data-end="{end}"{holds}{movable}>'
        '<strong>{reference}</strong><span class="board-visit-when">{when}</span>'
        '<span class="board-visit-where">{notes}</span></a>',
        classes=classes,
        url=item.url,
        title=title,
        pk=order.pk,
        reference=order.reference,
        label=item.description,
        start=block.start_ms,
        end=block.end_ms,
        holds=mark_safe(" data-holds") if block.holds else EMPTY,
        movable=movable,
        when=block.shown_when,
        notes=" · ".join(notes),
    )


def visit_options(rows: list[BoardRow], *, picked: int | None) -> SafeString:
    """The day's visits that can be moved, by technician: the choices of the
    form's « Visite à déplacer » (keyboard, no JavaScript)."""
    groups = []
    for row in rows:
        options = [
            format_html(
                '<option value="{}"{}>{} · {}</option>',
                block.item.order.pk,
                mark_safe(" selected") if block.item.order.pk == picked else EMPTY,
                block.item.order.reference,
                block.when,
            )
            for block in row.blocks
            if block.movable
        ]
        if options:
            groups.append(format_html('<optgroup label="{}">{}</optgroup>', row.label, mark_safe("".join(options))))
    return mark_safe("".join(groups))  # each part escaped by format_html above
