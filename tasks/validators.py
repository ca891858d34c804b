"""Checks of a task's own fields, shared by the model, the form and the API serializer, and of its
grid against its engine and plan."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from engines.catalogue import Catalogue
from engines.checks import check_grid, errors, same_flag
from engines.plan import MAX_GRID_EXPERIMENTS, PlanTooLarge, rules_for, summarize
from tasks.states import OptimizationStrategy

MAX_CONCURRENCY_LEVELS = 20
MAX_CONCURRENCY = 100_000
MAX_REQUEST_RATE = 100_000.0


def clean_concurrency_levels(value: Any) -> list[int]:
    """A list of 1 to 20 distinct positive integers (a comma-separated string is accepted too)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        try:
            value = [int(part) for part in parts]
        except ValueError:
            raise ValidationError("Give whole numbers separated by commas, e.g. 1, 8, 32.") from None
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one concurrency level, e.g. 1, 8, 32.")
    if len(value) > MAX_CONCURRENCY_LEVELS:
        raise ValidationError(f"At most {MAX_CONCURRENCY_LEVELS} concurrency levels.")
    problems = [
        f"[{index}]: {level!r} is not a whole number from 1 to 100000"
        for index, level in enumerate(value)
        if type(level) is not int or not 1 <= level <= MAX_CONCURRENCY
    ]
    if problems:
        raise ValidationError(problems)
    return sorted(set(value))


def clean_request_rates(value: Any) -> list[float]:
    """A list of 1 to 20 distinct positive request rates (requests/s; a comma-separated string too)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        try:
            value = [float(part) for part in parts]
        except ValueError:
            raise ValidationError("Give numbers of requests per second separated by commas, e.g. 0.5, 2, 8.") from None
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one request rate, e.g. 0.5, 2, 8.")
    if len(value) > MAX_CONCURRENCY_LEVELS:
        raise ValidationError(f"At most {MAX_CONCURRENCY_LEVELS} request rates.")
    problems = [
        f"[{index}]: {rate!r} is not a number of requests per second above 0 and at most 100000"
        for index, rate in enumerate(value)
        if type(rate) not in (int, float) or not 0 < rate <= MAX_REQUEST_RATE
    ]
    if problems:
        raise ValidationError(problems)
    return sorted({float(rate) for rate in value})


def plan_problems(
    grid: dict[str, list[Any]], runtime: str, catalogue: Catalogue | None, gpus: int, strategy: str
) -> dict[str, list[str]]:
    """What a task's (valid) grid cannot be, by field: values its engine release refuses, flags its
    rules relate with too many values to judge, a grid search longer than a grid search may be."""
    found = errors(check_grid(grid, catalogue)) if catalogue else []
    if found:
        return {"parameters": [str(finding) for finding in found]}
    try:
        summary = summarize(grid, rules_for(runtime, gpus, grid), same_flag(list(grid), catalogue))
    except PlanTooLarge as refusal:
        return {"parameters": [str(refusal)]}
    # A grid none of whose combinations can run is saved all the same (the plan says why, and more
    # GPUs fix it); only an oversized grid search is refused.
    if strategy == OptimizationStrategy.GRID and summary.runnable > MAX_GRID_EXPERIMENTS:
        return {
            "optimization_strategy": [
                f"The grid has {summary.runnable:,} runnable combinations; a grid search runs at most "
                f"{MAX_GRID_EXPERIMENTS:,}. Choose random or bayesian search with a max experiments cap."
            ]
        }
    return {}
