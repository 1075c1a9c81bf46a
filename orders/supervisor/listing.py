"""All orders, for supervisors and office staff: filters, search, sorting and
pagination, all in the query string so that a view can be bookmarked or sent
to a colleague, and the same list as a CSV file for Excel.

Every parameter goes through one form. A bad value never fails the page: it
is ignored, and a French note says so (a bookmarked link outlives the client or
the technician it named). The page and the CSV run a fixed number of queries,
however many orders there are: the joins are made in the query, the report is
an EXISTS, and the CSV streams `values()` rows through a database iterator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OrderBy,
    OuterRef,
    QuerySet,
    Window,
)
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.utils import timezone

from orders.models import InterventionReport, Order
from orders.queries import due_soon_condition, late_condition
from orders.states import STATE_LABELS
from orders.supervisor.forms import DEFAULT_SORT, NO_TECHNICIAN, SORTS, OrderFilterForm
from portal.access import role_required
from portal.htmx import render_page_or_fragment
from portal.models import Client, ContactAccess, Contract, Role, User
from portal.privacy import record_contact_access
from portal.spreadsheets import csv_lines, safe_cell

PARIS = ZoneInfo("Europe/Paris")
PER_PAGE = 50
MAX_PAGE = 1_000_000
# Rows fetched from the database at a time by the CSV export: enough to keep
# the round trips few, small enough that memory stays flat whatever the count.
CSV_CHUNK = 2000


# --- The parameters ------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The valid parameters, as the queries and the links use them."""

    q: str = ""
    states: tuple[str, ...] = ()
    client: Client | None = None
    contract: Contract | None = None
    technician: User | str | None = None
    late: str = ""
    report: str = ""
    start: date | None = None
    end: date | None = None
    sort: str = DEFAULT_SORT

    @classmethod
    def from_form(cls, form: OrderFilterForm) -> Filters:
        form.is_valid()  # the invalid fields are left out of cleaned_data
        data = form.cleaned_data
        return cls(
            q=data.get("q") or "",
            states=tuple(data.get("etat") or ()),
            client=data.get("client"),
            contract=data.get("marche"),
            technician=data.get("technicien"),
            late=data.get("retard") or "",
            report=data.get("rapport") or "",
            start=data.get("du"),
            end=data.get("au"),
            sort=data.get("tri") or DEFAULT_SORT,
        )

    def query(self) -> QueryDict:
        """The canonical query string of these filters: what the links carry
        (sorting, pages, the CSV), without the empty and the ignored values."""
        query = QueryDict(mutable=True)
        if self.q:
            query["q"] = self.q
        if self.states:
            query.setlist("etat", list(self.states))
        for name, value in (("client", self.client), ("marche", self.contract)):
            if value is not None:
                query[name] = str(value.pk)
        if self.technician is not None:
            query["technicien"] = NO_TECHNICIAN if self.technician == NO_TECHNICIAN else str(self.technician.pk)
        if self.late:
            query["retard"] = self.late
        if self.report:
            query["rapport"] = self.report
        if self.start:
            query["du"] = self.start.isoformat()
        if self.end:
            query["au"] = self.end.isoformat()
        if self.sort != DEFAULT_SORT:
            query["tri"] = self.sort
        return query

    @property
    def active(self) -> bool:
        return bool(self.query().keys() - {"tri"})


# --- The queries ----------------------------------------------------------------


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=PARIS)


def _annotated(orders: QuerySet[Order], now: datetime) -> QuerySet[Order]:
    """Each order with `has_report`, `is_late` and `due_soon`."""
    return orders.annotate(
        has_report=Exists(InterventionReport.objects.filter(order=OuterRef("pk"))),
        is_late=ExpressionWrapper(late_condition(now), output_field=BooleanField()),
        due_soon=ExpressionWrapper(due_soon_condition(now), output_field=BooleanField()),
    )


