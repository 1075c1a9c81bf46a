"""Safe defaults: DEBUG is off unless set (so a production without a secret
key refuses to start), a yes/no variable with a value it does not know stops
the settings, the trusted proxies are checked, no "No hostname" warning from
the broker, and development emails are one line each."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives

from portal import settings as portal_settings
from portal.mail import EmailBackend

BASE_DIR = Path(__file__).resolve().parent.parent
# Variables these tests set themselves; every other one (PATH, DATABASE_URL...) is kept.
OWN_VARIABLES = {"DEBUG", "SECRET_KEY", "BEHIND_PROXY", "TRUSTED_PROXIES", "EMAIL_HOST", "REDIS_URL", "VAR_DIR"}


def load_settings(tmp_path: Path, *names: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Imports the settings in a fresh Python with `variables`; prints `names` as JSON."""
    environment = {name: value for name, value in os.environ.items() if name not in OWN_VARIABLES}
    environment.update(VAR_DIR=str(tmp_path / "var"), **variables)
    script = "import json, sys, portal.settings as s; print(json.dumps({n: getattr(s, n) for n in sys.argv[1:]}))"
    return subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def loaded(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- DEBUG ------------------------------------------------------------------------------------


def test_debug_is_off_unless_set(tmp_path):
    assert loaded(load_settings(tmp_path, "DEBUG", SECRET_KEY="x" * 50)) == {"DEBUG": False}
    assert loaded(load_settings(tmp_path, "DEBUG", DEBUG="1")) == {"DEBUG": True}


def test_without_debug_nor_secret_key_the_settings_refuse_to_load(tmp_path):
    result = load_settings(tmp_path, "DEBUG")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr
    assert "set DEBUG=1" in result.stderr


def test_a_mistyped_debug_stops_the_settings_instead_of_meaning_off(tmp_path):
    result = load_settings(tmp_path, "DEBUG", DEBUG="ture", SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "ImproperlyConfigured: DEBUG='ture' is not a yes/no value" in result.stderr


@pytest.mark.parametrize(
    ("value", "meaning"),
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("ON", True),
        (" on ", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
        ("", None),
        ("   ", None),
    ],
)
def test_yes_no_variables_read_the_usual_words_and_empty_means_the_default(monkeypatch, value, meaning):
    monkeypatch.setenv("PORTAL_TEST_FLAG", value)
    for default in (True, False):
        expected = default if meaning is None else meaning
        assert portal_settings.env_bool("PORTAL_TEST_FLAG", default) is expected
    monkeypatch.delenv("PORTAL_TEST_FLAG")
    assert portal_settings.env_bool("PORTAL_TEST_FLAG", True) is True


@pytest.mark.parametrize("value", ["2", "oui", "enabled", "y", "truee", "-1"])
def test_a_yes_no_variable_refuses_a_value_it_does_not_know_naming_it(monkeypatch, value):
    monkeypatch.setenv("PORTAL_TEST_FLAG", value)
    with pytest.raises(ImproperlyConfigured, match=f"^PORTAL_TEST_FLAG={value!r} is not a yes/no value"):
        portal_settings.env_bool("PORTAL_TEST_FLAG")


# --- Trusted proxies -----------------------------------------------------------------------------


def test_behind_a_proxy_the_trusted_proxy_is_this_machine_unless_told(tmp_path):
    assert loaded(load_settings(tmp_path, "TRUSTED_PROXIES", DEBUG="1")) == {"TRUSTED_PROXIES": []}
    assert loaded(load_settings(tmp_path, "TRUSTED_PROXIES", DEBUG="1", BEHIND_PROXY="1")) == {
        "TRUSTED_PROXIES": ["127.0.0.1"]
    }
    result = load_settings(tmp_path, "TRUSTED_PROXIES", DEBUG="1", BEHIND_PROXY="1", TRUSTED_PROXIES="10.0.0.0/8, ::1")
    assert loaded(result) == {"TRUSTED_PROXIES": ["10.0.0.0/8", "::1"]}


def test_a_trusted_proxy_that_is_not_an_address_stops_the_settings(tmp_path):
    result = load_settings(tmp_path, "TRUSTED_PROXIES", DEBUG="1", BEHIND_PROXY="1", TRUSTED_PROXIES="10.0.0.1,proxy")

    assert result.returncode != 0
    assert "ImproperlyConfigured: TRUSTED_PROXIES: 'proxy' is not an IP address or network" in result.stderr


def test_trusted_proxies_without_behind_proxy_stop_the_settings(tmp_path):
    result = load_settings(tmp_path, "TRUSTED_PROXIES", DEBUG="1", TRUSTED_PROXIES="10.0.0.1")

    assert result.returncode != 0
    assert "TRUSTED_PROXIES is set but BEHIND_PROXY is off" in result.stderr


# --- The broker ----------------------------------------------------------------------------------


def test_the_file_system_broker_names_a_host_so_kombu_does_not_warn_at_each_connection(tmp_path, caplog):
    from kombu import Connection

    settings = loaded(load_settings(tmp_path, "CELERY_BROKER_URL", DEBUG="1"))
    with caplog.at_level(logging.WARNING, logger="kombu"):
        Connection(settings["CELERY_BROKER_URL"]).info()
    assert settings["CELERY_BROKER_URL"].startswith("filesystem://")
    assert "No hostname" not in caplog.text


# --- Development emails ----------------------------------------------------------------------------


def test_in_development_without_a_mail_server_emails_go_to_the_development_backend(tmp_path):
    development = loaded(load_settings(tmp_path, "MAILERS", DEBUG="1"))["MAILERS"]
    with_a_server = loaded(load_settings(tmp_path, "MAILERS", DEBUG="1", EMAIL_HOST="smtp.example.fr"))["MAILERS"]

    assert development == {
        "default": {"BACKEND": "portal.mail.EmailBackend", "OPTIONS": {"directory": str(tmp_path / "var" / "mail")}}
    }
    assert with_a_server["default"]["BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_the_development_backend_writes_each_email_whole_and_logs_one_line(tmp_path):
    text = "Bonjour,\n\nUne nouvelle commande est arrivée :\n- Commande FLG54_261204165039\n"
    messages = []
    for address in ("sophie@example.fr", "nadia@example.fr"):
        message = EmailMultiAlternatives("Nouvelle commande FLG54_261204165039 (Foncière)", text, to=[address])
        message.attach_alternative("<p>Bonjour,</p>", "text/html")
        messages.append(message)
    handler = Lines()
    logger = logging.getLogger("portal.mail")
    logger.addHandler(handler)
    try:
        sent = EmailBackend(directory=tmp_path / "mail").send_messages(messages)
    finally:
        logger.removeHandler(handler)

    assert sent == 2
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2
    saved = [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files]
    assert sorted(message["To"] for message in saved) == ["nadia@example.fr", "sophie@example.fr"]
    assert saved[0]["Subject"] == "Nouvelle commande FLG54_261204165039 (Foncière)"
    assert saved[0].get_body(("plain",)).get_content().replace("\r\n", "\n") == text
    assert len(handler.lines) == 2
    for line in handler.lines:
        assert "\n" not in line
        assert line.startswith("Email to ")
        assert ": Nouvelle commande FLG54_261204165039 (Foncière) (4 lines; " in line
    assert {line.rsplit("; ", 1)[1].rstrip(")") for line in handler.lines} == {str(path) for path in files}
