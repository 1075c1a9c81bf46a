"""The only code that changes quotes: create, send, revise, cancel. Editing a
draft (its details, lines and parts) is in `quotes.drafts`, the platform's
answer and the expiry in `quotes.decisions`, the PDF in `quotes.documents`.

Each function runs in one transaction, changes the state with a guarded update
(of two concurrent requests exactly one wins), appends a `QuoteEvent` with a
French label, and hands what the platform must know to `quotes.sharing`, which
records it in the relay's outbox inside the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders import materials
from orders.deadlines import local_date
from orders.models import InterventionReport, Order
from portal.models import Asset, Contract, ServiceCode, User
from quotes import deadlines, decisions, documents, pricing, sharing, supplies, tasks
from quotes.drafts import add_line, check_belongs, lock_draft, refresh_totals, verbose_name
from quotes.events import QuoteRefused, guarded, record_event
from quotes.models import (
    DEFAULT_VALIDITY_DAYS,
    PdfStatus,
    Quote,
    QuoteEvent,
    QuoteLine,
    QuoteNumber,
    QuotePart,
    QuoteState,
    QuoteTerms,
)

NUMBER_PREFIX = "D"


def quote_number(year: int, rank: int) -> str:
    """D2026-0042."""
    return f"{NUMBER_PREFIX}{year}-{rank:04d}"


def allocate_number(year: int) -> int:
    """The next rank of `year`, under the counter's row lock: call it inside the
    transaction that creates the quote (a rollback gives the number back)."""
    QuoteNumber.objects.bulk_create([QuoteNumber(year=year)], ignore_conflicts=True)
    counter = QuoteNumber.objects.select_for_update().get(year=year)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last


def validity_days(contract: Contract) -> int:
    terms = QuoteTerms.objects.filter(contract=contract).first()
    return terms.validity_days if terms is not None else DEFAULT_VALIDITY_DAYS


# --- Creating -----------------------------------------------------------------


@transaction.atomic
def create_quote(
    *,
    contract: Contract,
    actor: User | None,
    title: str,
    works: str = "",
    asset: Asset | None = None,
    service_code: ServiceCode | None = None,
    order: Order | None = None,
    report: InterventionReport | None = None,
    works_wait: bool = False,
    at: datetime | None = None,
) -> Quote:
    """A blank draft with the year's next number."""
    title = " ".join(title.split())
    if not title:
        raise QuoteRefused("Donnez un objet au devis.")
    if order is not None and order.contract_id != contract.pk:
        raise QuoteRefused("La commande parente n'est pas de ce marché.")
    if order is not None and not order.is_open:
        raise QuoteRefused(
            f"La commande {order.reference} est « {order.state_label} » : "
            "elle ne prend plus de travaux complémentaires."
        )
    check_belongs(contract, asset, service_code)
    at = at or timezone.now()
    year = local_date(at).year
    rank = allocate_number(year)
    quote = Quote.objects.create(
        number=quote_number(year, rank),
        year=year,
        rank=rank,
        contract=contract,
        asset=asset,
        service_code=service_code,
        order=order,
        report=report,
        title=title[:200],
        works=works.strip(),
        works_wait=works_wait and order is not None,
        valid_until=deadlines.valid_until(local_date(at), validity_days(contract)),
        created_by=actor if actor is not None and actor.pk else None,
        created_at=at,
    )
    origin = ""
    if report is not None:
        origin = f" à partir du rapport du {timezone.localtime(report.created_at):%d/%m/%Y}"
    elif order is not None:
        origin = f" pour la commande {order.reference}"
    record_event(quote, kind="created", label=f"Devis {quote.number} créé{origin}", actor=actor, at=at)
    return quote


def create_quote_for_order(order: Order, *, actor: User | None) -> Quote:
    """A supplementary-works quote (CCAG-MI §53) for `order`."""
    return create_quote(
        contract=order.contract,
        actor=actor,
        title=f"Travaux complémentaires – commande {order.reference}",
        works=order.description,
        asset=order.asset,
        service_code=order.service_code,
        order=order,
    )


@transaction.atomic
def create_quote_from_report(report: InterventionReport, *, actor: User | None) -> Quote:
    """The quote a technician asked for in a report: its text becomes the works."""
    report = InterventionReport.objects.select_for_update().select_related("order__contract").get(pk=report.pk)
    if not report.quote_needed:
        raise QuoteRefused("Ce rapport ne demande pas de devis.")
    existing = Quote.objects.filter(report=report).exclude(state=QuoteState.CANCELLED).first()
    if existing is not None:
        raise QuoteRefused(f"Le devis {existing.number} a déjà été commencé pour ce rapport.")
    order = report.order
    first_line = report.quote_description.strip().splitlines()[0] if report.quote_description.strip() else ""
    return create_quote(
        contract=order.contract,
        actor=actor,
        title=(first_line or f"Travaux complémentaires – commande {order.reference}")[:200],
        works=report.quote_description,
        asset=order.asset,
        service_code=order.service_code,
        order=order,
        report=report,
        works_wait=order.state in ("planned", "in_progress"),
    )


