"""The Intent REST client: OAuth client credentials, logs, documents, operations,
contracts and assets. It knows nothing of orders: it sends and reads JSON.

Every failure is classified for the relay: `TransientError` (network, timeout,
5xx, 408, 429: try again later), its subclass `AmbiguousError` (the request may
have reached the platform: read back before sending again), or `Rejection`
(another 4xx: a person must correct the data; the platform's message is kept).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from django.db import transaction
from django.utils import timezone

from portal.relay import crypto
from portal.relay.models import Connection

TOKEN_MARGIN = timedelta(seconds=60)  # renew at most this long before the token expires
ACCEPT = "application/json+hal"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_PART_TYPE = "text/plain; charset=utf-8"  # a multipart text field


class PlatformError(Exception):
    def __init__(self, message: str, *, status_code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body


class TransientError(PlatformError):
    """Try again later."""


class AmbiguousError(TransientError):
    """The request left and no answer came back: the platform may have it."""


class Rejection(PlatformError):
    """The platform refused the data: a person must correct it."""


class NotFound(Rejection):
    pass


def _platform_message(response: httpx.Response) -> str:
    """The platform's own explanation, as readable as its body allows."""
    text = response.text[:2000]
    try:
        body = response.json()
    except ValueError:
        return text.strip() or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body.get(key)) for key in ("message", "error_description", "error", "detail") if body.get(key)]
        errors = body.get("errors")
        if errors:
            # Each error once, as text; not the message again.
            items = errors if isinstance(errors, list) else [errors]
            texts = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=False) for item in items]
            texts = [text for text in texts if text not in parts]
            if texts:
                parts.append("; ".join(texts)[:1000])
        if parts:
            return " – ".join(parts)
    return text.strip()


def classify(response: httpx.Response) -> None:
    """Raise the right error for a failed response; return for a success."""
    code = response.status_code
    if code < 400:
        return
    message = f"HTTP {code} : {_platform_message(response)}"
    if code >= 500 or code in (408, 429):
        raise TransientError(message, status_code=code, body=response.text[:2000])
    if code == 404:
        raise NotFound(message, status_code=code, body=response.text[:2000])
    raise Rejection(message, status_code=code, body=response.text[:2000])


def renewal_margin(lifetime: timedelta | None) -> timedelta:
    """How long before its expiry a token is renewed: a minute, or a third of
    its lifetime for a short-lived one (a 30 s token is used for 20 s). A
    token whose lifetime is unknown gets the full minute."""
    return TOKEN_MARGIN if lifetime is None else min(TOKEN_MARGIN, lifetime / 3)


@dataclass
class _Token:
    value: str
    expires_at: datetime
    lifetime: timedelta | None = None

    def fresh(self, now: datetime) -> bool:
        return self.expires_at - renewal_margin(self.lifetime) > now

    def encrypted(self) -> str:
        """As kept in the connection's row: the token with its lifetime, which
        the other workers need to know when to renew it."""
        seconds = self.lifetime.total_seconds() if self.lifetime is not None else None
        return crypto.encrypt(json.dumps({"token": self.value, "lifetime": seconds}))

    @classmethod
    def stored(cls, encrypted: str, expires_at: datetime | None) -> _Token | None:
        if not encrypted or expires_at is None:
            return None
        try:
            plain = crypto.decrypt(encrypted)
        except ValueError:  # the encryption key changed: a new token will do
            return None
        try:
            record = json.loads(plain)
        except ValueError:
            record = None
        if not (isinstance(record, dict) and isinstance(record.get("token"), str)):
            return cls(plain, expires_at)  # stored by an earlier version: the token alone
        lifetime = record.get("lifetime")
        return cls(record["token"], expires_at, timedelta(seconds=lifetime) if lifetime else None)