def filtered_orders(user: User, filters: Filters, now: datetime) -> QuerySet[Order]:
    """The orders `user` may see that match `filters`, each with `has_report`,
    `is_late` and `due_soon`, sorted; no join for display yet."""
    orders = _annotated(Order.objects.visible_to(user), now)
    if filters.states:
        orders = orders.filter(state__in=filters.states)
    if filters.client is not None:
        orders = orders.filter(contract__client=filters.client)
    if filters.contract is not None:
        orders = orders.filter(contract=filters.contract)
    if filters.technician == NO_TECHNICIAN:
        orders = orders.filter(technician__isnull=True)
    elif filters.technician is not None:
        orders = orders.filter(technician=filters.technician)
    if filters.late == "oui":
        orders = orders.late(now)
    elif filters.late == "48h":
        orders = orders.due_soon(now)
    if filters.report:
        orders = orders.filter(has_report=filters.report == "avec")
    if filters.start:
        orders = orders.filter(received_at__gte=_start_of(filters.start))
    if filters.end:
        orders = orders.filter(received_at__lt=_start_of(filters.end + timedelta(days=1)))
    return orders.search(filters.q).order_by(*_ordering(filters.sort))


def _ordering(key: str) -> list[OrderBy | str]:
    """The columns of sort `key` (`-` for descending), empty values last, then
    the primary key so that equal rows keep their place from page to page."""
    descending = key.startswith("-")
    sort = SORTS[key.removeprefix("-")]
    columns: list[OrderBy | str] = [
        field.desc(nulls_last=True) if descending else field.asc(nulls_last=True) for field in sort.fields
    ]
    return [*columns, "-pk" if descending else "pk"]


# --- The page -------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A sortable column header: its link sorts by it, or the other way if it already does."""

    label: str
    key: str
    next_sort: str
    aria_sort: str  # "ascending", "descending" or "" (not sorted by it)


def _columns(current: str) -> dict[str, Column]:
    columns = []
    for key, sort in SORTS.items():
        if current == key:
            columns.append(Column(sort.label, key, f"-{key}", "ascending"))
        elif current == f"-{key}":
            columns.append(Column(sort.label, key, key, "descending"))
        else:
            # Dates are first read newest first.
            columns.append(Column(sort.label, key, f"-{key}" if key in ("recue", "echeance") else key, ""))
    return {column.key: column for column in columns}


def _page(orders: QuerySet[Order], number: str | None, now: datetime) -> Page:
    """The page of `orders` asked for: junk gives the first page, a number past
    the end the last, never an error.

    One query sorts the matching orders' keys alone and counts them in the same
    scan (a window), a second fetches the page's orders whole. Sorting every
    matching order with its joined client, contract, asset and technician to keep
    fifty, and filtering them twice (once to count), was most of the page's time
    on a large list (figures in bench/README.md)."""
    try:
        wanted = max(int(number or 1), 1)
    except ValueError:
        wanted = 1
    keys = orders.annotate(matching=Window(Count("*"))).values_list("pk", "matching")
    # A page number no list reaches (and the database would refuse as an offset) is past the end.
    rows = list(keys[(wanted - 1) * PER_PAGE : wanted * PER_PAGE]) if wanted <= MAX_PAGE else []
    # The paginator only counts. No rows on the first page: nothing matches; on
    # another, it may be past the end.
    count = rows[0][1] if rows else orders.count() if wanted > 1 else 0
    paginator = Paginator(range(count), PER_PAGE)
    if not rows and wanted > paginator.num_pages:
        wanted = paginator.num_pages
        rows = list(keys[(wanted - 1) * PER_PAGE : wanted * PER_PAGE])
    ids = [pk for pk, _matching in rows]
    found = {
        order.pk: order
        for order in _annotated(Order.objects.filter(pk__in=ids), now).select_related(
            "contract__client", "asset", "technician", "service_code"
        )
    }
    return Page([found[pk] for pk in ids if pk in found], wanted, paginator)


