"""Settings for the test suite: the real settings, made fast and deterministic."""

from __future__ import annotations

import os

os.environ.setdefault("AUTOTUNER_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))

from autotuner.settings import *  # noqa: F403

if os.environ.get("TEST_DATABASE_URL"):  # run the suite on PostgreSQL too: TEST_DATABASE_URL=postgres://…
    import dj_database_url

    DATABASES = {"default": dj_database_url.parse(os.environ["TEST_DATABASE_URL"])}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests create many users
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # live_server cannot serve a manifest storage's hashed names.
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
