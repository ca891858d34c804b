"""The settings the API benchmark serves the app with: the real ones, plus bench/urls.py."""

from __future__ import annotations

from autotuner.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
