"""bench/tuning_bench.py in the suite, in its quick mode, so the bench cannot rot: real workers pack a
small grid on 8 fake GPUs and on 1, searches and full runs with repeats go through the lifecycle.
Its figures depend on the machine and are never asserted; only that each part ran and printed them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parent.parent


def test_the_tuning_bench_runs_every_part_and_prints_each_figure_beside_its_target() -> None:
    result = subprocess.run(
        [sys.executable, "bench/tuning_bench.py", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    print(result.stdout)  # the figures, shown with -s or when the test fails
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    for line in (
        "speed-up, 8 GPUs over 1:",
        "GPU busy share on 8 GPUs:",
        "overhead per experiment on 8 GPUs:",
        "  bayesian      2 ",
        "  random        2 ",
        "  grid          1 ",
        "  on (3 finalists, 2 repeats each) ",
        "  off (measured once) ",
    ):
        assert line in result.stdout, line
    assert "Traceback" not in result.stderr
