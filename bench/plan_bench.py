"""How long validating and planning a 10,000-combination SGLang task takes.

Run from the repository root with the project's interpreter::

    .venv/bin/python bench/plan_bench.py [--runs 20] [--gpus 8]

The grid is 5 tp-size × 4 dp-size × 2 pp-size × 5 mem-fraction-static × 5 schedule-policy
× 2 disable-radix-cache × 5 chunked-prefill-size = 10,000 combinations, so every SGLang rule
(GPUs, attention DP dividing tp, policies that need the radix cache) has something to refuse. Timed, each
as the median of ``--runs`` calls after warm-up:

- check_grid against the SGLang catalogue (the shipped one from engines/data/ when there is
  one, else a small catalogue built here), and loading that catalogue from disk once;
- summarize: total, runnable and the skipped count per reason;
- rendering the launch command of every runnable combination;
- summarize on a grid of 10**12 combinations (12 flags × 10 values), which is never expanded.

The issue's target: validate and plan a task of 10,000 combinations in under 100 ms. Times
only; nothing is asserted. No Django needed.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.catalogue import Catalogue, for_engine, parse
from engines.checks import check_grid, errors, same_flag, warnings
from engines.plan import Plan, command_renderer, rules_for, runnable, summarize

TARGET_MS = 100.0
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

GRID: dict[str, list[Any]] = {
    "tp-size": [1, 2, 4, 8, 16],
    "dp-size": [1, 2, 4, 8],
    "pp-size": [1, 2],
    "mem-fraction-static": [0.7, 0.75, 0.8, 0.85, 0.9],
    "schedule-policy": ["lpm", "fcfs", "random", "dfs-weight", "lof"],
    "disable-radix-cache": [False, True],
    "chunked-prefill-size": [1024, 2048, 4096, 8192, 16384],
}


def trillion_grid() -> dict[str, list[Any]]:
    """12 flags × 10 values, the parallel sizes among them so the rules have work to do."""
    grid: dict[str, list[Any]] = {
        "tp-size": list(range(1, 11)),
        "dp-size": list(range(1, 11)),
        "pp-size": list(range(1, 11)),
        "schedule-policy": ["lpm", "fcfs", "random", "dfs-weight", "lof", "p1", "p2", "p3", "p4", "p5"],
    }
    grid.update({f"knob-{index}": list(range(10)) for index in range(12 - len(grid))})
    return grid


def small_catalogue() -> Catalogue:
    return parse(
        {
            "engine": "sglang",
            "version": "bench",
            "source": "built by bench/plan_bench.py",
            "flags": [
                {"name": "tp-size", "aliases": ["tensor-parallel-size"], "kind": "integer"},
                {"name": "dp-size", "aliases": ["data-parallel-size"], "kind": "integer"},
                {"name": "pp-size", "aliases": ["pipeline-parallel-size"], "kind": "integer"},
                {"name": "mem-fraction-static", "kind": "float"},
                {"name": "schedule-policy", "kind": "choice", "choices": GRID["schedule-policy"]},
                {"name": "disable-radix-cache", "kind": "switch"},
                {"name": "chunked-prefill-size", "kind": "integer"},
            ],
        }
    )


def median_ms(call: Callable[[], object], runs: int) -> float:
    """The median milliseconds of ``runs`` calls, after two warm-up calls."""
    for _ in range(2):
        call()
    timings = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed calls per measurement (default 20)")
    parser.add_argument("--gpus", type=int, default=8, help="GPUs the task may use (default 8)")
    options = parser.parse_args()

    start = time.perf_counter_ns()
    shipped = for_engine("sglang")
    load_ms = (time.perf_counter_ns() - start) / 1e6
    catalogue = shipped or small_catalogue()
    rules = rules_for("sglang", options.gpus, GRID)
    aliases = same_flag(list(GRID), catalogue)

    findings = check_grid(GRID, catalogue)
    summary = summarize(GRID, rules, aliases)

    def render_all() -> list[str]:
        # As a task renders its plan: one renderer for the grid, then each combination.
        render = command_renderer("sglang", MODEL, list(GRID), catalogue=catalogue)
        return [render(combination) for combination in runnable(GRID, rules, aliases)]

    commands = render_all()
    big = trillion_grid()
    big_summary = summarize(big, rules)

    check_ms = median_ms(lambda: check_grid(GRID, catalogue), options.runs)
    summarize_ms = median_ms(lambda: summarize(GRID, rules, aliases), options.runs)
    render_ms = median_ms(render_all, options.runs)
    big_ms = median_ms(lambda: summarize(big, rules), options.runs)
    big_plan = Plan(big, rules)
    last_page = big_plan.runnable - 1000

    def far_page() -> list[dict]:
        # As the plan API serves a page: the plan made, then 1,000 combinations from the place asked.
        return list(itertools.islice(Plan(big, rules).combinations(last_page), 1000))

    far_page_ms = median_ms(far_page, options.runs)

    where = f"{catalogue.engine} {catalogue.version}" + ("" if shipped else " (no shipped catalogue: a small one)")
    print(f"Python {sys.version.split()[0]}, median of {options.runs} runs, {options.gpus} GPUs, catalogue {where}")
    show("loading the catalogue from disk, once per process", load_ms, f"{len(catalogue.flags)} flags")
    show(
        f"check_grid, {summary.total:,} combinations",
        check_ms,
        f"{len(errors(findings))} errors, {len(warnings(findings))} warnings",
    )
    show(
        "summarize: runnable count and skipped per reason",
        summarize_ms,
        f"{summary.runnable:,} runnable, {summary.skipped_count:,} skipped for {len(summary.skipped)} reasons",
    )
    show("render every runnable launch command", render_ms, f"{len(commands):,} commands")
    show("the last 1,000 of the 10^12 grid's plan", far_page_ms, f"from experiment {last_page + 1:,}")
    show(
        "summarize a 10^12 grid (12 flags × 10 values)",
        big_ms,
        f"total {big_summary.total:,}, runnable {big_summary.runnable:,}",
    )
    for label, total in (
        ("total: validate + summarize", check_ms + summarize_ms),
        ("total: validate + summarize + render commands", check_ms + summarize_ms + render_ms),
    ):
        show(label, total, f"{'under' if total < TARGET_MS else 'OVER'} the {TARGET_MS:.0f} ms target")


def show(label: str, milliseconds: float, detail: str) -> None:
    print(f"  {label:<50} {milliseconds:9.3f} ms   {detail}")


if __name__ == "__main__":
    main()
