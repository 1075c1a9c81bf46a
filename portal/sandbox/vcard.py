"""vCard 3.0 texts as Intent carries contacts: build one, and read one back for
display. Pure functions, no Django; only the few properties Intent uses
(FN, N, TEL;TYPE=..., EMAIL, ROLE)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

PHONE_LABELS = {"CELL": "mobile", "HOME": "domicile", "WORK": "travail", "FAX": "fax"}


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda match: "\n" if match.group(1) in "nN" else match.group(1), value)


def compact_phone(number: str) -> str:
    """'06 12 34 56 78' → '0612345678', as the platform's examples write them."""
    return re.sub(r"[^0-9+]", "", number)


def build_vcard(
    *,
    first_name: str = "",
    last_name: str = "",
    title: str = "",
    role: str = "",
    phones: Sequence[tuple[str, str]] = (),
    email: str = "",
) -> str:
    """phones: (TYPE parameter, number) pairs, e.g. ("HOME,VOICE", "0387000000"), ("CELL", "0612345678")."""
    full_name = " ".join(part for part in (title, first_name, last_name) if part)
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"FN:{_escape(full_name)}",
        f"N:{_escape(last_name)};{_escape(first_name)};;;",
    ]
    lines += [f"TEL;TYPE={kind}:{compact_phone(number)}" for kind, number in phones if number]
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{_escape(email)}")
    if role:
        lines.append(f"ROLE:{_escape(role)}")
    lines.append("END:VCARD")
    return "\r\n".join(lines)


@dataclass
class Contact:
    name: str = ""
    role: str = ""
    phones: list[tuple[str, str]] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    raw: str = ""


def read_vcard(text: str) -> Contact:
    """Tolerant: a malformed card gives what could be read, never an error."""
    contact = Contact(raw=text)
    # Unfold continuation lines (RFC 2425: a line starting with a space or tab).
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    for line in re.split(r"\r?\n", unfolded):
        if ":" not in line:
            continue
        head, value = line.split(":", 1)
        name, *params = head.split(";")
        name = name.upper()
        value = _unescape(value.strip())
        if name == "FN":
            contact.name = value
        elif name == "N" and not contact.name:
            last, first, *_ = [*value.split(";"), "", ""]
            contact.name = " ".join(part for part in (first, last) if part)
        elif name == "ROLE":
            contact.role = value
        elif name == "TEL":
            types = ",".join(param.split("=", 1)[-1] for param in params).upper().split(",")
            label = next((PHONE_LABELS[kind] for kind in types if kind in PHONE_LABELS), "téléphone")
            contact.phones.append((label, value))
        elif name == "EMAIL":
            contact.emails.append(value)
    return contact
