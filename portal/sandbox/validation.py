"""What the sandbox refuses in a log, as the platform would: the types and
lengths it always checks, and in strict mode the fields it requires."""

from __future__ import annotations

from portal.sandbox import services
from portal.sandbox.models import OperationStatus

STATUSES = set(OperationStatus.values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_log(payload: dict) -> list[str]:
    """The platform's rules as the sandbox applies them: required fields and types."""
    errors = []
    for name, max_length in (("reference", 100), ("contractReference", 100), ("status", 20), ("event", 100)):
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"{name} : chaîne non vide obligatoire.")
        elif len(value) > max_length:
            errors.append(f"{name} : {max_length} caractères au plus.")
    if isinstance(payload.get("status"), str) and payload["status"] and payload["status"] not in STATUSES:
        errors.append(f"status : valeur inconnue ({', '.join(sorted(STATUSES))} attendu).")
    for name in ("eventDate", "logDate"):
        if services.parse_datetime_with_offset(payload.get(name)) is None:
            errors.append(f"{name} : date ISO 8601 avec décalage horaire obligatoire (ex. 2026-11-22T09:30:00+01:00).")
    for name, max_length in (
        ("description", 10_000),
        ("serviceCode", 100),
        ("parentReference", 100),
        ("technicalReason", 10_000),
    ):
        if name in payload and not (isinstance(payload[name], str) and len(payload[name]) <= max_length):
            errors.append(f"{name} : chaîne de {max_length} caractères au plus attendue.")
    if "workType" in payload and payload["workType"] not in {"corrective", "preventive", ""}:
        errors.append("workType : corrective ou preventive.")
    if "criticalLevel" in payload and not (_is_int(payload["criticalLevel"]) and 0 <= payload["criticalLevel"] <= 4):
        errors.append("criticalLevel : entier de 0 à 4.")
    if "visitAttempt" in payload and not (_is_int(payload["visitAttempt"]) and 0 <= payload["visitAttempt"] < 10_000):
        errors.append("visitAttempt : entier positif.")
    if "contacts" in payload and not (
        isinstance(payload["contacts"], list) and all(isinstance(item, str) for item in payload["contacts"])
    ):
        errors.append("contacts : liste de vCard (chaînes).")
    if "tags" in payload and not (
        isinstance(payload["tags"], dict) and all(isinstance(value, str) for value in payload["tags"].values())
    ):
        errors.append("tags : objet de chaînes.")
    errors += _location_errors(payload.get("location"), "location" in payload)
    return errors


# What a strict platform refuses a log without (docs/platform.md: "always send").
REQUIRED_FIELDS = (
    "reference",
    "contractReference",
    "status",
    "event",
    "eventDate",
    "logDate",
    "serviceCode",
    "workType",
    "location.assetReference",
)


def missing_fields(payload: dict) -> list[str]:
    """The required fields (dotted for nested ones) absent, null or blank."""
    missing = []
    for name in REQUIRED_FIELDS:
        value: object = payload
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(name)
    return missing


def strict_refusal(payload: dict) -> list[str]:
    """In strict mode, every reason to refuse the log: "missing <field>" for each
    required field left out, then the other rules' errors on the fields present."""
    missing = missing_fields(payload)
    others = [message for message in validate_log(payload) if message.split(" : ", 1)[0] not in missing]
    return [f"missing {name}" for name in missing] + others


def _location_errors(location: object, present: bool) -> list[str]:
    if not present:
        return []
    if not isinstance(location, dict):
        return ["location : objet attendu."]
    errors = []
    if "assetReference" in location and not isinstance(location["assetReference"], str):
        errors.append("location.assetReference : chaîne attendue.")
    address = location.get("address")
    if "address" in location and not (
        isinstance(address, dict) and all(isinstance(value, str) for value in address.values())
    ):
        errors.append("location.address : objet de chaînes attendu (way, zip, city, country, complement).")
    return errors