@role_required(Role.SUPERVISOR, Role.OFFICE)
def order_list(request: HttpRequest) -> HttpResponse:
    """Every order, filtered, sorted and paginated from the query string; for
    htmx, only the table (one URL serves both)."""
    form = OrderFilterForm(request.GET)
    filters = Filters.from_form(form)
    now = timezone.now()
    page = _page(filtered_orders(request.user, filters, now), request.GET.get("page"), now)
    context = {
        "form": form,
        "filter_fields": [form[name] for name in ("client", "marche", "technicien", "retard", "rapport", "du", "au")],
        "filters": filters,
        "query": filters.query(),
        "notes": form.notes(),
        "page": page,
        "columns": _columns(filters.sort),
    }
    return render_page_or_fragment(request, "orders/order_list.html", "table", context)


# --- The CSV export -------------------------------------------------------------

CSV_COLUMNS = [
    "Référence",
    "Client",
    "Marché",
    "Adresse",
    "Code postal",
    "Ville",
    "Occupant",
    "État",
    "Technicien",
    "Reçue le",
    "Échéance",
    "En retard",
    "Fin des travaux",
    "Rapport d'intervention",
    "Montant HT (€)",
]
CSV_FIELDS = (
    "reference",
    "contract__client__name",
    "contract__reference",
    "asset__address",
    "asset__address_complement",
    "asset__postcode",
    "asset__city",
    "site_address",
    "site_postcode",
    "site_city",
    "occupant_name",
    "state",
    "technician__first_name",
    "technician__last_name",
    "technician__username",
    "received_at",
    "due_at",
    "is_late",
    "actual_end",
    "has_report",
    "value",
)


def _when(value: datetime | None) -> str:
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if value else ""


def _amount(value: Decimal | None) -> str:
    # A decimal comma and no thousands separator: what Excel in French reads as a number.
    return f"{(value or Decimal(0)).quantize(Decimal('0.01'))}".replace(".", ",")


def _where(row: dict[str, Any]) -> tuple[str, str, str]:
    """Street, postcode and city of the works, as `Order.full_address` reads them:
    the asset's address, else the order's own (an operation that named no asset)."""
    asset = [
        row[name] or "" for name in ("asset__address", "asset__address_complement", "asset__postcode", "asset__city")
    ]
    if any(asset):
        return ", ".join(filter(None, asset[:2])), asset[2], asset[3]
    return row["site_address"], row["site_postcode"], row["site_city"]


def _csv_row(row: dict[str, Any]) -> list[str]:
    technician = " ".join(filter(None, (row["technician__first_name"], row["technician__last_name"])))
    street, postcode, city = _where(row)
    text = (
        row["reference"],
        row["contract__client__name"],
        row["contract__reference"],
        street,
        postcode,
        city,
        row["occupant_name"],
        STATE_LABELS.get(row["state"], row["state"]),
        technician or row["technician__username"] or "",
    )
    return [
        *(safe_cell(value) for value in text),
        _when(row["received_at"]),
        _when(row["due_at"]),
        "oui" if row["is_late"] else "non",
        _when(row["actual_end"]),
        "oui" if row["has_report"] else "non",
        _amount(row["value"]),
    ]


def _csv_rows(rows: Iterator[dict[str, Any]], user: User, query: str) -> Iterator[list[str]]:
    count = 0
    try:
        for row in rows:
            count += 1
            yield _csv_row(row)
    finally:
        # Written once the rows have gone out (or as many as did): the occupants of each were exported.
        detail = f"Filtres : {query}" if query else "Sans filtre"
        record_contact_access(user, ContactAccess.Where.CSV_EXPORT, orders=count, detail=detail)


@role_required(Role.SUPERVISOR, Role.OFFICE)
def order_list_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered list as a CSV file for Excel in France, streamed: the rows go
    out as the database iterator yields them, never all in memory."""
    now = timezone.now()
    filters = Filters.from_form(OrderFilterForm(request.GET))
    rows = filtered_orders(request.user, filters, now).with_value().values(*CSV_FIELDS).iterator(chunk_size=CSV_CHUNK)
    response = StreamingHttpResponse(
        csv_lines(CSV_COLUMNS, _csv_rows(rows, request.user, filters.query().urlencode())),
        content_type="text/csv; charset=utf-8",
    )
    filename = f"commandes-{now.astimezone(PARIS):%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
