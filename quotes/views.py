"""The supervisors' quote pages: the list, the editor (htmx: price-item search
as you type, lines and totals redrawn in place), sending, revising,
cancelling, the PDF. Each view parses a form, loads through the access helper,
calls one service, and renders or redirects. Refusals are shown in French."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from orders.access import get_order_for
from orders.models import InterventionReport
from portal.errors import Refused
from portal.htmx import render_page_or_fragment, wants_fragment
from portal.models import PriceItem
from quotes import drafts, printing, queries, services, sharing
from quotes.access import get_quote_for, quote_page
from quotes.forms import (
    RATE_CHOICES,
    CancelForm,
    DetailsForm,
    LineChangeForm,
    LineForm,
    NewQuoteForm,
    PartForm,
    QuoteFilterForm,
)
from quotes.models import Quote

EDITOR = "quotes/editor.html"
SEARCH_LIMIT = 20


@require_GET
@quote_page
def quote_list(request: HttpRequest) -> HttpResponse:
    form = QuoteFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = queries.quote_rows(filters, now=timezone.now())
    context = {"form": form, "rows": rows, "new_form": NewQuoteForm()}
    return render_page_or_fragment(request, "quotes/list.html", "results", context)


@require_POST
@quote_page
def quote_new(request: HttpRequest) -> HttpResponse:
    form = NewQuoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choisissez le marché et donnez un objet au devis.")
        return redirect("quotes:list")
    try:
        quote = services.create_quote(
            contract=form.cleaned_data["contract"], actor=request.user, title=form.cleaned_data["title"]
        )
    except Refused as error:
        messages.error(request, str(error))
        return redirect("quotes:list")
    return redirect("quotes:edit", quote.pk)


@require_POST
@quote_page
def quote_for_order(request: HttpRequest, order_pk: int) -> HttpResponse:
    order = get_order_for(request, order_pk)
    try:
        quote = services.create_quote_for_order(order, actor=request.user)
    except Refused as error:
        messages.error(request, str(error))
        return redirect("orders:supervisor_order", order.pk)
    return redirect("quotes:edit", quote.pk)


@require_POST
@quote_page
def quote_for_materials(request: HttpRequest, order_pk: int) -> HttpResponse:
    """The order's supplies still to take up, as a new supplementary-works quote."""
    order = get_order_for(request, order_pk)
    try:
        quote = services.quote_materials(order, actor=request.user)
    except Refused as error:
        messages.error(request, str(error))
        return redirect("orders:supervisor_order", order.pk)
    messages.success(
        request, f"Devis {quote.display_number} préparé avec les fournitures : vérifiez-le, puis envoyez-le."
    )
    return redirect("quotes:edit", quote.pk)


@require_POST
@quote_page
def quote_for_report(request: HttpRequest, report_pk: int) -> HttpResponse:
    report = get_object_or_404(InterventionReport.objects.select_related("order"), pk=report_pk)
    try:
        quote = services.create_quote_from_report(report, actor=request.user)
    except Refused as error:
        messages.error(request, str(error))
        existing = Quote.objects.filter(report=report).exclude(state="cancelled").first()
        return (
            redirect("quotes:edit", existing.pk) if existing else redirect("orders:supervisor_order", report.order_id)
        )
    return redirect("quotes:edit", quote.pk)


def lines_context(quote: Quote) -> dict[str, Any]:
    lines = list(quote.lines.all())
    totals = queries.display_totals(lines)
    for line in lines:
        line.amount_display = totals.amounts[line.pk]  # type: ignore[attr-defined]
    return {"quote": quote, "lines": lines, "rate_choices": RATE_CHOICES, "totals": totals}


# What each part of the editor needs: an htmx change redraws one part, and
# builds only its context (the lines' redraw is the editor's most frequent request).
PARTIAL_CONTEXTS: dict[str, Callable[[Quote], dict[str, Any]]] = {
    "lines": lines_context,
    "parts": lambda quote: {"quote": quote, "parts": list(quote.parts.all()), "part_form": PartForm()},
    "details": lambda quote: {"quote": quote, "details_form": DetailsForm(instance=quote)},
}


def editor_context(quote: Quote, *, error: str = "", notice: str = "") -> dict[str, Any]:
    return {
        **lines_context(quote),
        "parts": list(quote.parts.all()),
        "details_form": DetailsForm(instance=quote),
        "line_form": LineForm(),
        "part_form": PartForm(),
        "cancel_form": CancelForm(),
        "events": list(quote.events.select_related("actor").order_by("-at", "-pk")[:50]),
        "versions": list(Quote.objects.filter(number=quote.number).order_by("version")),
        "waiting": queries.waiting(quote, timezone.now()),
        "photos": list(quote.report.photos.all()) if quote.report_id else [],
        "error": error,
        "notice": notice,
    }


