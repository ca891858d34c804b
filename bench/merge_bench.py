"""How long presets.merging.merge takes on a large selection, per strategy.

Run from the repository root with the project's interpreter::

    .venv/bin/python bench/merge_bench.py [--runs 200] [--presets 50] [--parameters 50] [--values 100]

The presets are built deterministically and passed through normalize_parameters, as
stored presets are. Each flag gets a realistic kind of values:

- 70% integers, each preset's range overlapping its neighbours' (tp-size, batch sizes);
- 18% floats, overlapping by half (memory fractions);
- 6% strings, overlapping by half (policies, backends);
- 6% booleans mixed with integers, so the type-aware comparison path is exercised.

Prints the median and 95th percentile of merge() for every strategy, for the whole
selection and for its first two presets. Times only; nothing is asserted. At the default
200 runs the 50-preset case takes minutes (each merge builds hundreds of thousands of
values and conflict reasons); ``--runs 20`` gives a quick look.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from presets.merging import MergeResult, MergeStrategy, PresetInput, Scalar, merge
from presets.validators import normalize_parameters


def flag_values(kind: str, preset: int, flag: int, count: int) -> list[Scalar]:
    if kind == "int":
        start = preset * (count // 4) + flag
        return list(range(start, start + count))
    if kind == "float":
        return [round(0.5 * preset + 0.01 * step, 4) for step in range(count)]
    if kind == "str":
        start = preset * (count // 2)
        return [f"policy-{start + step}" for step in range(count)]
    start = preset * (count // 4)
    return [True, False, *range(start, start + count - 2)]


def flag_kind(flag: int, flags: int) -> str:
    share = flag / flags
    if share < 0.70:
        return "int"
    if share < 0.88:
        return "float"
    if share < 0.94:
        return "str"
    return "bool"


def build_presets(presets: int, flags: int, values: int) -> list[PresetInput]:
    built = []
    for preset in range(presets):
        raw = {
            f"flag-{flag:03d}-{flag_kind(flag, flags)}": flag_values(flag_kind(flag, flags), preset, flag, values)
            for flag in range(flags)
        }
        grid = normalize_parameters(raw)
        if any(len(found) != values for found in grid.values()):
            raise SystemExit("the generated values collapsed under normalisation; fix flag_values")
        built.append(PresetInput(f"Preset {preset:02d}", grid))
    return built


def time_runs(call: Callable[[], MergeResult], runs: int) -> list[float]:
    """Milliseconds per call, after a few warm-up calls."""
    for _ in range(3):
        call()
    timings = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        timings.append((time.perf_counter_ns() - start) / 1e6)
    return timings


def p95(timings: list[float]) -> float:
    return statistics.quantiles(timings, n=20, method="inclusive")[18]


def describe(result: MergeResult) -> str:
    values = sum(len(found) for found in result.parameters.values())
    combinations = result.combinations
    shown = f"{combinations:,}" if combinations < 10**9 else f"~10^{len(str(combinations)) - 1}"
    return (
        f"{len(result.parameters):>3} flags {values:>7,} values {len(result.conflicts):>3} conflicts "
        f"{shown:>9} combinations"
    )


def report(title: str, presets: list[PresetInput], runs: int) -> None:
    print(title)
    for strategy in MergeStrategy:
        timings = time_runs(lambda strategy=strategy: merge(presets, strategy), runs)
        result = merge(presets, strategy)
        print(
            f"  {strategy.value:<13} median {statistics.median(timings):8.3f} ms   p95 {p95(timings):8.3f} ms"
            f"   ({describe(result)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed merges per strategy (default 200)")
    parser.add_argument("--presets", type=int, default=50)
    parser.add_argument("--parameters", type=int, default=50)
    parser.add_argument("--values", type=int, default=100)
    options = parser.parse_args()

    presets = build_presets(options.presets, options.parameters, options.values)
    print(
        f"Python {sys.version.split()[0]}, {options.runs} runs per strategy; "
        f"each preset {options.parameters} parameters × {options.values} values"
    )
    report(f"{len(presets)} presets:", presets, options.runs)
    report("2 presets:", presets[:2], options.runs)


if __name__ == "__main__":
    main()
