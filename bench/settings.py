"""The settings the benchmarks serve the app with: the real ones, plus bench/urls.py, a
query-counting middleware (outermost, so sessions and authentication count too) and no
API throttling, which would turn a load test into a test of the throttle."""

from __future__ import annotations

from autotuner.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
MIDDLEWARE = ["bench.queries.QueryCountMiddleware", *MIDDLEWARE]  # noqa: F405
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}  # noqa: F405
