"""Reading back what the platform already has, for a message whose earlier
send may have reached it (a timeout, a gateway's 502/504, a worker killed
mid-send): the platform has no idempotency key, so before sending such a
message again the relay looks for it. Also what a document message uploads."""

from __future__ import annotations

import hashlib
from datetime import datetime

from portal.relay import intent, mapping
from portal.relay.models import MessageKind, OutboxMessage


def already_on_platform(client: intent.IntentClient, message: OutboxMessage) -> bool:
    """Whether the platform already holds the log `message` carries (an
    intervention's or a quote's)."""
    payload = message.payload
    read = client.get_quotation if message.kind == MessageKind.QUOTATION_LOG else client.get_operation
    try:
        operation = read(payload["reference"], payload["contractReference"])
    except intent.NotFound:
        return False
    return any(mapping.same_log(payload, log) for log in operation.get("logs") or [])


# The multipart fields of a document message (the rest of its payload says which file).
DOCUMENT_FIELDS = (
    "title",
    "description",
    "elementType",
    "elementReference",
    "intent_contractReference",
    "intent_documentType",
    "intent_documentFamily",
    "intent_creationDate",
)


def document_fields(payload: dict) -> dict[str, str]:
    return {name: str(payload[name]) for name in DOCUMENT_FIELDS if payload.get(name) is not None}


def document_file(message: OutboxMessage) -> tuple[str, bytes, str]:
    """(file name, bytes, MIME type) of a document message, read from the storage
    (the file the app named in `message.document` when it recorded the message)."""
    meta = message.payload.get("document") or {}
    if not message.document:
        raise intent.Rejection("Le document à transmettre n'existe plus.")
    try:
        with message.document.open("rb") as stream:
            content = stream.read()
    except FileNotFoundError as error:
        raise intent.Rejection(
            f"Le fichier du document est introuvable dans le stockage : {message.document.name}"
        ) from error
    except OSError as error:  # the storage (a network file system, object storage) did not answer
        raise intent.TransientError(f"Lecture du document impossible : {error!r}") from error
    if hashlib.sha256(content).hexdigest() != meta.get("sha256"):
        raise intent.Rejection("Le fichier du document a changé depuis son ajout : il n'est pas transmis.")
    return (
        meta.get("fileName") or (message.document.name or "document.pdf").rsplit("/", 1)[-1],
        content,
        meta.get("mime") or "application/pdf",
    )


# What identifies a document sent, and where a listing may show each of those
# fields: under the platform's own names or under the multipart field names it
# was sent with (`intent_creationDate`...); both shapes exist.
LISTED_AS = {
    "elementType": ("elementType", "intent_elementType"),
    "elementReference": ("elementReference", "intent_elementReference"),
    "intent_contractReference": ("contractReference", "intent_contractReference"),
    "intent_documentType": ("documentType", "intent_documentType"),
    "intent_documentFamily": ("documentFamily", "intent_documentFamily"),
}
CREATION_DATE_AS = ("creationDate", "intent_creationDate")


def _listed(found: dict, names: tuple[str, ...]) -> object:
    """The first of `names` the listing gives a value for, else None."""
    return next((found[name] for name in names if found.get(name) not in (None, "")), None)


def same_document(sent: dict, found: dict) -> bool:
    """Whether a document listed by the platform is the one we sent (after an
    ambiguous failure), whichever names the listing uses: same title and creation
    date; same element, contract, type and family when listed; same size and
    SHA-256 when listed."""
    if sent.get("title") != found.get("title"):
        return False
    for name, listed_as in LISTED_AS.items():
        listed = _listed(found, listed_as)
        if listed is not None and sent.get(name) is not None and str(listed) != str(sent[name]):
            return False
    meta = sent.get("document") or {}
    for name in ("size", "sha256"):
        listed, known = found.get(name), meta.get(name)
        if listed not in (None, "") and known not in (None, "") and str(listed).lower() != str(known).lower():
            return False
    try:
        return datetime.fromisoformat(str(sent["intent_creationDate"])) == datetime.fromisoformat(
            str(_listed(found, CREATION_DATE_AS))
        )
    except (KeyError, ValueError, TypeError):
        return False


def document_already_on_platform(client: intent.IntentClient, message: OutboxMessage) -> bool:
    payload = message.payload
    try:
        listing = client.list_documents(payload["elementType"], payload["elementReference"])
    except intent.NotFound:
        return False
    if isinstance(listing, dict):
        listing = (listing.get("_embedded") or {}).get("documents") or []
    return any(isinstance(found, dict) and same_document(payload, found) for found in listing or [])
