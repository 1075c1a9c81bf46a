"""vCard 3.0, the way the platform carries people (contacts of an operation,
the pilot of a log): the few fields the portal reads and writes. Pure functions."""

from __future__ import annotations


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


def phone(number: str) -> str:
    return "".join(char for char in number if char.isdigit() or char == "+")


def write(*, first_name: str, last_name: str, mobile: str = "", email: str = "", role: str = "") -> str:
    """A vCard with FN, N, a mobile (TEL;TYPE=CELL), an email and a ROLE."""
    first, last = escape(first_name.strip()), escape(last_name.strip())
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"FN:{' '.join(part for part in (first, last) if part)}",
        f"N:{last};{first};;;",
    ]
    if mobile:
        lines.append(f"TEL;TYPE=CELL:{phone(mobile)}")
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{email}")
    if role:
        lines.append(f"ROLE:{escape(role)}")
    lines.append("END:VCARD")
    return "\r\n".join(lines)


def read(text: str) -> dict[str, str]:
    """The fields the portal uses: name, phone, mobile, email, role."""
    card: dict[str, str] = {}
    for raw_line in str(text).replace("\r\n ", "").splitlines():
        if ":" not in raw_line:
            continue
        key, value = raw_line.split(":", 1)
        name, *params = key.upper().split(";")
        value = value.replace("\\,", ",").replace("\\;", ";").strip()
        if name == "FN":
            card["name"] = value
        elif name == "TEL":
            types = ",".join(params)
            field = "mobile" if "CELL" in types else "phone"
            card.setdefault(field, value)
        elif name == "EMAIL":
            card.setdefault("email", value)
        elif name == "ROLE":
            card["role"] = value
    return card