@transaction.atomic
def quote_materials(order: Order, *, actor: User | None) -> Quote:
    """The supplies the order's reports recorded and nobody took up yet
    (orders.materials), as a supplementary-works quote of the order (CCAG-MI
    §53), one line each at the price schedule's price: a new draft, for the
    supervisor to check and send. They are then no longer to take up."""
    supplies = list(materials.pending(order).select_for_update(of=("self",)))
    if not supplies:
        raise QuoteRefused("Aucune fourniture des rapports n'est à reprendre.")
    days = sorted({timezone.localtime(supply.report.created_at).strftime("%d/%m/%Y") for supply in supplies})
    quote = create_quote(
        contract=order.contract,
        actor=actor,
        title=f"Fournitures posées – commande {order.reference}",
        works=f"Fournitures posées lors de l'intervention ({'rapports' if len(days) > 1 else 'rapport'} du "
        f"{', '.join(days)}).",
        asset=order.asset,
        service_code=order.service_code,
        order=order,
    )
    for supply in supplies:
        add_line(quote, actor=actor, price_item=supply.price_item, quantity=supply.quantity, material=supply)
    materials.mark_quoted(supplies)
    return quote


# --- Sending, revising, cancelling --------------------------------------------


def missing_for_platform(quote: Quote) -> list[str]:
    """What the client's platform would refuse the quotation log without."""
    if sharing.connection_for(quote) is None:
        return []
    order = quote.order
    missing = []
    if quote.asset_id is None and (order is None or order.asset_id is None):
        missing.append("l'élément de patrimoine")
    if quote.service_code_id is None and (order is None or order.service_code_id is None):
        missing.append("le code prestation")
    return missing


@transaction.atomic
def send_quote(quote: Quote, *, actor: User | None, at: datetime | None = None) -> QuoteEvent:
    """Send a draft: its totals are fixed, the buyer's 30 days (§52) start, the
    quotation log is recorded for the platform and the PDF is asked for (its
    document follows the log; see quotes.documents)."""
    locked = lock_draft(quote)
    if not QuoteLine.objects.filter(quote=locked).exists():
        raise QuoteRefused("Ajoutez au moins une ligne avant d'envoyer le devis.")
    if missing := missing_for_platform(locked):
        raise QuoteRefused(f"La plateforme du client refuse un devis sans {' ni '.join(missing)} : complétez le devis.")
    at = at or timezone.now()
    if deadlines.has_expired(locked.valid_until, at):
        raise QuoteRefused("La date de validité du devis est passée : changez-la avant d'envoyer.")
    totals = refresh_totals(locked)
    guarded(
        locked,
        (QuoteState.DRAFT,),
        state=QuoteState.SENT,
        sent_at=at,
        sent_by=actor if actor is not None and actor.pk else None,
        answer_due_on=deadlines.answer_deadline(at).last_day,
        pdf_status=PdfStatus.PENDING,
        pdf_requested_at=timezone.now(),
        pdf_error="",
    )
    if locked.previous_id is not None:
        superseded = Quote.objects.filter(
            pk=locked.previous_id, state__in=(QuoteState.SENT, QuoteState.REFUSED, QuoteState.EXPIRED)
        ).update(state=QuoteState.SUPERSEDED)
        if superseded:
            # The supplies whose lines this version left out come back.
            supplies.release(
                Quote.objects.get(pk=locked.previous_id),
                actor=actor,
                why=f"après l'envoi du devis {locked.display_number} sans elles",
            )
    locked.refresh_from_db()
    event = record_event(
        locked,
        kind="sent",
        label=f"Devis envoyé : {pricing.format_euros(totals.total_excl_vat)} HT, "
        f"{pricing.format_euros(totals.total_incl_vat)} TTC",
        actor=actor,
        at=at,
        data={"total_excl_vat": str(totals.total_excl_vat), "total_incl_vat": str(totals.total_incl_vat)},
    )
    sharing.share_sent(locked, totals)
    tasks.render_quote_pdf.delay_on_commit(locked.pk)
    return event


