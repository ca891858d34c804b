"""bench/load_test.py in the suite: 32 clients against gunicorn, then every acknowledged write checked.

On the database the run uses: SQLite, or, when TEST_DATABASE_URL names a PostgreSQL server (bin/test's
second run), a fresh database on that server. 60 s under CI=true; locally AUTOTUNER_LOAD_SECONDS
shortens it (``AUTOTUNER_LOAD_SECONDS=10 bin/test``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.postgres import create_database

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parent.parent
CI_SECONDS = 60


def load_seconds() -> str:
    if os.environ.get("CI") == "true":
        return str(CI_SECONDS)
    return os.environ.get("AUTOTUNER_LOAD_SECONDS", str(CI_SECONDS))


def test_32_clients_get_no_server_error_and_lose_no_write() -> None:
    command = [sys.executable, "bench/load_test.py", "--clients", "32", "--seconds", load_seconds()]
    if test_server := os.environ.get("TEST_DATABASE_URL"):
        command += ["--database-url", create_database(test_server, "autotuner_load")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(result.stdout)  # the figures, shown with -s or when the test fails
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
