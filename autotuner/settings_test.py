"""Settings for the test suite: the real settings, made fast and deterministic."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("AUTOTUNER_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

from autotuner.settings import *  # noqa: F403
from autotuner.settings import DATABASES  # by name too: replaced or changed below

if os.environ.get("TEST_DATABASE_URL"):  # run the suite on PostgreSQL too: TEST_DATABASE_URL=postgres://…
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["TEST_DATABASE_URL"])}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory: background workers started by the tests (other processes) share it. One per
    # test session, so two sessions (a developer's and an editor's) never delete each other's.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"autotuner-test-{os.getpid()}.sqlite3")
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests create many users
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # live_server cannot serve a manifest storage's hashed names.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Tasks run against the stand-in engine (a real process speaking the OpenAI API), quickly.
ENGINE_LAUNCHERS = dict(STANDIN_LAUNCHERS)  # noqa: F405
ENGINE_STOP_GRACE = 3.0

# No API throttling by default: the suite and the load test send far more than a person would.
# tests/accounts/test_limits.py turns it on per test.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": None, "anon": None}}  # noqa: F405
