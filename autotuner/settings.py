"""Settings for autotuner: one module, driven by the environment.

Unset, everything has a safe local default (DEBUG on, SQLite under var/). The
switches for a real deployment are listed in the README.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from engines.registry import ENGINES

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate such as "600/min"; "off" (or "none") means no limit."""
    value = env_str(name, default).strip()
    return None if value.lower() in {"off", "none"} else value


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DATA_DIR = Path(env_str("AUTOTUNER_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
DEV_SECRET_KEY = "dev-only-insecure-key-change-me-in-production"
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",  # lets FORM_RENDERER find Django's widget templates
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_tasks_db",
    "autotuner",  # the database check and wait_for_database
    "presets",
    "tasks",
    "engines",
]

MIDDLEWARE = [
    "autotuner.middleware.RequestIdMiddleware",  # first: times and logs every request, with its id
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "autotuner.middleware.HtmxLoginRedirectMiddleware",
]
# Django's database sessions: every worker and host sees a login or logout at once.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

ROOT_URLCONF = "autotuner.urls"

TEMPLATES: list[dict[str, Any]] = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

FORM_RENDERER = "autotuner.forms.FormRenderer"

WSGI_APPLICATION = "autotuner.wsgi.application"

# Any URL dj-database-url understands; unset, the SQLite file under the data folder.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'autotuner.sqlite3'}",
        # Reusing a connection saves opening it and, on SQLite, re-reading the schema, on every
        # request. Health checks drop one the server has closed.
        conn_max_age=int(env_str("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run while one writer commits; IMMEDIATE takes the write lock at
    # BEGIN so concurrent writers wait for the busy timeout instead of failing mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": int(env_str("SQLITE_BUSY_TIMEOUT", "20")),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static"

REST_FRAMEWORK: dict[str, Any] = {
    # Token first: its WWW-Authenticate header turns anonymous requests into 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["autotuner.http.JSONBodyParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "autotuner.http.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "autotuner.http.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
}
API_MAX_BODY_SIZE = 2 * 1024 * 1024

SPECTACULAR_SETTINGS = {
    "TITLE": "autotuner API",
    "DESCRIPTION": "Parameter presets for LLM inference servers, merged in the order you choose.",
    "VERSION": "1.0",
    # 3.1 (JSON Schema) can say what a parameters grid's flag names look like (propertyNames).
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Names for the runtime choices, listed with their labels (models, filters) or without.
    "ENUM_NAME_OVERRIDES": {
        "RuntimeEnum": "engines.registry.choices",
        "RuntimeNameEnum": "engines.registry.engine_names",
    },
}

# Abuse limits
# Logins: django-axes locks a username after AXES_FAILURE_LIMIT failures, and separately an
# address after LOGIN_ADDRESS_FAILURE_LIMIT (ten times as many by default: everyone behind one
# office NAT shares an address, and one person's typos must not lock the others out), for
# AXES_COOLOFF_TIME; a success resets the count. Attempts live in the database, so every worker
# sees them. Behind reverse proxies, AUTOTUNER_PROXY_COUNT says how many to look through in
# X-Forwarded-For; otherwise every login would share the proxy's address.
# Before each lock, guessing is slowed (accounts/lockout.py): a username from LOGIN_SLOWDOWN_AFTER
# failures on, an address as many failures short of its own limit; the next attempt must wait
# LOGIN_SLOWDOWN_SECONDS after the last failure, doubling with each further one (2 s, then 4 s),
# and an attempt too soon is refused with 429 and Retry-After, not checked and not counted. A
# person retyping a password barely notices; a script loses most of its attempts. The refusal
# is immediate: sleeping instead would hand attackers the workers.
INSTALLED_APPS += ["axes", "accounts"]
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes asks
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(env_str("AUTOTUNER_LOGIN_FAILURE_LIMIT", "5"))
LOGIN_ADDRESS_FAILURE_LIMIT = int(env_str("AUTOTUNER_LOGIN_ADDRESS_FAILURE_LIMIT", str(10 * AXES_FAILURE_LIMIT)))
AXES_COOLOFF_TIME = timedelta(minutes=int(env_str("AUTOTUNER_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "accounts.lockout.LoginHandler"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"  # 429 pages with Retry-After
LOGIN_SLOWDOWN_AFTER = int(env_str("AUTOTUNER_LOGIN_SLOWDOWN_AFTER", "3"))
LOGIN_SLOWDOWN_SECONDS = int(env_str("AUTOTUNER_LOGIN_SLOWDOWN_SECONDS", "2"))  # 0: no slow-down
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_address"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
PROXY_COUNT = int(env_str("AUTOTUNER_PROXY_COUNT", "0"))
# The API: requests per user (token or session) and per anonymous address, "N/sec|min|hour|day",
# "off" for none. Counted in the default cache, which is per process: with several gunicorn
# workers a client gets up to workers × the rate. These are abuse limits, not quotas, so that
# is accepted rather than a database write on every request (README).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "user": env_rate("AUTOTUNER_API_RATE_USER", "600/min"),
    "anon": env_rate("AUTOTUNER_API_RATE_ANON", "60/min"),
}
# A per-process memory cache: the API throttles' counters.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Bodies (API_MAX_BODY_SIZE above), JSON nesting, list pages and searches are bounded too.
API_MAX_JSON_DEPTH = 32

# Content-Security-Policy
# Strict: scripts only from this site's files, no inline code or eval (a nonce is the only way in),
# styles only from files, nothing may frame a page. Templates add nonce="{{ csp_nonce }}" to
# every <script>; htmx's own indicator <style> is off (base.html's htmx-config), its rules are
# in app.css. The API docs page alone also allows data: images (autotuner/urls.py).
from django.utils.csp import CSP  # noqa: E402

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
TEMPLATES[0]["OPTIONS"]["context_processors"].append("django.template.context_processors.csp")

# Production
# AUTOTUNER_ENV=production (bin/serve sets it) is everything `manage.py check --deploy` asks for,
# behind a proxy that terminates HTTPS and sets X-Forwarded-Proto: secure cookies, HSTS, a redirect
# to HTTPS (except /healthz, which load balancers probe over plain HTTP), hashed and compressed
# static files, and a SECRET_KEY that must be given. Outside it, DEBUG=false only turns the debug
# pages off (the API benchmark serves plain HTTP that way).
PRODUCTION = env_str("AUTOTUNER_ENV", "development").strip().lower() == "production"
if PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    DEBUG = env_bool("DEBUG", False)
    if DEBUG:
        raise ImproperlyConfigured("AUTOTUNER_ENV=production refuses DEBUG=true: it shows tracebacks and settings.")
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "AUTOTUNER_ENV=production needs SECRET_KEY set to a random secret of at least 50 characters "
            "(not the development key), e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = int(env_str("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        # Hashed names (cached for a year by browsers) with gzip variants next to them; whitenoise serves both.
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
# Django's defaults, stated so that nothing else turns them off unnoticed.
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Outside production whitenoise serves the app's static folders as they change, as runserver does.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION
# One line per request on "autotuner.requests" (autotuner.middleware); every line carries the
# request's id, which the X-Request-ID response header and the error pages show too.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "autotuner.logs.RequestIdFilter"},
        "security_events": {"()": "autotuner.logs.SecurityEventsWithoutTraceback"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id", "security_events"],
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": [], "level": "INFO"},  # to the root's handler, not Django's DEBUG-only one
        # autotuner.requests already writes one line per request, status included: runserver's own
        # line and Django's "Not Found" warning for a 4xx would repeat it. Errors still show.
        "django.server": {"level": "ERROR"},
        "django.request": {"level": "ERROR"},
        "autotuner": {"level": env_str("AUTOTUNER_LOG_LEVEL", "INFO")},
    },
}

# Background work: Django's Tasks API on a database queue (django-tasks-db), so no broker is needed.
# Workers: `manage.py worker` (bin/start runs one next to the web server).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# How many experiments of one task may run at once (a cap per task: a host packs as many as its GPUs fit,
# and several tasks share the hosts' GPUs in turn).
PARALLEL_EXPERIMENTS = int(env_str("AUTOTUNER_PARALLEL_EXPERIMENTS", "8"))

# Running experiments on this host. A launcher replaces an engine's own start words
# (engines.registry), e.g. a container or a virtualenv's python; "{model}" is the task's model.
# The stand-in engine (python -m engines.standin) reads either engine's way of naming the model.
STANDIN_ENGINE = "engines.standin"
STANDIN_LAUNCHERS = {engine.name: [sys.executable, "-m", STANDIN_ENGINE, *engine.model_arguments] for engine in ENGINES}
# AUTOTUNER_STANDIN_ENGINE=1 runs every task against the stand-in engine: try the whole flow without a GPU.
ENGINE_LAUNCHERS: dict[str, list[str]] = dict(STANDIN_LAUNCHERS) if env_bool("AUTOTUNER_STANDIN_ENGINE", False) else {}
for _engine in ENGINES:  # AUTOTUNER_<NAME>_LAUNCHER, e.g. AUTOTUNER_VLLM_LAUNCHER
    if os.environ.get(f"AUTOTUNER_{_engine.name.upper()}_LAUNCHER"):
        ENGINE_LAUNCHERS[_engine.name] = shlex.split(os.environ[f"AUTOTUNER_{_engine.name.upper()}_LAUNCHER"])
# The GPUs this host lends experiments, as CUDA_VISIBLE_DEVICES ids; unset leaves the variable alone.
GPU_IDS = env_list("AUTOTUNER_GPU_IDS", [])
# The name GPU leases and workers are recorded under: the hostname, unless two workers of one machine
# stand for two hosts (a test of many hosts on one PostgreSQL, or GPUs split between containers).
HOST_NAME = env_str("AUTOTUNER_HOST_NAME", "") or socket.gethostname()
ENGINE_START_TIMEOUT = int(env_str("AUTOTUNER_ENGINE_START_TIMEOUT", "600"))  # seconds, capped by the task's timeout
ENGINE_STOP_GRACE = float(env_str("AUTOTUNER_ENGINE_STOP_GRACE", "10"))  # SIGTERM to SIGKILL, seconds
# A running experiment whose worker has not written for this long is taken for lost (its host died).
WORKER_LOST_AFTER = int(env_str("AUTOTUNER_WORKER_LOST_AFTER", "120"))