@require_GET
@quote_page
def quote_edit(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    return render(request, EDITOR, editor_context(quote))


@require_GET
@quote_page
def quote_pdf_status(request: HttpRequest, pk: int) -> HttpResponse:
    """The PDF's state, polled by the editor while it is being produced (286 stops the polling)."""
    quote = get_quote_for(request, pk)
    response = render(request, f"{EDITOR}#pdf", {"quote": quote})
    if not quote.pdf_in_progress:
        response.status_code = 286
    return response


def _change(
    request: HttpRequest, quote: Quote, apply: Callable[[], str | None], *, partial: str = "lines"
) -> HttpResponse:
    """Call the service; redraw `partial` for htmx (with the refusal, if any),
    else redirect to the editor with a message."""
    error = notice = ""
    try:
        notice = apply() or ""
    except Refused as failure:
        error = str(failure)
    quote = get_quote_for(request, quote.pk)
    if wants_fragment(request):
        make = PARTIAL_CONTEXTS.get(partial)
        context = make(quote) if make is not None else editor_context(quote)
        return render(request, f"{EDITOR}#{partial}", {**context, "error": error, "notice": notice, "fragment": True})
    if error:
        messages.error(request, error)
    elif notice:
        messages.success(request, notice)
    return redirect("quotes:edit", quote.pk)


@require_POST
@quote_page
def quote_details(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    form = DetailsForm(request.POST, instance=Quote.objects.get(pk=quote.pk))
    if not form.is_valid():
        context = editor_context(quote, error="Corrigez les champs indiqués.")
        context["details_form"] = form
        return render(request, EDITOR, context, status=HTTPStatus.UNPROCESSABLE_ENTITY)
    changes = {name: form.cleaned_data[name] for name in form.fields}

    def apply() -> str:
        return (
            "Devis enregistré."
            if drafts.update_quote(quote, actor=request.user, changes=changes)
            else "Rien n'a changé."
        )

    return _change(request, quote, apply, partial="details")


@require_GET
@quote_page
def price_search(request: HttpRequest, pk: int) -> HttpResponse:
    """The contract's price items whose code starts with, or label contains, what is typed."""
    quote = get_quote_for(request, pk)
    text = request.GET.get("q", "").strip()[:100]
    items = queries.search_price_items(quote.contract_id, text, limit=SEARCH_LIMIT) if text else []
    if wants_fragment(request):
        return render(request, f"{EDITOR}#search", {"quote": quote, "items": items, "q": text})
    # Without JavaScript the search form is a plain GET: the whole editor, with the results.
    return render(request, EDITOR, {**editor_context(quote), "items": items, "q": text})


@require_POST
@quote_page
def line_add(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    form = LineForm(request.POST)
    data = form.cleaned_data if form.is_valid() else {}

    def apply() -> str:
        if not data:
            raise services.QuoteRefused("Ligne illisible : vérifiez la quantité et le prix.")
        price_item = None
        if data.get("price_item"):
            price_item = PriceItem.objects.filter(pk=data["price_item"], contract_id=quote.contract_id).first()
            if price_item is None:
                raise services.QuoteRefused("Ce prix n'est pas au bordereau du marché du devis.")
        line = drafts.add_line(
            quote,
            actor=request.user,
            price_item=price_item,
            quantity=data["quantity"],
            vat_rate=data.get("vat_rate") or None,
            label=data.get("label", ""),
            unit=data.get("unit", ""),
            unit_price=data.get("unit_price") or None,
            justification=data.get("justification", ""),
        )
        return f"Ligne ajoutée : {line.label}"

    return _change(request, quote, apply)


@require_POST
@quote_page
def line_update(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    line = get_object_or_404(quote.lines, pk=line_pk)
    form = LineChangeForm(request.POST)

    def apply() -> str:
        if not form.is_valid():
            raise services.QuoteRefused("Quantité ou taux de TVA illisible.")
        changed = drafts.update_line(line, actor=request.user, changes=form.cleaned_data)
        return "Ligne modifiée." if changed else ""

    return _change(request, quote, apply)


@require_POST
@quote_page
def line_remove(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    line = get_object_or_404(quote.lines, pk=line_pk)
    return _change(request, quote, lambda: drafts.remove_line(line, actor=request.user).label)


@require_POST
@quote_page
def part_add(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    form = PartForm(request.POST)

    def apply() -> str:
        if not form.is_valid():
            raise services.QuoteRefused("Dites qui fournit la pièce et décrivez-la.")
        return f"Pièce ajoutée : {drafts.add_part(quote, actor=request.user, **form.cleaned_data).description}"

    return _change(request, quote, apply, partial="parts")


@require_POST
@quote_page
def part_remove(request: HttpRequest, pk: int, part_pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    part = get_object_or_404(quote.parts, pk=part_pk)
    return _change(request, quote, lambda: drafts.remove_part(part, actor=request.user).label, partial="parts")


@require_POST
@quote_page
def quote_send(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    return _change(request, quote, lambda: services.send_quote(quote, actor=request.user).label, partial="page")


@require_POST
@quote_page
def quote_revise(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    try:
        revision = services.revise_quote(quote, actor=request.user)
    except Refused as error:
        messages.error(request, str(error))
        return redirect("quotes:edit", quote.pk)
    messages.success(request, f"Version {revision.version} commencée : modifiez-la, puis envoyez-la.")
    return redirect("quotes:edit", revision.pk)


@require_POST
@quote_page
def quote_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    reason = CancelForm(request.POST).data.get("reason", "")
    return _change(
        request,
        quote,
        lambda: services.cancel_quote(quote, actor=request.user, reason=str(reason)).label,
        partial="page",
    )


@require_POST
@quote_page
def quote_pdf_retry(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)

    def apply() -> str:
        return (
            "Production du PDF relancée."
            if services.retry_pdf(quote, actor=request.user)
            else "Le PDF est déjà produit."
        )

    return _change(request, quote, apply, partial="page")


@require_GET
@quote_page
def quote_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The PDF's content as a web page (any state, the draft's included)."""
    quote = get_quote_for(request, pk)
    context, _ = printing.quote_context(printing.load(quote.pk), with_images=False)
    return render(request, "quotes/preview.html", context)


@require_GET
@quote_page
def quote_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    quote = get_quote_for(request, pk)
    if not quote.pdf_file:
        raise Http404
    return FileResponse(
        quote.pdf_file.open("rb"),
        as_attachment=False,
        filename=sharing.pdf_file_name(quote),
        content_type="application/pdf",
    )
