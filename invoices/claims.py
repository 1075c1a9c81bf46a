"""The claim letter for late-payment interest and the recovery indemnity
(*lettre de réclamation des intérêts moratoires*), as a plain PDF."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import timezone, translation
from weasyprint import HTML

from invoices import interest
from invoices.models import Invoice
from quotes import pricing


def render(invoice: Invoice, situation: interest.Situation) -> bytes:
    context = {
        "invoice": invoice,
        "seller": invoice.parties.get("seller", {}),
        "buyer": invoice.parties.get("buyer", {}),
        "situation": situation,
        "rows": [
            {
                "amount": pricing.format_euros(entry.amount),
                "start": entry.start,
                "end": entry.end,
                "days": entry.days,
                "rate": pricing.format_rate(entry.rate),
                "interest": pricing.format_euros(entry.interest),
                "paid": entry.paid,
            }
            for entry in situation.late
        ],
        "interest": pricing.format_euros(situation.interest),
        "indemnity": pricing.format_euros(situation.indemnity),
        "owed": pricing.format_euros(situation.owed),
        "today": timezone.localdate(),
    }
    with translation.override("fr"):
        html = render_to_string("pdf/invoice_claim.html", context)
    return HTML(string=html).write_pdf()
