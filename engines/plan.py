"""From a grid to the experiments a task runs: constraints, lazy expansion, launch commands.

A grid is never materialised to count it: the total is a product, and the runnable count
enumerates only the few flags a constraint reads, times the product of the others.
"""

from __future__ import annotations

import itertools
import math
import shlex
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engines.catalogue import Catalogue
from engines.registry import UnknownEngine, engine

MAX_GRID_EXPERIMENTS = 10_000

type Combination = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """A constraint between flags: ``reason`` returns why a combination cannot run, or None."""

    flags: tuple[str, ...]
    reason: Callable[[Mapping[str, Any]], str | None]


def rules_for(runtime: str, gpus: int) -> list[Rule]:
    """What stops a combination running on ``gpus`` GPUs of this engine; none for an unknown one."""
    try:
        known = engine(runtime)
    except UnknownEngine:
        return []
    tp, dp, pp = parallel = known.parallel_flags

    def too_many_gpus(values: Mapping[str, Any]) -> str | None:
        sizes = [_size(values.get(flag)) for flag in parallel]
        needed = math.prod(sizes)
        if needed > gpus:
            return f"{tp} × {dp} × {pp} = {needed} GPUs, more than the {gpus} available"
        return None

    rules = [Rule(parallel, too_many_gpus)]
    if known.name == "sglang":

        def tp_not_divisible(values: Mapping[str, Any]) -> str | None:
            tp_size, dp_size = _size(values.get("tp-size")), _size(values.get("dp-size"))
            if tp_size % dp_size:
                return "SGLang needs tp-size divisible by dp-size"
            return None

        def lpm_without_radix(values: Mapping[str, Any]) -> str | None:
            if values.get("disable-radix-cache") is True and values.get("schedule-policy") == "lpm":
                return "schedule-policy lpm needs the radix cache, which disable-radix-cache turns off"
            return None

        rules.append(Rule(("tp-size", "dp-size"), tp_not_divisible))
        rules.append(Rule(("disable-radix-cache", "schedule-policy"), lpm_without_radix))
    for first, second in known.exclusive_switches:
        rules.append(Rule((first, second), _both_on(first, second)))
    return rules


def _both_on(first: str, second: str) -> Callable[[Mapping[str, Any]], str | None]:
    def reason(values: Mapping[str, Any]) -> str | None:
        if values.get(first) is True and values.get(second) is True:
            return f"{first} and {second} cannot be on together"
        return None

    return reason


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


@dataclass(frozen=True)
class PlanSummary:
    total: int
    runnable: int
    # Why combinations cannot run, with how many each reason removes. A plain dict: a Counter
    # answers 0 to templates looking up ``skipped.items``.
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_count(self) -> int:
        return self.total - self.runnable


def _active_rules(grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule]) -> list[Rule]:
    return [rule for rule in rules if any(flag in grid for flag in rule.flags)]


def canonical(grid: Mapping[str, Any], same_flag: Mapping[str, str] | None) -> dict[str, Any]:
    """The grid (or a combination) keyed by canonical flag names, the names the rules read."""
    if not same_flag:
        return dict(grid)
    return {same_flag.get(flag, flag): values for flag, values in grid.items()}


def summarize(
    grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
) -> PlanSummary:
    """Total and runnable combinations with the reasons for the skipped ones, without expanding the grid."""
    if not grid:
        return PlanSummary(0, 0)
    # Enumerate by the grid's own names, as runnable() does, and judge each combination by the
    # canonical names the rules read: both then agree even on a grid that spells a flag twice.
    names = same_flag or {}
    total = math.prod(len(values) for values in grid.values())
    active = _active_rules(canonical(grid, same_flag), rules)
    read_flags = {flag for rule in active for flag in rule.flags}
    read = [flag for flag in grid if names.get(flag, flag) in read_flags]
    others = math.prod(len(grid[flag]) for flag in grid if flag not in read)
    skipped: Counter[str] = Counter()
    runnable_read = 0
    for values in itertools.product(*(grid[flag] for flag in read)):
        combination = canonical(dict(zip(read, values, strict=True)), same_flag)
        reason = _first_reason(combination, active)
        if reason is None:
            runnable_read += 1
        else:
            skipped[reason] += others
    return PlanSummary(total, runnable_read * others, dict(skipped))


def skip_reason(
    combination: Mapping[str, Any], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
) -> str | None:
    """Why this one combination cannot run, or None when it can (for samplers that pick combinations)."""
    return _first_reason(canonical(combination, same_flag), rules)


def _first_reason(combination: Mapping[str, Any], rules: Sequence[Rule]) -> str | None:
    for rule in rules:
        reason = rule.reason(combination)
        if reason:
            return reason
    return None


def runnable(
    grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
) -> Iterator[Combination]:
    """The runnable combinations, lazily, in plan order (the grid's flag order, last flag fastest)."""
    flags = list(grid)
    active = _active_rules(canonical(grid, same_flag), rules)
    for values in itertools.product(*(grid[flag] for flag in flags)):
        combination = dict(zip(flags, values, strict=True))
        if not active or _first_reason(canonical(combination, same_flag), active) is None:
            yield combination


def command_arguments(flag: str, value: Any, catalogue: Catalogue | None) -> list[str]:
    """One flag's part of a command line: ``--tp-size 2``; a switch is bare when on, and when off
    either omitted or given as its ``--no-`` form where the engine has one."""
    known = catalogue.lookup(flag) if catalogue else None
    if known is not None:
        flag = known.name  # the engine's own long name, whatever alias the grid used (vLLM's "tp" is "-tp")
    if isinstance(value, bool):
        if known is not None and known.kind != "switch":
            return [f"--{flag}", "true" if value else "false"]
        if value:
            return [f"--{flag}"]
        return [f"--{known.negation}"] if known is not None and known.negation else []
    if known is not None and known.kind == "list" and isinstance(value, str):
        return [f"--{flag}", *value.split()]
    return [f"--{flag}", value if isinstance(value, str) else _number(value)]


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)  # a float's repr is its JSON spelling


def command_renderer(
    runtime: str,
    model: str,
    flags: Sequence[str],
    *,
    port: int | str = 30000,
    catalogue: Catalogue | None,
    launcher: Sequence[str] | None = None,
) -> Callable[[Mapping[str, Any]], str]:
    """A function from a combination of ``flags`` to its launch command, with everything that does not
    depend on the values (the launcher, each flag's spelling and kind) worked out once.

    ``launcher`` replaces the engine's own (``{model}`` in a word is the model), e.g. a container.
    """
    words = launcher if launcher is not None else engine(runtime).launcher
    prefix = shlex.join(
        [word.replace("{model}", model) for word in words] + ["--host", "127.0.0.1", "--port", str(port)]
    )
    parts: dict[tuple[str, Any], str] = {}

    def render(combination: Mapping[str, Any]) -> str:
        words = [prefix]
        for flag, value in combination.items():
            key = (flag, value if not isinstance(value, bool) else ("bool", value))
            part = parts.get(key)
            if part is None:
                part = parts[key] = shlex.join(command_arguments(flag, value, catalogue))
            if part:
                words.append(part)
        return " ".join(words)

    return render


def launch_command(
    runtime: str,
    model: str,
    combination: Mapping[str, Any],
    *,
    port: int | str = 30000,
    catalogue: Catalogue | None,
    launcher: Sequence[str] | None = None,
) -> str:
    """The exact, shell-quoted command that starts the engine for one combination."""
    render = command_renderer(runtime, model, list(combination), port=port, catalogue=catalogue, launcher=launcher)
    return render(combination)
