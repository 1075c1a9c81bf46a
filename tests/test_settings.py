"""The settings: production variables pass Django's deployment checks, a
production without a secret key refuses to start, and every page carries a
strict Content-Security-Policy."""

from __future__ import annotations

import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_SECRET_KEY = "s9Vq2!hX7mKp4rTz8wLc1nBf6dYg3jRa0eUk5oPi-N_QxHvJtM"


def production_environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """What a production server sets, with the database and files in tmp_path.
    Only the portal's own variables are replaced; PATH and friends are kept."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"REDIS_URL", "S3_BUCKET", "BEHIND_PROXY", "SECURE_SSL_REDIRECT", "SANDBOX_ENABLED"}
        and not name.startswith(("EMAIL_", "SECURE_HSTS_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="0",
        SECRET_KEY=PRODUCTION_SECRET_KEY,
        ALLOWED_HOSTS="portal.example.fr",
        CSRF_TRUSTED_ORIGINS="https://portal.example.fr",
        SITE_URL="https://portal.example.fr",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        VAR_DIR=str(tmp_path / "var"),
        EMAIL_HOST="smtp.example.fr",
        EMAIL_HOST_USER="portail@example.fr",
        EMAIL_HOST_PASSWORD="secret",
        DEFAULT_FROM_EMAIL="Portail prestataire <portail@example.fr>",
    )
    environment.update(overrides)
    return environment


def run_python(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deployment_checks_pass_with_production_variables(tmp_path):
    result = run_python(production_environment(tmp_path), "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_deployment_checks_refuse_a_production_that_prints_emails_to_the_console(tmp_path):
    environment = production_environment(tmp_path)
    del environment["EMAIL_HOST"]

    result = run_python(environment, "manage.py", "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    assert "mail.E001" in result.stderr


def test_settings_refuse_to_load_without_a_secret_key_when_debug_is_off(tmp_path):
    environment = production_environment(tmp_path)
    del environment["SECRET_KEY"]

    result = run_python(environment, "-c", "import portal.settings")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG is off." in result.stderr


def content_security_policy(response) -> dict[str, list[str]]:
    directives = {}
    for directive in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    return directives


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, db):
    response = client.get("/connexion/")

    assert response.status_code == HTTPStatus.OK
    policy = content_security_policy(response)
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_login_page_speaks_french(client, db):
    response = client.get("/connexion/")

    assert response.status_code == HTTPStatus.OK
    assert response.headers["Content-Language"] == "fr"
    content = response.content.decode()
    assert '<html lang="fr">' in content
    assert "Connexion" in content
    assert "Mot de passe" in content


def test_pages_are_sent_compressed_to_browsers_that_accept_it(client, technician, db):
    import gzip

    client.force_login(technician)
    plain = client.get("/mes-commandes/")
    packed = client.get("/mes-commandes/", headers={"accept-encoding": "gzip"})
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert "Mes commandes" in gzip.decompress(packed.content).decode()
    # Django pads each gzip body with up to 100 random bytes (its BREACH
    # mitigation), so the ratio is compared with room for that padding.
    assert len(packed.content) - 100 < len(plain.content) / 2