class IntentClient:
    """One client per connection; safe to share between threads of a worker."""

    def __init__(self, connection: Connection, *, http: httpx.Client | None = None) -> None:
        self.connection = connection
        self.timeout = httpx.Timeout(connection.timeout_seconds, connect=min(5.0, connection.timeout_seconds))
        self.http = http or httpx.Client(timeout=self.timeout, headers={"accept": ACCEPT})
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def close(self) -> None:
        self.http.close()

    # --- OAuth ---------------------------------------------------------------

    def _auth_url(self) -> str:
        return f"{self.connection.auth_base_url.rstrip('/')}/oauth/token"

    def _api_url(self, path: str) -> str:
        return f"{self.connection.api_base_url.rstrip('/')}/{path.lstrip('/')}"

    def token(self, *, rejected: str | None = None) -> str:
        """A valid bearer token: from memory, then from the database (shared by
        every worker), then from the platform. `rejected` is a token the
        platform answered 401 to: another one is needed.

        One token request at most is in flight per connection: the threads of
        a process wait on the client's lock, the worker processes on the
        connection's row (locked while the token is fetched; those waiting then
        take the token it stored). SQLite has no row locks (and one writer):
        there, no transaction is held open during the request."""
        with self._lock:
            if self._token and self._token.value != rejected and self._token.fresh(timezone.now()):
                return self._token.value
            locks_rows = transaction.get_connection().features.has_select_for_update
            with transaction.atomic() if locks_rows else contextlib.nullcontext():
                row = Connection.objects.filter(pk=self.connection.pk)
                if locks_rows:
                    row = row.select_for_update()
                encrypted, expires_at = row.values_list("access_token_encrypted", "token_expires_at")[0]
                stored = _Token.stored(encrypted, expires_at)
                if stored and stored.value != rejected and stored.fresh(timezone.now()):
                    self._token = stored
                    return stored.value
                self._token = self._fetch_token()
                Connection.objects.filter(pk=self.connection.pk).update(
                    access_token_encrypted=self._token.encrypted(), token_expires_at=self._token.expires_at
                )
            return self._token.value

    def _fetch_token(self) -> _Token:
        try:
            response = self.http.post(
                self._auth_url(),
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.connection.oauth_client_id,
                    "client_secret": self.connection.client_secret,
                },
            )
        except httpx.TransportError as error:
            raise TransientError(f"Authentification impossible : {error!r}") from error
        if response.status_code in (400, 401, 403):
            raise Rejection(
                f"Authentification refusée (HTTP {response.status_code}) : {_platform_message(response)}. "
                "Vérifiez l'identifiant et le secret de la connexion.",
                status_code=response.status_code,
                body=response.text[:2000],
            )
        classify(response)
        try:
            body = response.json()
            value = str(body["access_token"])
            lifetime = int(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as error:
            raise TransientError(f"Réponse d'authentification illisible : {response.text[:200]}") from error
        return _Token(value, timezone.now() + timedelta(seconds=lifetime), timedelta(seconds=lifetime))

    # --- Requests ------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated call; on a 401 the token is renewed once and the call retried."""
        # Taken out once: the retry after a renewal sends the same headers (e.g. the JSON content type).
        extra_headers = kwargs.pop("headers", {})
        refused = None
        for attempt in (1, 2):
            bearer = self.token(rejected=refused)
            headers = {**extra_headers, "authorization": f"Bearer {bearer}"}
            try:
                response = self.http.request(method, self._api_url(path), headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                # Nothing reached the platform.
                raise TransientError(f"Plateforme injoignable : {error!r}") from error
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError) as error:
                raise AmbiguousError(f"Pas de réponse de la plateforme : {error!r}") from error
            except httpx.TransportError as error:
                raise AmbiguousError(f"Échange interrompu : {error!r}") from error
            if response.status_code == 401 and attempt == 1:
                refused = bearer
                continue
            classify(response)
            return response
        raise AssertionError("unreachable")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as error:
            raise TransientError(f"Réponse illisible : {response.text[:200]}") from error

    def post_log(self, payload: Mapping[str, Any], *, element: str = "interventions") -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.request("POST", f"operations/v2/{element}/logs", content=body, headers={"content-type": JSON_TYPE})

    def upload_document(self, fields: Mapping[str, str], *, filename: str, content: bytes, mime: str) -> Any:
        # Each text part declares its charset: a receiver that does not assume
        # UTF-8 (Latin-1 is common in Java stacks) would garble the accents.
        parts = [(name, (None, str(value).encode("utf-8"), TEXT_PART_TYPE)) for name, value in fields.items()]
        response = self.request("POST", "documents/v1/documents", files=[*parts, ("file", (filename, content, mime))])
        # The upload succeeded whatever the body says: an unreadable body must not
        # turn into a retry, which would upload the file a second time.
        try:
            return response.json() if response.content else None
        except ValueError:
            return None

    def list_documents(self, element_type: str, element_reference: str) -> Any:
        response = self.request(
            "GET",
            "documents/v1/documents",
            params={"elementType": element_type, "elementReference": element_reference},
        )
        return self._json(response)

    def get_operation(self, reference: str, contract_reference: str) -> dict[str, Any]:
        response = self.request(
            "GET",
            f"operations/v2/operations/{quote(reference, safe='')}",
            params={"contractReference": contract_reference},
        )
        return self._json(response)

    def get_url(self, url: str) -> dict[str, Any]:
        """Follow a link the platform gave (e.g. a webhook's operation_url), on its API host only."""
        base = self.connection.api_base_url.rstrip("/")
        if not url.startswith(base + "/"):
            raise Rejection(f"Lien hors de la plateforme configurée : {url[:200]}")
        return self._json(self.request("GET", url[len(base) + 1 :]))

    def list_operations(self, *, status: str | None = None, per_page: int = 100) -> Iterator[dict[str, Any]]:
        """Every operation, page after page, until an empty page."""
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "perPage": per_page}
            if status:
                params["status"] = status
            body = self._json(self.request("GET", "operations/v2/operations", params=params))
            operations = (body.get("_embedded") or {}).get("operations") or []
            if not operations:
                return
            yield from operations
            page += 1

    def get_contract(self, reference: str) -> dict[str, Any]:
        return self._json(self.request("GET", f"contracts/v1/contracts/{quote(reference, safe='')}"))

    def get_asset(self, code: str) -> dict[str, Any]:
        return self._json(self.request("GET", f"assets/v1/assets/{quote(code, safe='')}"))


_clients: dict[int, tuple[IntentClient, tuple]] = {}


def client_for(connection: Connection) -> IntentClient:
    """One client per connection per process, rebuilt when the connection changes."""
    key = (
        connection.auth_base_url,
        connection.api_base_url,
        connection.oauth_client_id,
        connection.client_secret_encrypted,
        connection.timeout_seconds,
    )
    cached = _clients.get(connection.pk)
    if cached is None or cached[1] != key:
        if cached is not None:
            cached[0].close()
        cached = (IntentClient(connection), key)
        _clients[connection.pk] = cached
    return cached[0]