@transaction.atomic
def revise_quote(quote: Quote, *, actor: User | None) -> Quote:
    """A new draft version of a sent (or refused, or expired) quote, with its
    lines and parts; the old version is kept unchanged until the new one is
    sent, which supersedes it."""
    locked = Quote.objects.select_for_update().get(pk=quote.pk)
    if locked.state not in (QuoteState.SENT, QuoteState.REFUSED, QuoteState.EXPIRED):
        raise QuoteRefused(f"Un devis « {locked.get_state_display()} » ne se révise pas.")
    if Quote.objects.filter(previous=locked).exists():
        raise QuoteRefused(f"Une version plus récente du devis {locked.number} existe déjà.")
    now = timezone.now()
    version = locked.version + 1
    # Supplies given back after a refusal or an expiry go in again; lines of
    # those taken up meanwhile are left out (they would be billed twice).
    left_out = supplies.take_back(locked, actor=actor, why=f"dans le devis {locked.number} v{version}")
    revision = Quote.objects.create(
        number=locked.number,
        year=locked.year,
        rank=locked.rank,
        version=version,
        previous=locked,
        contract=locked.contract,
        asset=locked.asset,
        service_code=locked.service_code,
        order=locked.order,
        report=locked.report,
        title=locked.title,
        works=locked.works,
        works_wait=locked.works_wait,
        valid_until=max(locked.valid_until, deadlines.valid_until(local_date(now), validity_days(locked.contract))),
        created_by=actor if actor is not None and actor.pk else None,
        created_at=now,
    )
    QuoteLine.objects.bulk_create(
        QuoteLine(
            quote=revision,
            **{
                name: getattr(line, name)
                for name in (
                    "position",
                    "price_item",
                    "code",
                    "label",
                    "unit",
                    "quantity",
                    "unit_price",
                    "vat_rate",
                    "out_of_schedule",
                    "justification",
                    "material_id",
                )
            },
        )
        for line in locked.lines.all()
        if line.pk not in left_out
    )
    QuotePart.objects.bulk_create(
        QuotePart(
            quote=revision,
            supplied_by=part.supplied_by,
            position=part.position,
            description=part.description,
            quantity=part.quantity,
        )
        for part in locked.parts.all()
    )
    refresh_totals(revision)
    record_event(locked, kind="revised", label=f"Nouvelle version {revision.version} commencée", actor=actor)
    record_event(
        revision,
        kind="created",
        label=f"Version {revision.version} du devis {revision.number}, d'après la version {locked.version}",
        actor=actor,
    )
    for line in QuoteLine.objects.filter(pk__in=left_out):
        record_event(
            revision,
            kind="line_left_out",
            label=f"Ligne non reprise ({line.code}) : cette fourniture a été reprise entre-temps "
            "(ajoutée à la commande ou mise dans un autre devis)",
            actor=actor,
        )
    return revision


@transaction.atomic
def cancel_quote(quote: Quote, *, actor: User | None, reason: str) -> QuoteEvent:
    """Abandon a draft, or withdraw a sent quote (the platform is told, and a
    parent order held for it resumes)."""
    reason = " ".join(reason.split())
    if not reason:
        raise QuoteRefused("Donnez le motif de l'annulation.")
    locked = Quote.objects.select_for_update().get(pk=quote.pk)
    was_sent = locked.state == QuoteState.SENT
    guarded(locked, (QuoteState.DRAFT, QuoteState.SENT), state=QuoteState.CANCELLED, cancel_reason=reason)
    locked.refresh_from_db()
    event = record_event(locked, kind="cancelled", label=f"Devis annulé : {reason}", actor=actor)
    if was_sent:
        sharing.share_withdrawn(locked, at=event.at)
        decisions.release_parent_order(locked, actor=actor)
    supplies.release(locked, actor=actor)
    return event


@transaction.atomic
def retry_pdf(quote: Quote, *, actor: User | None) -> bool:
    """Ask again for a PDF whose rendering failed or was lost."""
    if not documents.ask_pdf_again(quote):
        return False
    record_event(quote, kind="pdf_retry", label="Production du PDF relancée", actor=actor)
    tasks.render_quote_pdf.delay_on_commit(quote.pk)
    return True


@transaction.atomic
def correct_references(
    quote: Quote, *, actor: User | None, asset: Asset | None, service_code: ServiceCode | None
) -> QuoteEvent | None:
    """Correct what the platform files the quote under (its asset, its service
    code), even once sent: the contract's *reprise sur erreur* after the platform
    refused the quotation log; a person then resends it from the error queue
    (rebuilt from the quote as corrected). The quote's content never changes."""
    locked = Quote.objects.select_for_update().select_related("contract").get(pk=quote.pk)
    if locked.state in (QuoteState.CANCELLED, QuoteState.SUPERSEDED):
        raise QuoteRefused(f"Le devis est « {locked.get_state_display()} » : il ne se corrige plus.")
    check_belongs(locked.contract, asset, service_code)
    changes = {
        name: value
        for name, value in (("asset", asset), ("service_code", service_code))
        if value is not None and getattr(locked, f"{name}_id") != value.pk
    }
    if not changes:
        return None
    Quote.objects.filter(pk=locked.pk).update(**changes)
    quote.refresh_from_db()
    names = ", ".join(verbose_name(Quote, name) for name in changes)
    return record_event(quote, kind="corrected", label=f"Devis corrigé pour la plateforme : {names}", actor=actor)
