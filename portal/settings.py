"""Settings for the contractor portal.

One file, configured by environment variables. Every variable has an embedded
default that runs the portal on one machine with nothing else installed
(SQLite, a file-system broker, emails saved under VAR_DIR/mail), except DEBUG:
it is off unless set, so that a production that forgets it does not run with
debug pages and the development key. `make run`, `bin/run-dev` and the tests
set DEBUG=1; production sets SECRET_KEY, DATABASE_URL, REDIS_URL and friends.
`.env.example` lists them all.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_bool(name: str, default: bool = False) -> bool:
    """1/0, true/false, yes/no, on/off (any case); unset or empty means the
    default. Anything else is refused rather than read as false: a typo in
    DEBUG or SECURE_SSL_REDIRECT must not silently change the security."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a yes/no value: use 1 or 0 (true/false, yes/no, on/off).")


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# Off unless set: development is what asks for it (`make run`, bin/run-dev and
# the tests set DEBUG=1), never a production that forgot a variable.
DEBUG = env_bool("DEBUG", False)
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. DEBUG is off unless set: for development, "
            "set DEBUG=1 (`make run` does)."
        )
    # Development only: a fixed key so sessions survive a restart of `make run`.
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# The embedded sandbox (a stand-in for the manager's platform, under /sandbox/):
# development, demo and tests only, never in production. It answers without a
# login and can wipe its data, so it is off whenever DEBUG is off unless asked.
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)
# The sandbox's Nexxio side (portal/sandbox/bus.py): Google's Pub/Sub emulator, set by `make run` when it runs.
SANDBOX_PUBSUB_EMULATOR_HOST = env("SANDBOX_PUBSUB_EMULATOR_HOST")
# Encrypts the platforms' secrets at rest (a Fernet key: 32 url-safe base64 bytes).
# Unset, a key is derived from SECRET_KEY; set it to rotate SECRET_KEY freely.
RELAY_ENCRYPTION_KEY = env("RELAY_ENCRYPTION_KEY")
# How long a worker's claim on an outbox message lasts before another worker
# may take it (a killed worker). 0 means the default: 4 x the connection's
# timeout + 30 s, longer than any delivery. A shorter lease than a delivery
# can take risks a double send; the integration tests shorten it to run fast.
RELAY_LEASE_SECONDS = env_int("RELAY_LEASE_SECONDS", 0)
# A message queued this long ago and still not taken by a worker (the broker
# lost its task) is queued again by the sweep.
RELAY_REQUEUE_SECONDS = env_int("RELAY_REQUEUE_SECONDS", 60)
# How many messages (of different orders) a delivery task claims, sends and
# records together: one transaction per batch rather than per message.
RELAY_BATCH = env_int("RELAY_BATCH", 20)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "portal",
    "orders",
    "quotes",
    "invoices",
    "portal.relay",
]
if SANDBOX_ENABLED:
    INSTALLED_APPS.append("portal.sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads the body (sessions, CSRF, the views).
    "portal.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages compressed (a quarter of their size: phones on a weak signal).
    # Against BREACH, Django pads each compressed response with random bytes
    # and masks the CSRF token afresh in every response.
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lock-out into the French page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and the worker read while one writes; IMMEDIATE
    # transactions take the write lock up front, so two writers queue instead
    # of failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;PRAGMA foreign_keys=ON;"
        ),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out sign-in before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sign-in throttling: after 5 failures for one account from one address, that
# pair is locked out for 15 minutes.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The lock-out is keyed on the client's real address: behind the reverse
# proxies, the right-most address of X-Forwarded-For + REMOTE_ADDR that is not
# one of TRUSTED_PROXIES (portal/proxies.py). The left of X-Forwarded-For is
# whatever the client sent, so it is never believed.
AXES_CLIENT_IP_CALLABLE = "portal.proxies.client_ip"

# Behind a reverse proxy that terminates TLS (nginx, a load balancer): trust its
# X-Forwarded-Proto, and X-Forwarded-For from the proxies' own addresses only.
BEHIND_PROXY = env_bool("BEHIND_PROXY")
# Comma-separated addresses or networks (CIDR) of the proxies in front of the
# portal, each of which appends the address it received the request from to
# X-Forwarded-For (nginx's $proxy_add_x_forwarded_for). The default is a proxy
# on the same machine.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "127.0.0.1" if BEHIND_PROXY else "")
if TRUSTED_PROXIES and not BEHIND_PROXY:
    raise ImproperlyConfigured("TRUSTED_PROXIES is set but BEHIND_PROXY is off: set BEHIND_PROXY=1 behind a proxy.")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)."
        ) from None

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français")]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "/static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing one
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
if env("S3_BUCKET"):
    # Media (reports, photos, uploads) on S3-compatible object storage; the
    # files are private and served through signed URLs.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("S3_BUCKET"),
            "endpoint_url": env("S3_ENDPOINT_URL") or None,
            "region_name": env("S3_REGION") or None,
            "access_key": env("S3_ACCESS_KEY_ID"),
            "secret_key": env("S3_SECRET_ACCESS_KEY"),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }

