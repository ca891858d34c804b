"""bench/load_test.py in the suite: 32 clients against gunicorn beside 2 sending hostile requests (a plan
page far into a 10^8-combination grid, its downloads, merges of 50 and of 100,000 unknown ids), then every
acknowledged write checked. The script fails on a 5xx, a hostile request answered otherwise than it should
be, a gunicorn WORKER TIMEOUT or a traceback in the server's log; the p99/p50 ratio it prints is a figure
for the README, never asserted here (it depends on the machine).

On the database the run uses: SQLite, or, when TEST_DATABASE_URL names a PostgreSQL server (bin/test's
second run), a fresh database on that server. 60 s under CI=true; locally AUTOTUNER_LOAD_SECONDS
shortens it (``AUTOTUNER_LOAD_SECONDS=10 bin/test``).
"""

from __future__ import annotations

import os
import re
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


# Each hostile request and the statuses it may answer (a plan too long to download may be refused).
HOSTILE_ANSWERS = {
    "far_plan_page": "200",
    "plan_json": "200|400",
    "plan_sh": "200|400",
    "merge_50_unknown": "404",
    "merge_100k_ids": "400",
}


def test_32_clients_beside_hostile_ones_get_no_server_error_kill_no_worker_and_lose_no_write() -> None:
    command = [sys.executable, "bench/load_test.py", "--clients", "32", "--hostile", "2", "--seconds", load_seconds()]
    if test_server := os.environ.get("TEST_DATABASE_URL"):
        command += ["--database-url", create_database(test_server, "autotuner_load")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(result.stdout)  # the figures, shown with -s or when the test fails
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "gunicorn WORKER TIMEOUT lines: 0, tracebacks in the server log: 0" in result.stdout
    for operation, allowed in HOSTILE_ANSWERS.items():  # each sent, and answered only as it should be
        status = rf"(?:{allowed})×\d+"
        assert re.search(rf"^{operation} .*  {status}(?:, {status})*$", result.stdout, re.MULTILINE), operation
