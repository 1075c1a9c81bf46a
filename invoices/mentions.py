"""What an invoice to a public buyer must say (CCAP §10.3, seed 004; Code de
commerce art. L441-9 and R123-237 for the legal mentions), checked before
issue: a missing mention is refused with a French message naming it, never an
invoice without it. Pure: it reads the facts `services` gathered."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class LineFacts:
    label: str
    quantity: Decimal
    unit_price: Decimal
    order_reference: str = ""


@dataclass(frozen=True)
class Facts:
    seller_name: str = ""
    seller_address: str = ""
    seller_siret: str = ""
    seller_vat_number: str = ""
    seller_legal_form: str = ""
    seller_capital: Decimal | None = None
    seller_registration: str = ""
    seller_iban: str = ""
    seller_bic: str = ""
    buyer_name: str = ""
    buyer_address: str = ""
    buyer_siret: str = ""
    public_buyer: bool = True
    service_code: str = ""
    commitment_number: str = ""
    order_numbers: tuple[str, ...] = ()
    execution_date: date | None = None
    lines: tuple[LineFacts, ...] = field(default_factory=tuple)
    credit_note: bool = False


# (mention, its French message when missing), in the order of §10.3.
MESSAGES = {
    "seller_name": "2° la raison sociale de l'entreprise (émetteur) manque : complétez la fiche de l'entreprise.",
    "seller_address": "2° l'adresse de l'entreprise (émetteur) manque : complétez la fiche de l'entreprise.",
    "buyer_name": "2° la désignation de l'organisme débiteur (destinataire) manque : "
    "complétez le compte de facturation.",
    "buyer_address": "2° l'adresse du destinataire manque : complétez l'adresse du compte de facturation.",
    "order_numbers": "4° le numéro du bon de commande manque : la facture doit porter au moins une commande.",
    "commitment_number": "Le numéro d'engagement (EJ) manque : saisissez-le dans la facturation du marché.",
    "service_code": "5° le code du service en charge du paiement (code service) manque : "
    "complétez le compte de facturation.",
    "execution_date": "6° la date d'exécution des prestations manque : une commande n'a pas de date de fin réelle.",
    "lines": "7° la facture n'a aucune ligne réalisée à facturer (quantité et désignation des prestations).",
    "seller_siret": "Le numéro SIRET de l'émetteur manque : complétez la fiche de l'entreprise.",
    "seller_vat_number": "Le numéro de TVA intracommunautaire de l'émetteur manque : "
    "complétez la fiche de l'entreprise.",
    "buyer_siret": "Le numéro SIRET du destinataire manque : complétez le compte de facturation ou le client.",
    "seller_legal_form": "La forme juridique de l'entreprise manque : complétez ses mentions de facturation.",
    "seller_capital": "Le capital social de l'entreprise manque : complétez ses mentions de facturation.",
    "seller_registration": "L'immatriculation RCS ou RM de l'entreprise manque : "
    "complétez ses mentions de facturation.",
    "seller_iban": "Le numéro du compte bancaire (IBAN) manque : "
    "complétez les mentions de facturation de l'entreprise.",
    "seller_bic": "Le BIC de la banque manque : complétez les mentions de facturation de l'entreprise.",
}


def missing(facts: Facts) -> list[str]:
    """The French messages of every mention `facts` lack (empty when complete)."""
    found: list[str] = []
    for name, message in MESSAGES.items():
        if name in ("commitment_number", "service_code") and not facts.public_buyer:
            continue
        if name == "execution_date" and facts.credit_note:
            continue
        value = getattr(facts, name)
        if value is None or value == "" or value == ():
            found.append(message)
    for line in facts.lines:
        where = f" (ligne « {line.label} »" + (f", commande {line.order_reference})" if line.order_reference else ")")
        if not line.label.strip():
            found.append(f"7° la désignation d'une ligne manque{where}.")
        if line.quantity <= 0:
            found.append(f"7° la quantité doit être positive{where}.")
        if line.unit_price <= 0:
            found.append(f"8° le prix unitaire hors taxes manque{where}.")
    return found
