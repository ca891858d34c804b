"""Checks of a task's own fields, shared by the model, the form and the API serializer, and of its
grid against its engine and plan."""

from __future__ import annotations

from collections.abc import Callable
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
    levels = _number_list(
        value,
        parse=int,
        fits=lambda level: type(level) is int and 1 <= level <= MAX_CONCURRENCY,
        numbers="whole numbers",
        one="concurrency level",
        each="a whole number from 1 to 100000",
        example="1, 8, 32",
    )
    return sorted(set(levels))


def clean_request_rates(value: Any) -> list[float]:
    """A list of 1 to 20 distinct positive request rates (requests/s; a comma-separated string too)."""
    rates = _number_list(
        value,
        parse=float,
        fits=lambda rate: type(rate) in (int, float) and 0 < rate <= MAX_REQUEST_RATE,
        numbers="numbers of requests per second",
        one="request rate",
        each="a number of requests per second above 0 and at most 100000",
        example="0.5, 2, 8",
    )
    return sorted({float(rate) for rate in rates})


def _number_list(
    value: Any,
    *,
    parse: Callable[[str], Any],
    fits: Callable[[Any], bool],
    numbers: str,
    one: str,
    each: str,
    example: str,
) -> list[Any]:
    """A load list's checks: 1 to 20 numbers, each one that ``fits``, as a list or a comma-separated string."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        try:
            value = [parse(part) for part in parts]
        except ValueError:
            raise ValidationError(f"Give {numbers} separated by commas, e.g. {example}.") from None
    if not isinstance(value, list) or not value:
        raise ValidationError(f"Give at least one {one}, e.g. {example}.")
    if len(value) > MAX_CONCURRENCY_LEVELS:
        raise ValidationError(f"At most {MAX_CONCURRENCY_LEVELS} {one}s.")
    problems = [f"[{index}]: {item!r} is not {each}" for index, item in enumerate(value) if not fits(item)]
    if problems:
        raise ValidationError(problems)
    return value


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
