"""Settings for autotuner: one module, driven by the environment.

Unset, everything has a safe local default (DEBUG on, SQLite under var/). The
switches for a real deployment are listed in the README.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DATA_DIR = Path(env_str("AUTOTUNER_DATA_DIR", str(BASE_DIR / "var")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
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
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "django_tasks_db",
    "presets",
    "tasks",
    "engines",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "autotuner.middleware.HtmxLoginRedirectMiddleware",
]

ROOT_URLCONF = "autotuner.urls"

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
        # Reusing a connection saves opening it and, on SQLite, re-reading the schema: a third
        # of a small API request's time. Health checks drop one the server has closed.
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

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header turns anonymous requests into 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "autotuner.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["autotuner.http.JSONBodyParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "autotuner.http.JSONRenderer",
        "autotuner.http.BrowsableAPIRenderer",
    ],
    "EXCEPTION_HANDLER": "autotuner.http.api_exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "autotuner.http.ContentNegotiation",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
API_MAX_BODY_SIZE = 2 * 1024 * 1024

SPECTACULAR_SETTINGS = {
    "TITLE": "autotuner API",
    "DESCRIPTION": "Parameter presets for LLM inference servers, merged in the order you choose.",
    "VERSION": "1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from our own static files, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Background work: Django's Tasks API on a database queue (django-tasks-db), so no broker is needed.
# Workers: `manage.py worker` (bin/start runs one next to the web server).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# How many experiments of one task may run at once, each on its own worker (host).
PARALLEL_EXPERIMENTS = int(env_str("AUTOTUNER_PARALLEL_EXPERIMENTS", "4"))

# Running experiments on this host. A launcher replaces an engine's own start words
# (engines.plan.LAUNCHERS), e.g. a container or a virtualenv's python; "{model}" is the task's model.
STANDIN_ENGINE = BASE_DIR / "tests" / "standin_engine.py"
STANDIN_LAUNCHERS = {
    "sglang": [sys.executable, str(STANDIN_ENGINE), "--model-path", "{model}"],
    "vllm": [sys.executable, str(STANDIN_ENGINE), "serve", "{model}"],
}
# AUTOTUNER_STANDIN_ENGINE=1 runs every task against the stand-in engine: try the whole flow without a GPU.
ENGINE_LAUNCHERS: dict[str, list[str]] = dict(STANDIN_LAUNCHERS) if env_bool("AUTOTUNER_STANDIN_ENGINE", False) else {}
for _runtime in ("sglang", "vllm"):
    if os.environ.get(f"AUTOTUNER_{_runtime.upper()}_LAUNCHER"):
        ENGINE_LAUNCHERS[_runtime] = shlex.split(os.environ[f"AUTOTUNER_{_runtime.upper()}_LAUNCHER"])
# The GPUs this host gives experiments, as CUDA_VISIBLE_DEVICES ids; unset leaves the variable alone.
GPU_IDS = env_list("AUTOTUNER_GPU_IDS", [])
ENGINE_START_TIMEOUT = int(env_str("AUTOTUNER_ENGINE_START_TIMEOUT", "600"))  # seconds, capped by the task's timeout
ENGINE_STOP_GRACE = float(env_str("AUTOTUNER_ENGINE_STOP_GRACE", "10"))  # SIGTERM to SIGKILL, seconds
# A running experiment whose worker has not written for this long is taken for lost (its host died).
WORKER_LOST_AFTER = int(env_str("AUTOTUNER_WORKER_LOST_AFTER", "120"))
