"""schemathesis CLI hooks for bench/schema_fuzz.sh: the suite's narrowed checks, registered by name.

The run excludes positive_data_acceptance and use_after_free and gets these instead, so the CLI
and tests/test_schema_fuzz.py judge the API alike.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autotuner.settings")
django.setup()

import schemathesis  # noqa: E402  (the test module below needs Django set up first)

from tests.test_schema_fuzz import deleted_stays_deleted, valid_data_accepted  # noqa: E402

schemathesis.check(valid_data_accepted)
schemathesis.check(deleted_stays_deleted)
