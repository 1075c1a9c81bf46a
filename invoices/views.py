"""The office's invoicing pages (desktop): orders to invoice by billing
account, drafts, issuing one or several (a batch renders in the background,
its progress shown), downloads, credit notes, the month's export, and getting
paid. Views are thin: every change goes through `invoices.services` or
`invoices.payments`; a refusal is shown in French, never a 500."""

from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.middleware.csp import get_nonce
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from invoices import export as exports
from invoices import payments, services, tasks
from invoices.access import invoice_page
from invoices.models import Invoice, InvoiceState, IssueBatch, Kind
from portal.errors import Refused

logger = logging.getLogger(__name__)


def _invoice(pk: int) -> Invoice:
    return get_object_or_404(Invoice.objects.select_related("billing_account__client", "contract", "credited"), pk=pk)


def _date(value: str | None, label: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise Refused(f"{label} : saisissez une date (jj/mm/aaaa).") from None


@invoice_page
@require_GET
def invoice_list(request: HttpRequest) -> HttpResponse:
    groups: dict[Any, list] = defaultdict(list)
    for order in services.to_invoice():
        groups[services.billing_account_of(order)].append(order)
    today = timezone.localdate()
    issued = Invoice.objects.filter(state=InvoiceState.ISSUED).select_related("billing_account__client")
    context = {
        "groups": sorted(groups.items(), key=lambda item: str(item[0])),
        "drafts": Invoice.objects.filter(state=InvoiceState.DRAFT).select_related("billing_account__client"),
        "issued": issued.order_by("-issued_at", "-pk")[:50],
        "follow_up": payments.follow_up(today=today),
        "year": today.year,
        "month": today.month,
        "batch": IssueBatch.objects.filter(created_by=request.user).order_by("-pk").first(),
    }
    return render(request, "invoices/list.html", context)


@invoice_page
@require_POST
def make_drafts(request: HttpRequest) -> HttpResponse:
    """One draft per billing account and contract among the orders ticked
    (or one per order, when asked)."""
    ids = [int(value) for value in request.POST.getlist("order") if value.isdigit()]
    orders = list(services.to_invoice().filter(pk__in=ids))
    if not orders:
        messages.error(request, "Cochez au moins une commande à facturer.")
        return redirect("invoices:list")
    together = request.POST.get("grouping") == "together"
    bundles: dict[tuple, list] = defaultdict(list)
    for order in orders:
        key = (services.billing_account_of(order).pk, order.contract_id) if together else (order.pk,)  # type: ignore[union-attr]
        bundles[key].append(order)
    made = 0
    for bundle in bundles.values():
        try:
            services.create_draft(bundle, actor=request.user)  # type: ignore[arg-type]
            made += 1
        except Refused as error:
            messages.error(request, str(error))
    if made:
        messages.success(request, f"{made} brouillon(s) de facture préparé(s) : vérifiez-les, puis émettez-les.")
    return redirect("invoices:list")


@invoice_page
@require_POST
def issue_selected(request: HttpRequest) -> HttpResponse:
    ids = [int(value) for value in request.POST.getlist("invoice") if value.isdigit()]
    drafts = list(
        Invoice.objects.filter(pk__in=ids, state=InvoiceState.DRAFT).order_by("pk").values_list("pk", flat=True)
    )
    if not drafts:
        messages.error(request, "Cochez au moins un brouillon à émettre.")
        return redirect("invoices:list")
    batch = IssueBatch.objects.create(invoice_ids=drafts, created_by=request.user)
    transaction.on_commit(lambda: _start(batch.pk))
    return redirect("invoices:batch", batch_pk=batch.pk)


def _start(batch_id: int) -> None:
    """The batch goes to a worker; should the broker be unreachable, this request issues it itself
    (slower, but nothing waits for a task that was never queued)."""
    try:
        tasks.issue_batch.delay(batch_id)
    except Exception:
        logger.warning("Broker unreachable: batch %s issued in the request", batch_id, exc_info=True)
        tasks.run_batch(batch_id)


@invoice_page
@require_GET
def batch_progress(request: HttpRequest, batch_pk: int) -> HttpResponse:
    batch = get_object_or_404(IssueBatch, pk=batch_pk)
    invoices = Invoice.objects.filter(pk__in=batch.invoice_ids).order_by("number", "pk")
    failures = dict(batch.failures)
    context = {"batch": batch, "invoices": invoices, "failures": failures}
    template = "invoices/batch.html#progress" if request.headers.get("HX-Request") else "invoices/batch.html"
    return render(request, template, context)


@invoice_page
@require_GET
def overview_panel(request: HttpRequest) -> HttpResponse:
    """The invoices' card of the supervisors' overview (see invoices.templatetags)."""
    return render(request, "invoices/_overview_panel.html", payments.overview_figures())


@invoice_page
@require_GET
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _invoice(pk)
    context = {
        "invoice": invoice,
        "lines": invoice.lines.all(),
        "missing": services.check(invoice) if not invoice.is_issued else [],
        "credit_notes": invoice.credit_notes.all(),
        "situation": payments.situation(invoice) if invoice.is_issued and not invoice.is_credit_note else None,
        "payments": invoice.payments.all(),
        "receipt": getattr(invoice, "receipt", None),
        "today": timezone.localdate(),
    }
    return render(request, "invoices/detail.html", context)


def _on_screen(css: str) -> str:
    """The print stylesheet for a screen: without what only paged media use (the
    @page rules with their margin boxes, string-set), which a browser ignores and
    the HTML checker refuses."""
    css = re.sub(r"\s*string-set:[^;}]*;?", "", css)
    kept, position = [], 0
    while (start := css.find("@page", position)) != -1:
        kept.append(css[position:start])
        depth, position = 0, css.index("{", start)
        while position < len(css):
            depth += {"{": 1, "}": -1}.get(css[position], 0)
            position += 1
            if depth == 0:
                break
    kept.append(css[position:])
    return "".join(kept)


@invoice_page
@require_GET
def invoice_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The invoice as its PDF will show it (HTML), a draft's with today's data."""
    from invoices import pdf  # WeasyPrint is slow to import: only here

    invoice = _invoice(pk)
    if not invoice.is_issued and invoice.kind == Kind.INVOICE:
        with transaction.atomic():
            orders = list(invoice.orders.order_by("pk"))
            services._copy_order_lines(invoice, orders)
            services._refresh(invoice, orders)
            html = pdf.html(invoice, list(invoice.lines.all()), credited=invoice.credited)
            transaction.set_rollback(True)
    else:
        html = pdf.html(invoice, list(invoice.lines.all()), credited=invoice.credited)
    # On screen, the print stylesheet inline, with the nonce the page's CSP names
    # (no other inline style is allowed).
    nonce = str(get_nonce(request))  # generated here, so the policy names it
    rules = _on_screen("".join(path.read_text() for path in pdf.STYLESHEETS))
    style = f'<style nonce="{nonce}">{rules} body {{ max-width: 190mm; margin: 8mm auto; }}</style>'
    return HttpResponse(html.replace("</head>", f"{style}</head>", 1))


@invoice_page
@require_POST
def invoice_issue(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _invoice(pk)
    try:
        issued = services.issue(invoice, actor=request.user)  # type: ignore[arg-type]
    except Refused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{issued} émise : les commandes sont « Facturé ».")
    return redirect("invoices:detail", pk=pk)


@invoice_page
@require_POST
def invoice_discard(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.discard_draft(_invoice(pk), actor=request.user)  # type: ignore[arg-type]
    except Refused as error:
        messages.error(request, str(error))
        return redirect("invoices:detail", pk=pk)
    messages.success(request, "Brouillon supprimé.")
    return redirect("invoices:list")


@invoice_page
@require_GET
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _invoice(pk)
    if not invoice.is_issued or not invoice.pdf_file:
        raise Http404
    name = f"{invoice.get_kind_display()}-{invoice.number}.pdf"
    return FileResponse(invoice.pdf_file.open("rb"), as_attachment=True, filename=name, content_type="application/pdf")


def _quantities(request: HttpRequest, invoice: Invoice) -> dict[int, Decimal]:
    quantities: dict[int, Decimal] = {}
    for line in invoice.lines.all():
        raw = request.POST.get(f"line-{line.pk}", "").replace(",", ".").strip()
        if not raw:
            continue
        try:
            quantities[line.pk] = Decimal(raw)
        except InvalidOperation:
            raise Refused(f"Quantité à créditer de « {line.label} » : saisissez un nombre.") from None
    return quantities


@invoice_page
@require_POST
def credit_note(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = _invoice(pk)
    try:
        whole = request.POST.get("scope") != "partial"
        note = services.create_credit_note(
            invoice,
            actor=request.user,  # type: ignore[arg-type]
            reason=request.POST.get("reason", ""),
            quantities=None if whole else _quantities(request, invoice),
        )
    except Refused as error:
        messages.error(request, str(error))
        return redirect("invoices:detail", pk=pk)
    messages.success(request, "Brouillon d'avoir préparé : vérifiez-le, puis émettez-le.")
    return redirect("invoices:detail", pk=note.pk)


@invoice_page
@require_POST
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        received_on = _date(request.POST.get("received_on"), "Date de réception")
        payments.record_receipt(
            _invoice(pk),
            received_on=received_on,
            actor=request.user,
            source=request.POST.get("source") or "saisie",  # type: ignore[arg-type]
        )
    except Refused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Date de réception enregistrée.")
    return redirect("invoices:detail", pk=pk)


@invoice_page
@require_POST
def payment(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        paid_on = _date(request.POST.get("paid_on"), "Date du paiement")
        amount = payments.parse_amount(request.POST.get("amount", ""))
        payments.record_payment(_invoice(pk), paid_on=paid_on, amount=amount, actor=request.user)  # type: ignore[arg-type]
    except Refused as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Paiement enregistré.")
    return redirect("invoices:detail", pk=pk)


@invoice_page
@require_GET
def claim_letter(request: HttpRequest, pk: int) -> HttpResponse:
    from invoices import claims

    invoice = _invoice(pk)
    situation = payments.situation(invoice) if invoice.is_issued and not invoice.is_credit_note else None
    if situation is None or situation.owed <= 0:
        messages.error(request, "Aucun intérêt moratoire n'est dû sur cette facture.")
        return redirect("invoices:detail", pk=pk)
    content = claims.render(invoice, situation)
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="reclamation-{invoice.number}.pdf"'
    return response


@invoice_page
@require_GET
def export(request: HttpRequest) -> HttpResponse:
    try:
        year = int(request.GET.get("year", ""))
        month = int(request.GET.get("month", ""))
        if not (2000 <= year <= 2100 and 1 <= month <= 12):
            raise ValueError
    except ValueError:
        messages.error(request, "Choisissez un mois valide (année et mois).")
        return redirect("invoices:list")
    stem = f"factures-{year}-{month:02d}"
    if request.GET.get("format") == "zip":
        buffer = io.BytesIO()
        exports.write_zip(buffer, year, month)
        buffer.seek(0)
        return FileResponse(buffer, as_attachment=True, filename=f"{stem}.zip", content_type="application/zip")
    response = HttpResponse(exports.csv_bytes(exports.of_month(year, month)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    return response
