"""The Intent REST client: OAuth client credentials, logs, documents, operations,
contracts and assets. It knows nothing of orders: it sends and reads JSON.

Every failure is classified for the relay: `TransientError` (network, timeout,
5xx, 408, 429: try again later), its subclass `AmbiguousError` (the request may
have reached the platform, a timeout or a gateway's 502 or 504: read back before
sending again), or `Rejection` (another 4xx: a person must correct the data; the
platform's reasons are kept, see `read_refusal`).
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx
from django.db import transaction
from django.utils import timezone

from portal.relay import crypto
from portal.relay.models import Connection

TOKEN_MARGIN = timedelta(seconds=60)  # renew at most this long before the token expires
ACCEPT = "application/json+hal"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_PART_TYPE = "text/plain; charset=utf-8"  # a multipart text field


# A failed response's body is kept (with the attempt and the message) up to this many bytes.
BODY_LIMIT = 8 * 1024


class PlatformError(Exception):
    def __init__(
        self, message: str, *, status_code: int | None = None, body: str = "", reasons: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        # The platform's reasons, each once, as `read_refusal` found them in the body.
        self.reasons = reasons


class TransientError(PlatformError):
    """Try again later."""


class AmbiguousError(TransientError):
    """The request left and no answer came back: the platform may have it."""


class Rejection(PlatformError):
    """The platform refused the data: a person must correct it."""


class NotFound(Rejection):
    pass


class TokenRejected(PlatformError):
    """A 401 to a call made with the token its caller gave (`bearer=`): the
    caller renews it (`token(rejected=...)`) and calls again. Nothing was stored."""


def bounded(text: str, limit: int = BODY_LIMIT) -> str:
    """At most `limit` bytes of `text` in UTF-8, cut between characters."""
    data = text.encode("utf-8", errors="replace")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


# Where platforms put their refusals (error bodies are undocumented, docs/platform.md):
# a headline (`message`; OAuth's `error` and `error_description`; RFC 7807's
# `detail` and `title`) and the reasons under it (`messages`, `errors` as a list
# or as an object of fields, `details`, `violations`, RFC 7807's
# `invalid-params`...), each reason a text or an object with a text and the
# field it is about, at any depth.
HEADLINE_KEYS = ("message", "error_description", "error", "detail", "title")
REASON_KEYS = (
    "messages",
    "errors",
    "details",
    "violations",
    "invalid-params",
    "invalidParams",
    "fieldErrors",
    "validationErrors",
    "causes",
)
TEXT_KEYS = (
    "message",
    "msg",
    "detail",
    "reason",
    "defaultMessage",
    "error_description",
    "description",
    "error",
    "title",
)
FIELD_KEYS = ("field", "path", "loc", "name", "property", "propertyPath", "pointer", "parameter", "param")
MAX_REASONS = 50
MAX_DEPTH = 10


@dataclass(frozen=True)
class Refusal:
    """What a failed response's body says: its headline(s) (e.g. "Log invalide.",
    or a bare code like "validation") and the specific reasons, each once."""

    headlines: tuple[str, ...] = ()
    details: tuple[str, ...] = ()

    @property
    def reasons(self) -> tuple[str, ...]:
        """What to show a person: the specific reasons, else the headline."""
        return self.details or self.headlines

    @property
    def summary(self) -> str:
        """One line: the headlines, then the reasons."""
        parts = list(self.headlines)
        if self.details:
            parts.append("; ".join(self.details)[:1000])
        return " – ".join(parts)


def _text(value: object) -> str:
    return " ".join(str(value).split())[:500]


def _field_name(item: dict) -> str:
    for key in FIELD_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().removeprefix("/").replace("/", ".")
        if isinstance(value, list) and value and all(isinstance(part, str | int) for part in value):
            # FastAPI's `loc`: ["body", "location", "assetReference"].
            parts = [str(part) for part in value]
            return ".".join(parts[1:] if parts[0] in ("body", "query", "path") and len(parts) > 1 else parts)
    return ""


def _reasons(value: object, field: str = "", depth: int = 0) -> list[str]:
    """Every reason in `value` (a text, a list, an object with a text and a field,
    or an object of fields), as "field : text" when it names its field."""
    if depth > MAX_DEPTH or value is None or value == "" or value == [] or value == {}:
        return []
    if isinstance(value, str | int | float | bool):
        text = _text(value)
        return [f"{field} : {text}" if field else text] if text else []
    if isinstance(value, list):
        return [reason for item in value for reason in _reasons(item, field, depth + 1)]
    if not isinstance(value, dict):
        return []
    own = _field_name(value)
    where = f"{field}.{own}" if field and own else field or own
    text = next((value[key] for key in TEXT_KEYS if isinstance(value.get(key), str) and value[key].strip()), None)
    nested = [
        reason
        for key in (*REASON_KEYS, *TEXT_KEYS)
        if key in value and not isinstance(value[key], str)
        for reason in _reasons(value[key], where, depth + 1)
    ]
    if text is not None or nested:
        return ([f"{where} : {_text(text)}" if where else _text(text)] if text is not None else []) + nested
    if own:  # a field and nothing said about it: show the object as it is
        return [json.dumps(value, ensure_ascii=False)[:500]]
    # An object of fields: {"serviceCode": ["missing"], "location": {"assetReference": "missing"}}.
    return [
        reason
        for key, item in value.items()
        for reason in _reasons(item, f"{field}.{key}" if field else str(key), depth + 1)
    ]


def _plain(text: str) -> str:
    """A body that is not JSON: its text, or an HTML page's title."""
    text = text.strip()
    if text.startswith("<"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:2000]


