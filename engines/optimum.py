"""What a search is judged against: the simulator's noise-free score of each configuration, scored
as tasks.scoring scores measured levels, and the true optimum of a grid (engines.simulator is the
model; tests and bench/tuning_bench.py judge searches and verdicts by this module)."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engines.simulator import CannotServe, Config, Expected, WorkloadLike, expected

if TYPE_CHECKING:
    from tasks.benchmark import LevelResult


def as_level(result: Expected, mode: str = "concurrency") -> LevelResult:
    """The benchmark level a noise-free run would report: means as p50, the slowest replica as p90 and p99."""
    # The benchmark owns the scoring rules; importing it here, not at the top, keeps the stand-in
    # (which imports this module) free of the app.
    from tasks.benchmark import LevelResult

    def summary(typical: float, worst: float) -> dict[str, float | None]:
        return {"p50": typical, "p90": worst, "p99": worst, "mean": typical}

    return LevelResult(
        concurrency=result.load,
        requests=1,
        succeeded=1,
        failed=0,
        duration_s=1.0,
        requests_per_s=result.requests_per_s,
        output_tokens_per_s=result.output_tokens_per_s,
        success_rate=1.0,
        ttft_ms=summary(result.ttft_ms, result.worst_ttft_ms),
        tpot_ms=summary(result.tpot_ms, result.worst_tpot_ms),
        e2e_s=summary(result.e2e_s, result.worst_e2e_s),
        mode=mode,
    )


def _loads(objective: str, loads: Sequence[float], mode: str) -> list[float]:
    """The loads to score: for goodput in a closed loop, every whole load from the lowest to the
    highest given (what the benchmark's doubling and bisection converge to); otherwise those given."""
    if objective == "maximize_goodput" and mode == "concurrency":
        return list(range(int(min(loads)), int(max(loads)) + 1))
    return list(loads)


def score(
    combination: Mapping[str, Any],
    *,
    runtime: str,
    workload: WorkloadLike,
    objective: str,
    loads: Sequence[float],
    slos: Mapping[str, float | None] | None = None,
    gpu_cap: int | None = None,
) -> float | None:
    """The noise-free score of one combination of flags, as tasks.scoring.score_levels scores
    levels at ``loads``; None when it needs more GPUs than ``gpu_cap``, cannot serve, or meets no SLO."""
    from tasks.scoring import score_levels

    config = Config.from_flags(combination, runtime)
    if gpu_cap is not None and config.gpus_needed > gpu_cap:
        return None
    mode = getattr(workload, "mode", "concurrency")
    try:
        results = [expected(config, workload, load, mode=mode) for load in _loads(objective, loads, mode)]
    except CannotServe:
        return None
    levels = [as_level(result, mode) for result in results]
    return score_levels(levels, objective, dict(slos or {}), gpus=config.gpus_needed).value


@dataclass(frozen=True)
class Optimum:
    combination: dict[str, Any]
    value: float
    higher_is_better: bool
    score_of: Callable[[Mapping[str, Any]], float | None]  # ``score`` with the same workload and objective

    def shortfall(self, value: float | None) -> float:
        """How far ``value`` falls short of the optimum, as a share of it (0: as good; inf: no value)."""
        if value is None:
            return math.inf
        gap = self.value - value if self.higher_is_better else value - self.value
        return max(gap, 0.0) / abs(self.value) if self.value else (0.0 if gap <= 0 else math.inf)


def combinations(grid: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of a grid, in its order (the last flag changing fastest)."""
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        yield dict(zip(names, values, strict=True))


def true_optimum(
    grid: Mapping[str, Sequence[Any]],
    *,
    runtime: str,
    workload: WorkloadLike,
    objective: str,
    loads: Sequence[float],
    slos: Mapping[str, float | None] | None = None,
    gpu_cap: int | None = None,
) -> Optimum:
    """The best combination of ``grid`` and its score, walking every one (see ``score``): the
    noise-free expectation, against which a search's winner is judged. The first of equals wins.
    ValueError when no combination has a score."""
    from tasks.scoring import higher_is_better

    higher = higher_is_better(objective)
    score_of = functools.partial(
        score, runtime=runtime, workload=workload, objective=objective, loads=loads, slos=slos, gpu_cap=gpu_cap
    )
    best: tuple[dict[str, Any], float] | None = None
    for combination in combinations(grid):
        value = score_of(combination)
        if value is not None and (best is None or (value > best[1] if higher else value < best[1])):
            best = (combination, value)
    if best is None:
        raise ValueError("no combination of the grid has a score")
    return Optimum(best[0], best[1], higher, score_of)
