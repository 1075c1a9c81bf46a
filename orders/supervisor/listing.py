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

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.paginator import Page, Paginator
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OrderBy,
    OuterRef,
    QuerySet,
    Value,
    When,
    Window,
)
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from orders.models import InterventionReport, Order
from orders.queries import due_soon_condition, late_condition
from orders.states import STATE_LABELS, State
from portal.access import role_required
from portal.htmx import render_page_or_fragment
from portal.models import Client, Contract, Role, User

PARIS = ZoneInfo("Europe/Paris")
PER_PAGE = 50
MAX_PAGE = 1_000_000
NO_TECHNICIAN = "aucun"
# Rows fetched from the database at a time by the CSV export: enough to keep
# the round trips few, small enough that memory stays flat whatever the count.
CSV_CHUNK = 2000


# --- The parameters ------------------------------------------------------------


class TechnicianChoiceIterator(forms.models.ModelChoiceIterator):
    """The technicians, after « Non affecté » (`technicien=aucun`)."""

    def __iter__(self) -> Iterator[tuple[Any, str]]:
        iterator = super().__iter__()
        if self.field.empty_label is not None:
            yield next(iterator)
        yield (NO_TECHNICIAN, "Non affecté")
        yield from iterator

    def __len__(self) -> int:
        return super().__len__() + 1


class TechnicianField(forms.ModelChoiceField):
    """A technician, or `aucun` for the orders nobody is assigned to."""

    iterator = TechnicianChoiceIterator

    def to_python(self, value: Any) -> Any:
        if value == NO_TECHNICIAN:
            return NO_TECHNICIAN
        return super().to_python(value)

    def label_from_instance(self, obj: User) -> str:
        name = obj.get_full_name() or obj.username
        return name if obj.is_active else f"{name} (inactif)"


class ContractField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Contract) -> str:
        return f"{obj.client.name} · {obj.reference}"


@dataclass(frozen=True)
class Sort:
    label: str
    fields: tuple[Any, ...]


# The order of the state machine, not the alphabet: « À prendre en compte » first.
STATE_POSITION = Case(*(When(state=state, then=Value(index)) for index, state in enumerate(State)), default=Value(99))

SORTS: dict[str, Sort] = {
    "reference": Sort("Référence", (F("reference"),)),
    "client": Sort("Client", (F("contract__client__name"),)),
    "marche": Sort("Marché", (F("contract__reference"),)),
    "etat": Sort("État", (STATE_POSITION,)),
    "technicien": Sort("Technicien", (F("technician__last_name"), F("technician__first_name"))),
    "recue": Sort("Reçue le", (F("received_at"),)),
    "echeance": Sort("Échéance", (F("due_at"),)),
}
DEFAULT_SORT = "-recue"
SORT_CHOICES = [(key, sort.label) for key, sort in SORTS.items()] + [
    (f"-{key}", f"{sort.label} (décroissant)") for key, sort in SORTS.items()
]


