"""What to correct, in French, for each reason a platform gives when it refuses
a message. Pure: no Django, no I/O.

A refusal's reasons are the platform's own words (`intent.read_refusal`):
"missing serviceCode", "location.assetReference : vide", a FastAPI `loc` path,
an RFC 7807 `invalid-params` name... `hint_for` recognises the field a reason
is about, among the fields of a log or a document (docs/platform.md), and
says in French what it is and where to correct it in the portal. A reason
about no field it knows gets no hint: the platform's words are shown alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Element(StrEnum):
    """What the refused message was about: where its fields are corrected."""

    ORDER = "order"
    QUOTE = "quote"
    DOCUMENT = "document"


@dataclass(frozen=True)
class Field:
    label: str  # the field as people know it in the portal
    feminine: bool  # « manquant » or « manquante »
    fix: str  # where to correct it, for an order's log (and any message without a better place)
    quote_fix: str = ""  # for a quote's log, when it is corrected somewhere else

    def where(self, element: Element) -> str:
        return self.quote_fix if element == Element.QUOTE and self.quote_fix else self.fix


CORRECT_ORDER = "sur la page de la commande, encadré « Corriger la commande »"
CORRECT_QUOTE = "dans l'éditeur du devis, encadré « Le devis »"
CONNECTION = "dans l'administration (Liaison plateformes › Connexions plateformes)"

ASSET = Field(
    "Référence du patrimoine",
    True,
    f"indiquez l'élément de patrimoine {CORRECT_ORDER} (Patrimoine) ; un élément que le portail ne connaît pas "
    "se crée dans l'administration (Patrimoine)",
    f"choisissez l'élément de patrimoine {CORRECT_QUOTE}",
)
SERVICE_CODE = Field(
    "Code prestation",
    False,
    f"choisissez-le {CORRECT_ORDER}",
    f"choisissez-le {CORRECT_QUOTE}",
)
CONTRACT = Field(
    "Référence du marché",
    True,
    "vérifiez le marché de la commande et sa référence dans l'administration (Marchés)",
)
REFERENCE = Field(
    "Référence de l'opération",
    True,
    "c'est la référence de la commande sur la plateforme : vérifiez-la dans l'administration (Commandes)",
    "c'est le numéro du devis : vérifiez que le devis a bien été envoyé",
)
STATE_FIX = (
    "il découle de l'action enregistrée sur la commande : vérifiez son état et sa chronologie, "
    "puis renvoyez ou abandonnez ce message"
)
DOCUMENT_TYPE_FIX = f"réglez-le {CONNECTION}"

# The fields of an Intent log and of a document (docs/platform.md), by their
# path as platforms spell it (see `normalised`), and the names other shapes
# give them (the webhook's `assetReference`, the document's `intent_` names).
FIELDS: dict[str, Field] = {
    "reference": REFERENCE,
    "elementreference": REFERENCE,
    "contractreference": CONTRACT,
    "status": Field("Statut", False, STATE_FIX),
    "event": Field("Événement", False, STATE_FIX),
    "eventdate": Field(
        "Date de l'événement",
        True,
        "c'est la date de l'action (rendez-vous, début ou fin des travaux) : corrigez-la sur la page de la "
        "commande (Rendez-vous et dates, ou l'action concernée)",
        "c'est la date d'envoi du devis : renvoyez le message",
    ),
    "logdate": Field("Date du journal", True, "le portail la pose à l'envoi : renvoyez le message"),
    "description": Field(
        "Libellé",
        False,
        "c'est le libellé de l'action, repris de la chronologie : renvoyez le message ou abandonnez-le",
        f"c'est l'objet du devis : corrigez-le {CORRECT_QUOTE}",
    ),
    "servicecode": SERVICE_CODE,
    "worktype": Field("Type de travaux", False, f"choisissez-le {CORRECT_ORDER}"),
    "criticallevel": Field("Criticité", True, f"choisissez-la {CORRECT_ORDER}"),
    "location": ASSET,
    "location.assetreference": ASSET,
    "assetreference": ASSET,
    "contacts": Field(
        "Contact du pilote",
        False,
        "choisissez un pilote sur la page de la commande (Affectation) et vérifiez son mobile dans "
        "l'administration (Utilisateurs)",
    ),
    "parentreference": Field(
        "Commande d'origine",
        True,
        "vérifiez la commande à laquelle le devis est rattaché",
    ),
    "technicalreason": Field(
        "Motif",
        False,
        "c'est le motif saisi avec l'action (annulation, suspension ou clôture) : renvoyez le message ou abandonnez-le",
    ),
    "documenttype": Field("Type de document", False, DOCUMENT_TYPE_FIX),
    "documentfamily": Field("Famille de document", True, DOCUMENT_TYPE_FIX),
    "elementtype": Field("Nature de l'élément", True, DOCUMENT_TYPE_FIX),
    "file": Field(
        "Fichier",
        False,
        "vérifiez le document (format PDF, taille) dans les documents de la commande, puis renvoyez le message",
    ),
}

# Words that say a field is absent (English and French, as platforms write them).
MISSING = re.compile(
    r"\b(missing|required|absent|manquante?s?|obligatoires?|requise?s?|vides?|non renseignée?s?|"
    r"not provided|not present|(must|may|can) ?not be (blank|empty|null)|cannot be (blank|empty|null)|"
    r"is (blank|empty|null))\b",
    re.IGNORECASE,
)
# "field : text", as `intent.read_refusal` writes a reason about a field.
FIELD_PREFIX = re.compile(r"^\s*([\w.\[\]/-]+)\s+:\s")
# A reason that is a field and a word saying it is missing, in either order.
BARE = re.compile(r"^\s*(?:(?:field|champ)\s+)?['\"`«]?\s*([\w.\[\]/-]+?)\s*['\"`»]?\s*$")
TOKEN = re.compile(r"['\"`«]?\s*([A-Za-z_][\w-]*(?:[./][\w-]+|\[\d+\])*)\s*['\"`»]?")


def normalised(path: str) -> str:
    """A field path as FIELDS spells it: lower case, dots between segments,
    no list index, no `_` or `-`, no `intent_` prefix, no leading `/` (JSON
    pointer) or `$.` (JSON path)."""
    path = re.sub(r"\[\d+\]", "", path.strip().removeprefix("$.").strip("/")).replace("/", ".")
    segments = [segment for segment in path.split(".") if segment and not segment.isdigit()]
    cleaned = [re.sub(r"[_-]", "", segment.lower()) for segment in segments]
    return ".".join(segment.removeprefix("intent") or segment for segment in cleaned)


def field_of(path: str) -> Field | None:
    """The field `path` names: itself, or its end when the platform wraps the
    log (`log.serviceCode`, `body.location.assetReference`)."""
    segments = normalised(path).split(".")
    for start in range(len(segments)):
        found = FIELDS.get(".".join(segments[start:]))
        if found is not None:
            return found
    return None


def _distinctive(token: str) -> bool:
    """A word that can only be a field's name: a path, camelCase, snake_case."""
    return "." in token or "/" in token or "_" in token or any(char.isupper() for char in token[1:])


def recognise(reason: str) -> Field | None:
    """The field `reason` is about, if it names one of FIELDS."""
    prefix = FIELD_PREFIX.match(reason)
    if prefix:
        return field_of(prefix.group(1))
    bare = BARE.match(MISSING.sub(" ", reason))
    if bare and MISSING.search(reason):  # "missing status", "event is required"
        return field_of(bare.group(1))
    for match in TOKEN.finditer(reason):  # "contractReference inconnu"
        quoted = match.group(0).strip()[:1] in "'\"`«"
        if quoted or _distinctive(match.group(1)):
            found = field_of(match.group(1))
            if found is not None:
                return found
    return None


def hint_for(reason: str, element: Element | str = Element.ORDER) -> str:
    """What to correct and where, in French, for one of the platform's reasons;
    "" when the reason names no field the portal knows."""
    field = recognise(reason)
    if field is None:
        return ""
    missing = "manquante" if field.feminine else "manquant"
    state = missing if MISSING.search(reason) else "à corriger"
    return f"{field.label} {state} : {field.where(Element(element))}"