# Email: SMTP when EMAIL_HOST is set. Otherwise, in development, each email is
# saved whole under VAR_DIR/mail and announced in one log line (portal/mail.py);
# without DEBUG, the console backend, which `check --deploy` refuses. The tests
# replace either with Django's in-memory outbox.
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Portail prestataire <portail@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if env("EMAIL_HOST"):
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": env("EMAIL_HOST"),
                "port": env_int("EMAIL_PORT", 587),
                "username": env("EMAIL_HOST_USER") or None,
                "password": env("EMAIL_HOST_PASSWORD") or None,
                "use_tls": env_bool("EMAIL_USE_TLS", True),
                "timeout": 10,
            },
        }
    }
elif DEBUG:
    MAILERS = {"default": {"BACKEND": "portal.mail.EmailBackend", "OPTIONS": {"directory": str(VAR_DIR / "mail")}}}
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
ADMINS = [("Admin", address) for address in env_list("ADMINS")]

# Celery: Redis when REDIS_URL is set; otherwise kombu's file-system transport,
# which runs a real worker and beat with no server at all.
REDIS_URL = env("REDIS_URL")
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    # The host means nothing to this transport, but kombu warns ("No hostname
    # was supplied") at every connection without one.
    CELERY_BROKER_URL = "filesystem://localhost//"
    for folder in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.5,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    # Every 5 s: what is due, and a probe of a failing platform (its return is seen within 5 s).
    "relay-sweep": {"task": "portal.relay.tasks.sweep_outbox", "schedule": 5.0},
    # Nexxio (Pub/Sub): the subscriptions pulled every few seconds (portal/relay/pull.py).
    "relay-pull-bus": {"task": "portal.relay.tasks.pull_bus", "schedule": float(env_int("RELAY_PULL_SECONDS", 5))},
    "relay-watch": {"task": "portal.relay.tasks.watch_service_level", "schedule": 60.0},
    "relay-retry-notifications": {"task": "portal.relay.tasks.retry_notifications", "schedule": 60.0},
    "relay-reconcile": {
        "task": "portal.relay.tasks.reconcile_operations",
        "schedule": float(env_int("RELAY_RECONCILE_SECONDS", 300)),
    },
    "relay-sync-contracts": {"task": "portal.relay.tasks.sync_contracts", "schedule": timedelta(hours=24)},
    "report-pdf-sweep": {"task": "orders.tasks.sweep_report_pdfs", "schedule": timedelta(minutes=5)},
    "report-photos-forget": {"task": "orders.tasks.forget_stale_photos", "schedule": timedelta(hours=24)},
    "quote-pdf-sweep": {"task": "quotes.tasks.sweep_quote_pdfs", "schedule": timedelta(minutes=5)},
    "quotes-expire": {"task": "quotes.tasks.expire_quotes", "schedule": timedelta(hours=1)},
    "notify-new-orders": {"task": "orders.tasks.announce_new_orders", "schedule": 60.0},
    "notify-orders-late-soon": {"task": "orders.tasks.warn_orders_late_soon", "schedule": timedelta(minutes=15)},
    "notify-unapplied-actions": {"task": "orders.tasks.tell_unapplied_actions", "schedule": 60.0},
    "purge-contact-access-log": {"task": "portal.tasks.purge_contact_access_log", "schedule": timedelta(hours=24)},
    "erase-ended-contracts": {"task": "orders.tasks.erase_ended_contracts", "schedule": timedelta(hours=24)},
    "clear-expired-sessions": {
        "task": "portal.tasks.clear_expired_sessions",
        "schedule": timedelta(hours=6),
    },
}

CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Security. Cookies are secure and HSTS is on whenever DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_PROXY else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# The header only allows a submission to the browsers' preload list (made by
# hand, for the apex domain); SECURE_HSTS_PRELOAD=0 withholds it.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No inline script anywhere: scripts come from our own static files only. No
# inline style either: stylesheets are files, and the admin's one <style>
# element carries the request's nonce (htmx's own is turned off in base.html).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:", "blob:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# A request's body is refused (413, French page) from its Content-Length,
# before any of it is read, past MAX_REQUEST_BODY_MB: a report's 16 photos at
# their 15 MB limit would be 240 MB, a phone's are 2 to 5 MB each. Within it,
# Django's own limits: 5 MB of form fields, at most 40 files (16 photos and a
# PDF), files past 5 MB streamed to a temporary file rather than kept in memory.
MAX_REQUEST_BODY_BYTES = env_int("MAX_REQUEST_BODY_MB", 100) * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 40
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Personal data (seed 004 §5): how long the log of who saw occupants' contact
# details is kept, and the data protection officer named in the processing register.
ACCESS_LOG_RETENTION_DAYS = env_int("ACCESS_LOG_RETENTION_DAYS", 365)
DPO_NAME = env("DPO_NAME")
DPO_EMAIL = env("DPO_EMAIL")
DPO_PHONE = env("DPO_PHONE")
# A form refused for its CSRF token gets the portal's French page.
CSRF_FAILURE_VIEW = "portal.views.csrf_failure"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Every stylesheet parsed and every font subset, at INFO.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # The development emails' one line each, with a handler of its own so
        # that it shows in a Celery worker started with --loglevel=warning
        # (Celery sets the root logger's level, not this one's).
        "portal.mail": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