def _date_field(label: str) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class OrderFilterForm(forms.Form):
    """The list's query string. Names are French and short because people see
    them in the address bar and other pages link to them (`?etat=to_acknowledge`)."""

    q = forms.CharField(
        label="Rechercher",
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Référence, adresse ou occupant", "autocomplete": "off"}
        ),
    )
    etat = forms.MultipleChoiceField(
        label="État",
        required=False,
        choices=[(state.value, label) for state, label in STATE_LABELS.items()],
        widget=forms.CheckboxSelectMultiple,
    )
    client = forms.ModelChoiceField(
        label="Client", queryset=Client.objects.all(), required=False, empty_label="Tous les clients"
    )
    marche = ContractField(
        label="Marché",
        queryset=Contract.objects.select_related("client"),
        required=False,
        empty_label="Tous les marchés",
    )
    technicien = TechnicianField(
        label="Technicien",
        queryset=User.objects.filter(role=Role.TECHNICIAN).order_by("-is_active", "last_name", "first_name", "pk"),
        required=False,
        empty_label="Tous les techniciens",
    )
    retard = forms.ChoiceField(
        label="Retard",
        required=False,
        choices=[("", "Indifférent"), ("oui", "En retard"), ("48h", "En retard sous 48 h")],
    )
    rapport = forms.ChoiceField(
        label="Rapport d'intervention",
        required=False,
        choices=[("", "Indifférent"), ("avec", "Avec rapport"), ("sans", "Sans rapport")],
    )
    du = _date_field("Reçue du")
    au = _date_field("au")
    tri = forms.ChoiceField(label="Tri", required=False, choices=SORT_CHOICES, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict | None = None, **kwargs: Any) -> None:
        # An unknown state among known ones drops that state only, not the whole filter.
        self.unknown_states: list[str] = []
        if data is not None and "etat" in data:
            known = {state.value for state in State}
            states = data.getlist("etat")
            self.unknown_states = [value for value in states if value not in known]
            if self.unknown_states:
                data = data.copy()
                data.setlist("etat", [value for value in states if value in known])
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("du"), cleaned.get("au")
        if start and end and start > end:
            del cleaned["du"], cleaned["au"]
            raise forms.ValidationError("la date de début est après la date de fin.")
        return cleaned

    def notes(self) -> list[str]:
        """What was ignored, and why, in French."""
        notes = [f"État inconnu ignoré : « {value} »." for value in self.unknown_states]
        for name, errors in self.errors.items():
            label = "Dates de réception" if name == NON_FIELD_ERRORS else self.fields[name].label
            notes.append(f"Filtre « {label} » ignoré : {' '.join(errors)}")
        return notes


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
    fifty, and filtering them twice (once to count), took most of the page's
    time with 20,000 orders (bench/supervisor.py)."""
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
            "contract__client", "asset", "technician"
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


class _Echo:
    """A file that hands back what csv.writer writes, for streaming."""

    def write(self, value: str) -> str:
        return value


def _when(value: datetime | None) -> str:
    return value.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if value else ""


def _amount(value: Decimal | None) -> str:
    # A decimal comma and no thousands separator: what Excel in French reads as a number.
    return f"{(value or Decimal(0)).quantize(Decimal('0.01'))}".replace(".", ",")


def _csv_row(row: dict[str, Any]) -> list[str]:
    technician = " ".join(filter(None, (row["technician__first_name"], row["technician__last_name"])))
    address = ", ".join(filter(None, (row["asset__address"], row["asset__address_complement"])))
    return [
        row["reference"],
        row["contract__client__name"],
        row["contract__reference"],
        address,
        row["asset__postcode"] or "",
        row["asset__city"] or "",
        row["occupant_name"],
        STATE_LABELS.get(row["state"], row["state"]),
        technician or row["technician__username"] or "",
        _when(row["received_at"]),
        _when(row["due_at"]),
        "oui" if row["is_late"] else "non",
        _when(row["actual_end"]),
        "oui" if row["has_report"] else "non",
        _amount(row["value"]),
    ]


def _csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    writer = csv.writer(_Echo(), delimiter=";")
    yield "\ufeff"  # the BOM: without it Excel reads UTF-8 as Windows-1252
    yield writer.writerow(CSV_COLUMNS)
    for row in rows:
        yield writer.writerow(_csv_row(row))


@role_required(Role.SUPERVISOR, Role.OFFICE)
def order_list_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered list as a CSV file for Excel in France, streamed: the rows go
    out as the database iterator yields them, never all in memory."""
    now = timezone.now()
    filters = Filters.from_form(OrderFilterForm(request.GET))
    rows = filtered_orders(request.user, filters, now).with_value().values(*CSV_FIELDS).iterator(chunk_size=CSV_CHUNK)
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    filename = f"commandes-{now.astimezone(PARIS):%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("commandes/", order_list, name="order_list"),
    path("commandes.csv", order_list_csv, name="order_list_csv"),
]