def _unique(texts: list[str], *, besides: tuple[str, ...] = ()) -> tuple[str, ...]:
    seen = set(besides)
    kept = []
    for text in texts:
        if text and text not in seen:
            seen.add(text)
            kept.append(text)
    return tuple(kept[:MAX_REASONS])


def read_refusal(text: str) -> Refusal:
    """The platform's explanation in a failed response's body (pure): every
    reason it gives, from the usual shapes, each once."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        plain = _plain(text)
        return Refusal(headlines=(plain,) if plain else ())
    if isinstance(body, dict):
        headlines: list[str] = []
        details: list[str] = []
        for key in HEADLINE_KEYS:
            value = body.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                headlines += _reasons(value)
            elif isinstance(value, dict):  # {"error": {"message": ..., "details": [...]}}
                inner = read_refusal(json.dumps(value))
                headlines += inner.headlines
                details += inner.details
            elif value:
                details += _reasons(value)
        for key in REASON_KEYS:
            details += _reasons(body.get(key))
        if not headlines and not details and all(isinstance(value, str | list | dict) for value in body.values()):
            details = _reasons(body)  # {"serviceCode": ["This field is required."]}
        kept = _unique(headlines)
        return Refusal(headlines=kept, details=_unique(details, besides=kept))
    if isinstance(body, list):
        return Refusal(details=_unique(_reasons(body)))
    plain = _plain(text)
    return Refusal(headlines=(plain,) if plain else ())


def _platform_message(response: httpx.Response) -> str:
    """The platform's own explanation, as readable as its body allows."""
    return read_refusal(response.text).summary or response.reason_phrase


# A gateway's error may come after the platform stored the request: as uncertain as a timeout.
GATEWAY_ERRORS = (502, 504)


def classify(response: httpx.Response) -> None:
    """Raise the right error for a failed response; return for a success."""
    code = response.status_code
    if code < 400:
        return
    refusal = read_refusal(response.text)
    message = f"HTTP {code} : {refusal.summary or response.reason_phrase}"
    kind: type[PlatformError] = Rejection
    if code in GATEWAY_ERRORS:
        kind = AmbiguousError
    elif code >= 500 or code in (408, 429):
        kind = TransientError
    elif code == 404:
        kind = NotFound
    raise kind(message, status_code=code, body=bounded(response.text), reasons=refusal.reasons)


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

    def request(self, method: str, path: str, *, bearer: str | None = None, **kwargs: Any) -> httpx.Response:
        """An authenticated call; on a 401 the token is renewed once and the call
        retried. With `bearer` (a token from `token()`), the call uses it and
        touches no database, for a thread that has none (the relay's sender):
        a 401 then raises `TokenRejected` for the caller to renew."""
        # Taken out once: the retry after a renewal sends the same headers (e.g. the JSON content type).
        extra_headers = kwargs.pop("headers", {})
        given = bearer
        refused = None
        for attempt in (1, 2):
            bearer = given or self.token(rejected=refused)
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
            if response.status_code == 401 and given:
                raise TokenRejected("Jeton refusé par la plateforme (HTTP 401).", status_code=401)
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

    def post_log(
        self, payload: Mapping[str, Any], *, element: str = "interventions", bearer: str | None = None
    ) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.request(
            "POST", f"operations/v2/{element}/logs", bearer=bearer, content=body, headers={"content-type": JSON_TYPE}
        )

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

    def get_quotation(self, reference: str, contract_reference: str) -> dict[str, Any]:
        """A quote as the platform holds it, with its logs (the operations' shape)."""
        response = self.request(
            "GET",
            f"operations/v2/quotations/{quote(reference, safe='')}",
            params={"contractReference": contract_reference},
        )
        return self._json(response)

    def get_url(self, url: str) -> dict[str, Any]:
        """Follow a link the platform gave (e.g. a webhook's operation_url), on its API host only."""
        path = path_under(self.connection.api_base_url, url)
        if path is None:
            raise Rejection(f"Lien hors de la plateforme configurée : {url[:200]}")
        return self._json(self.request("GET", path))

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


def path_under(base_url: str, url: str) -> str | None:
    """The path (and query) of `url` relative to the API base, or None if `url`
    leads anywhere else: another scheme, host, port or user, a path outside the
    base's, or a `.` / `..` segment (also percent-encoded, or with backslashes),
    which a server would resolve outside it. The bearer token goes with the
    request, so a link from a notification must not take it elsewhere."""
    base, link = urlsplit(base_url.rstrip("/")), urlsplit(url)
    if (link.scheme.lower(), link.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        return None
    if "@" in link.netloc or link.fragment or "\\" in unquote(link.path):
        return None
    prefix = base.path.rstrip("/") + "/"
    if not link.path.startswith(prefix):
        return None
    relative = link.path[len(prefix) :]
    segments = unquote(relative).split("/")
    if not relative or any(segment in (".", "..") for segment in segments):
        return None
    return relative + (f"?{link.query}" if link.query else "")


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
