"""How a task's objective and SLOs score a benchmark's levels (``tasks.benchmark.LevelResult``).

A level meets its SLOs when some request succeeded and none of these is over its limit (a None
limit is no limit): ``ttft_p90_ms`` and ``tpot_p90_ms`` (p90 over the succeeded requests, ms),
``e2e_p99_s`` (s) and ``min_success_rate`` (0..1). A level that stopped early misses them.

The score is the objective at the best level meeting every SLO:

- ``maximize_throughput``: output tokens/s; ``maximize_throughput_per_gpu``: the same ÷ the GPUs
  the configuration ran on, so 8 × tp 1 and 1 × tp 8 compare fairly; ``maximize_goodput``: the
  level's load, so with SLOs the highest load meeting every one. Higher is better.
- ``minimize_latency`` (E2E p50, s), ``minimize_ttft`` and ``minimize_tpot`` (p50, ms): lower is better.

Early stop: a level's SLO can no longer be met once more than 10 % of its requests are over the
p90 TTFT or TPOT limit, more than 1 % over the p99 E2E limit, or more have failed than the
minimum success rate allows (``EarlyStop``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the benchmark imports this module: its classes are read here, never built
    from tasks.benchmark import LevelResult, RequestResult

type Slos = Mapping[str, float | None]

OBJECTIVES: dict[str, tuple[Callable[[LevelResult, int], float | None], bool]] = {
    # objective: (what it reads from a level run on so many GPUs, whether higher is better)
    "maximize_throughput": (lambda level, gpus: level.output_tokens_per_s, True),
    "maximize_throughput_per_gpu": (lambda level, gpus: level.output_tokens_per_s / gpus, True),
    "maximize_goodput": (lambda level, gpus: level.concurrency, True),
    "minimize_latency": (lambda level, gpus: level.e2e_s["p50"], False),
    "minimize_ttft": (lambda level, gpus: level.ttft_ms["p50"], False),
    "minimize_tpot": (lambda level, gpus: level.tpot_ms["p50"], False),
}
SLO_NAMES = ("ttft_p90_ms", "tpot_p90_ms", "e2e_p99_s", "min_success_rate")


def higher_is_better(objective: str) -> bool:
    return OBJECTIVES[objective][1]


EARLY_STOPS = [
    # SLO, its label, the share of a level's requests over it that decides, what it reads, unit
    ("ttft_p90_ms", "p90 TTFT", 0.10, lambda r: r.ttft_s * 1000 if r.ttft_s is not None else None, "ms"),
    ("tpot_p90_ms", "p90 TPOT", 0.10, lambda r: r.tpot_s * 1000 if r.tpot_s is not None else None, "ms"),
    ("e2e_p99_s", "p99 E2E", 0.01, lambda r: r.e2e_s, "s"),
]


class EarlyStop:
    """A level's results counted as they end: ``add`` says why its ``planned`` requests can no longer
    meet the SLOs once that is so, else ""."""

    def __init__(self, planned: int, slos: Slos) -> None:
        self.planned = planned
        self.checks = [(check, limit) for check in EARLY_STOPS if (limit := slos.get(check[0])) is not None]
        self.minimum = slos.get("min_success_rate")
        self.over = dict.fromkeys((check[0] for check, _ in self.checks), 0)
        self.failed = 0

    def add(self, result: RequestResult) -> str:
        if not result.ok:
            self.failed += 1
            if self.minimum is not None and self.failed > _allowed(1 - self.minimum, self.planned):
                rate = _number(self.minimum * 100)
                return f"{self.failed} of {self.planned} requests failed, more than a success rate of {rate}% allows"
            return ""
        for (name, label, share, read, unit), limit in self.checks:
            if (value := read(result)) is not None and value > limit:
                self.over[name] += 1
                if self.over[name] > _allowed(share, self.planned):
                    over = f"{self.over[name]} of {self.planned} requests over the {label} limit"
                    return f"{over} of {_number(limit)} {unit}"
        return ""


def _allowed(share: float, planned: int) -> float:
    # Rounded: (1 - 0.9) * 20 is 1.9999999999999996, and 2 failures in 20 still meet 90 %.
    return round(share * planned, 9)


def slo_violations(level: LevelResult, slos: Slos) -> list[str]:
    """Each SLO the level misses, as ``p90 TTFT 412 ms > 300 ms``; a None limit is no limit. A level
    stopped early misses its SLO by definition: ``stopped early: 11 of 100 requests over …``."""
    unknown = set(slos) - set(SLO_NAMES)
    if unknown:
        raise ValueError(f"unknown SLO {', '.join(sorted(unknown))}; known: {', '.join(SLO_NAMES)}")
    found = []
    limits = [
        ("ttft_p90_ms", "p90 TTFT", level.ttft_ms["p90"], "ms"),
        ("tpot_p90_ms", "p90 TPOT", level.tpot_ms["p90"], "ms"),
        ("e2e_p99_s", "p99 E2E", level.e2e_s["p99"], "s"),
    ]
    for name, label, value, unit in limits:
        limit = slos.get(name)
        if limit is not None and value is not None and value > limit:
            found.append(f"{label} {_number(value)} {unit} > {_number(limit)} {unit}")
    minimum = slos.get("min_success_rate")
    if minimum is not None and level.success_rate < minimum:
        found.append(f"success rate {_number(level.success_rate * 100)}% < {_number(minimum * 100)}%")
    if level.stopped_early:
        found.append(f"stopped early: {level.stopped_early}")
    return found


def has_limits(slos: Slos) -> bool:
    return any(limit is not None for limit in slos.values())


def meets_slos(level: LevelResult, slos: Slos) -> bool:
    """Some request succeeded and no SLO is missed."""
    return bool(level.succeeded) and not slo_violations(level, slos)


@dataclass(frozen=True)
class Scored:
    value: float | None  # the objective at ``level``; None when no level meets every SLO
    level: LevelResult | None  # the level scored, or else the closest to meeting the SLOs
    reason: str | None  # why there is no value


def score(
    results: Sequence[LevelResult], objective: str, slos: Slos, *, gpus: int = 1
) -> tuple[float | None, str | None]:
    """The objective's value at the best level that meets every SLO, or None and why none does
    (see ``score_levels``)."""
    scored = score_levels(results, objective, slos, gpus=gpus)
    return scored.value, scored.reason


def score_levels(results: Sequence[LevelResult], objective: str, slos: Slos, *, gpus: int = 1) -> Scored:
    """The objective's value at the best level that meets every SLO, or None and why none does.

    Throughput (output tokens/s), throughput per GPU (÷ ``gpus``, the GPUs the configuration ran on)
    and goodput (the level's load: with SLOs, the highest load meeting every one) are higher-better;
    latency (E2E p50, s), TTFT p50 and TPOT p50 (ms) are lower-better. A level where no request
    succeeded is never chosen. When every level misses an SLO, the reason names what the closest
    level missed (fewest misses, lowest level first): ``violates SLO (p90 TTFT 412 ms > 300 ms)``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    if gpus < 1:
        raise ValueError(f"a configuration runs on at least 1 GPU, not {gpus}")
    read, higher = OBJECTIVES[objective]
    candidates = [level for level in results if level.succeeded]
    if not candidates:
        return Scored(None, None, "no request succeeded" if results else "no benchmark results")
    violations = {id(level): slo_violations(level, slos) for level in candidates}
    meeting = [level for level in candidates if not violations[id(level)] and read(level, gpus) is not None]
    if meeting:
        best = (max if higher else min)(meeting, key=lambda level: read(level, gpus) or 0.0)
        return Scored(read(best, gpus), best, None)
    closest = min(candidates, key=lambda level: (len(violations[id(level)]), level.concurrency))
    return Scored(None, closest, f"violates SLO ({'; '.join(violations[id(closest)])})")


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}".removesuffix(".0")
    return text if text != "-0" else "0"
