"""What preset history costs: the disk space of 1,000 edits of a 50-parameter preset, and the
time of an edit (save + revision) and of a diff.

Run from the repository root with the project's interpreter::

    .venv/bin/python bench/history_bench.py [--edits 1000] [--values 5]

It migrates a fresh SQLite database in a temporary folder, creates a preset of 50 flags with
``--values`` values each, edits it ``--edits`` times (each edit changes one flag's values, as a
person would), then checkpoints the WAL and VACUUMs so the file size is the data, and prints:

- the database file size before and after the edits, and the growth per edit;
- the median time of one edit (ParameterPreset.save, which records the revision);
- the median time of diffing version 1 with the last, and of two 50 × 100-value grids that
  differ everywhere.

The issue's target: 1,000 edits of a 50-parameter preset take under 10 MB in SQLite. Figures
only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TARGET_MB = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--values", type=int, default=5, help="values per flag")
    arguments = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="history-bench-"))
    os.environ["AUTOTUNER_DATA_DIR"] = str(folder)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autotuner.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from presets.diff import diff_contents
    from presets.models import ParameterPreset

    call_command("migrate", verbosity=0)
    database = Path(connection.settings_dict["NAME"])

    def size_mb() -> float:
        """The file's size once compacted: Django's connection is closed first, and SQLite itself
        checkpoints the write-ahead log and vacuums the file."""
        connection.close()
        with closing(sqlite3.connect(database)) as compacting:
            compacting.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            compacting.execute("VACUUM")
        return database.stat().st_size / 1024 / 1024

    def grid(edit: int) -> dict[str, list[Any]]:
        # 50 flags named like engine flags, each with a few values; an edit shifts one flag's values.
        return {
            f"flag-number-{flag:02d}": [
                round(0.05 * (value + (edit if flag == edit % 50 else 0)), 2) for value in range(arguments.values)
            ]
            for flag in range(50)
        }

    before = size_mb()
    preset = ParameterPreset(name="History bench", category="performance", parameters=grid(0))
    preset.save()
    timings = []
    for edit in range(1, arguments.edits + 1):
        preset.parameters = grid(edit)
        began = time.perf_counter()
        preset.save(note=f"edit {edit}")
        timings.append(time.perf_counter() - began)
    after = size_mb()
    revisions = preset.revisions.count()

    first, last = (preset.revisions.get(version=v).content for v in (1, preset.current_version))
    diff_times = []
    for _ in range(20):
        began = time.perf_counter()
        diff_contents(first, last)
        diff_times.append(time.perf_counter() - began)
    wide_old = {"parameters": {f"flag-{f}": list(range(100)) for f in range(50)}}
    wide_new = {"parameters": {f"flag-{f}": list(range(1, 101)) for f in range(50)}}
    wide_times = []
    for _ in range(20):
        began = time.perf_counter()
        diff_contents(wide_old, wide_new)
        wide_times.append(time.perf_counter() - began)

    growth = after - before
    print(f"preset: 50 flags × {arguments.values} values; {arguments.edits} edits → {revisions} revisions")
    print(
        f"database: {before:.2f} MB before, {after:.2f} MB after: +{growth:.2f} MB "
        f"({growth * 1024 * 1024 / max(arguments.edits, 1):,.0f} bytes an edit); target < {TARGET_MB:g} MB "
        f"({'met' if growth < TARGET_MB else 'NOT met'})"
    )
    print(
        f"one edit (save + revision): median {statistics.median(timings) * 1000:.2f} ms, "
        f"p99 {sorted(timings)[int(len(timings) * 0.99) - 1] * 1000:.2f} ms"
    )
    print(
        f"diff v1 → v{preset.current_version}: median {statistics.median(diff_times) * 1000:.3f} ms; "
        f"50 × 100 values differing everywhere: median {statistics.median(wide_times) * 1000:.3f} ms"
    )


if __name__ == "__main__":
    main()
