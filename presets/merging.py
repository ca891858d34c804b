"""Merging parameter presets: pure functions, no Django.

A preset is a name and a grid: each flag maps to the list of values to try. Presets
are merged in the order the user chose; that order matters for ``last_wins`` and for
the order of non-numeric values. Given, in this order::

    A = {"tp-size": [1, 2], "mem-fraction": [0.8]}
    B = {"tp-size": [2, 4], "schedule-policy": ["lpm"]}

- ``union`` (default) keeps every value once; numbers come out ascending::

      {"tp-size": [1, 2, 4], "mem-fraction": [0.8], "schedule-policy": ["lpm"]}

  A flag that two or more presets set with no value common to all of them is a
  ``disjoint`` conflict: no single experiment satisfies every preset.
- ``intersection`` keeps the flags every preset sets, with the values they share::

      {"tp-size": [2]}

  with a ``missing`` conflict for mem-fraction and schedule-policy (a flag all set
  but with nothing in common is ``no_common_values``).
- ``last_wins``: a later preset replaces a flag's values wholesale::

      {"tp-size": [2, 4], "mem-fraction": [0.8], "schedule-policy": ["lpm"]}

  with an ``overridden`` conflict for tp-size (was [1, 2], now [2, 4]).

Values are compared type-aware: ``true`` and ``1`` differ, ``1`` and ``1.0`` are the
same value (the first spelling is kept). Inputs are expected normalised by
``presets.validators.normalize_parameters``: lists already free of duplicates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

type Scalar = str | int | float | bool
type Grid = dict[str, list[Scalar]]


class MergeStrategy(StrEnum):
    UNION = "union"
    INTERSECTION = "intersection"
    LAST_WINS = "last_wins"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def summary(self) -> str:
        return STRATEGY_SUMMARIES[self]


STRATEGY_SUMMARIES = {
    MergeStrategy.UNION: "Every value of every preset, each once: explores all combinations.",
    MergeStrategy.INTERSECTION: "Only flags every preset sets, with the values they all share.",
    MergeStrategy.LAST_WINS: "Later presets replace earlier ones flag by flag: a base plus overrides.",
}


class ConflictKind(StrEnum):
    DISJOINT = "disjoint"
    MISSING = "missing"
    NO_COMMON_VALUES = "no_common_values"
    OVERRIDDEN = "overridden"
    ENGINES = "engines"  # presets written for different engines


class DuplicatePresetError(ValueError):
    """The same preset was selected more than once."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is selected more than once")
        self.name = name


@dataclass(frozen=True)
class PresetInput:
    name: str
    parameters: Mapping[str, Sequence[Scalar]]


@dataclass(frozen=True)
class Conflict:
    parameter: str
    kind: ConflictKind
    reason: str
    # The presets involved, in selection order, each with the values it wanted.
    presets: tuple[str, ...] = ()
    values: Mapping[str, Sequence[Scalar]] = field(default_factory=dict)
    overridden_by: str | None = None
    previous_values: tuple[Scalar, ...] | None = None
    new_values: tuple[Scalar, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "parameter": self.parameter,
            "kind": str(self.kind),
            "reason": self.reason,
            "presets": list(self.presets),
        }
        if self.values:
            data["values"] = {name: list(values) for name, values in self.values.items()}
        if self.kind is ConflictKind.OVERRIDDEN:
            data["overridden_by"] = self.overridden_by
            data["previous_values"] = list(self.previous_values or ())
            data["new_values"] = list(self.new_values or ())
        return data


@dataclass(frozen=True)
class MergeResult:
    parameters: Grid
    applied_presets: list[str]
    conflicts: list[Conflict]
    # For each flag, aligned with its values: the presets that contributed each value.
    sources: dict[str, list[list[str]]]
    strategy: MergeStrategy = MergeStrategy.UNION
    # Sentences about flags merged because they are one flag under two names.
    notes: list[str] = field(default_factory=list)

    @property
    def combinations(self) -> int:
        return count_combinations(self.parameters)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "parameters": self.parameters,
            "applied_presets": self.applied_presets,
            "conflicts": [conflict.as_dict() for conflict in self.conflicts],
            "sources": self.sources,
            "combinations": self.combinations,
        }
        if self.notes:  # only when aliases were joined: the seed's response shape otherwise
            data["notes"] = self.notes
        return data


# Python treats True == 1 and hash(True) == hash(1); these keys keep booleans apart
# while 1 and 1.0 share a key, as they should.
_BOOL_KEYS = {True: ("bool", True), False: ("bool", False)}


def identity(value: Scalar) -> object:
    """The key two values are compared by: type-aware for booleans, numeric otherwise."""
    if type(value) is bool:
        return _BOOL_KEYS[value]
    return value


def _keys(values: Sequence[Scalar]) -> Sequence[object]:
    # A list without a boolean is its own list of keys. `True in values` (C speed) also finds
    # 1 and 1.0, so a list holding 0 or 1 is looked at once more, still at C speed, before
    # any per-value work.
    if (True in values or False in values) and bool in set(map(type, values)):
        return [identity(value) for value in values]
    return values


def _value_of(key: object) -> Scalar:
    """The value a key stands for: keys are the values themselves, except the boolean tuples."""
    # Keys are typed as object so any hashable fits; one that is not a tuple is a Scalar.
    return key[1] if type(key) is tuple else key  # type: ignore[return-value]


def count_combinations(grid: Mapping[str, Sequence[Scalar]]) -> int:
    """How many experiments the grid expands to; an empty grid has nothing to run."""
    if not grid:
        return 0
    return math.prod(len(values) for values in grid.values())


MAX_VALUES_IN_A_SENTENCE = 8


def format_value(value: Scalar) -> str:
    """One value as written on a command line: true, 0.85, lpm."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value if isinstance(value, str) else repr(value)


def format_values(values: Sequence[Scalar], limit: int | None = MAX_VALUES_IN_A_SENTENCE) -> str:
    """Values as a user reads them in a sentence, comma-separated; a long list is cut short."""
    if limit is not None and len(values) > limit:
        shown = ", ".join(map(format_value, values[:limit]))
        return f"{shown}, … ({len(values) - limit} more)"
    return ", ".join(map(format_value, values))


def grid_summary(grid: Mapping[str, Sequence[Scalar]]) -> str:
    """``tp-size 1, 2 · schedule-policy fcfs, lpm``: a grid in one line."""
    return " · ".join(f"{flag} {format_values(values, limit=None)}" for flag, values in grid.items())


def merge(
    presets: Sequence[PresetInput],
    strategy: MergeStrategy | str = MergeStrategy.UNION,
    same_flag: Mapping[str, str] | None = None,
    same_value: Mapping[str, Callable[[Scalar], Scalar | None]] | None = None,
) -> MergeResult:
    """Merge ``presets`` in the given order. Raises DuplicatePresetError, ValueError for a bad strategy.

    ``same_flag`` maps flag names to the flag they stand for (an engine's aliases, e.g.
    ``tensor-parallel-size`` -> ``tp-size``): such flags merge as one, under the name the
    user wrote first. ``same_value`` maps a flag to what the engine reads each of its values as
    (``"32k"`` -> 32000 for a size): values the engine reads alike merge as one, as that number.
    """
    strategy = MergeStrategy(strategy)
    seen: set[str] = set()
    for preset in presets:
        folded = preset.name.casefold()
        if folded in seen:
            raise DuplicatePresetError(preset.name)
        seen.add(folded)
    names = [preset.name for preset in presets]
    notes: list[str] = []
    if same_value:
        presets, notes = _read_values(presets, same_value)
    if same_flag:
        presets, alias_notes = _join_aliases(presets, same_flag)
        notes += alias_notes
    if strategy is MergeStrategy.UNION:
        parameters, sources, conflicts = _union(presets)
    elif strategy is MergeStrategy.INTERSECTION:
        parameters, sources, conflicts = _intersection(presets)
    else:
        parameters, sources, conflicts = _last_wins(presets)
    return MergeResult(parameters, names, conflicts, sources, strategy, notes)


def _read_values(
    presets: Sequence[PresetInput], same_value: Mapping[str, Callable[[Scalar], Scalar | None]]
) -> tuple[list[PresetInput], list[str]]:
    """The presets with each value of a ``same_value`` flag written as the number it stands for."""
    read: list[PresetInput] = []
    notes: list[str] = []
    for preset in presets:
        grid = dict(preset.parameters)
        for flag, values in preset.parameters.items():
            if flag not in same_value:
                continue
            numbers = [number if (number := same_value[flag](value)) is not None else value for value in values]
            if numbers != list(values):
                notes.extend(
                    f"{flag} {format_value(value)} in {preset.name} is {format_value(number)}: merged as {number}"
                    for value, number in zip(values, numbers, strict=True)
                    if type(value) is not type(number) or value != number
                )
                grid[flag] = numbers
        read.append(PresetInput(preset.name, grid))
    return read, notes


def _join_aliases(presets: Sequence[PresetInput], same_flag: Mapping[str, str]) -> tuple[list[PresetInput], list[str]]:
    """The presets with every alias renamed to the spelling first used in the selection."""
    spelling: dict[str, str] = {}  # canonical flag -> the name the user wrote first
    for preset in presets:
        for flag in preset.parameters:
            spelling.setdefault(same_flag.get(flag, flag), flag)
    joined: list[PresetInput] = []
    notes: list[str] = []
    for preset in presets:
        if all(spelling[same_flag.get(flag, flag)] == flag for flag in preset.parameters):
            joined.append(preset)
            continue
        grid: dict[str, list[Scalar]] = {}
        for flag, values in preset.parameters.items():
            shown = spelling[same_flag.get(flag, flag)]
            if shown != flag:
                notes.append(f"{flag} in {preset.name} is the same flag as {shown}: merged as {shown}")
            merged = grid.setdefault(shown, [])
            seen = set(_keys(merged))
            merged += [value for key, value in zip(_keys(values), values, strict=True) if key not in seen]
        joined.append(PresetInput(preset.name, grid))
    return joined, notes


def _is_numeric(values: Sequence[Scalar]) -> bool:
    types = set(map(type, values))
    return bool(types) and types <= {int, float}


def _union(presets: Sequence[PresetInput]) -> tuple[Grid, dict[str, list[list[str]]], list[Conflict]]:
    setters: dict[str, list[PresetInput]] = {}
    for preset in presets:
        for flag in preset.parameters:
            setters.setdefault(flag, []).append(preset)

    parameters: Grid = {}
    sources: dict[str, list[list[str]]] = {}
    conflicts: list[Conflict] = []
    for flag, wanting in setters.items():
        contributors = _contributors(flag, wanting)
        values = list(map(_value_of, contributors))
        if _is_numeric(values):
            order = sorted(range(len(values)), key=values.__getitem__)
            values = [values[index] for index in order]
            holders = list(contributors.values())
            sources[flag] = [holders[index] for index in order]
        else:
            sources[flag] = list(contributors.values())
        parameters[flag] = values
        if len(wanting) > 1 and max(map(len, sources[flag])) < len(wanting):
            conflicts.append(_disjoint(flag, wanting, len(values)))
    return parameters, sources, conflicts


def _contributors(flag: str, wanting: Sequence[PresetInput]) -> dict[object, list[str]]:
    """Each value's key -> the names of the presets holding it, in selection order.

    A dict keeps the first spelling of a key (1 before 1.0), and its insertion order is the
    first-seen order of values. Presets often share a list exactly (tp-size [1, 2]): those are
    walked once, so the Python-level work grows with the distinct lists, not the presets.
    """
    groups: dict[tuple[object, ...], tuple[Sequence[object], list[int]]] = {}
    for position, preset in enumerate(wanting):
        keys = _keys(preset.parameters[flag])
        group = groups.setdefault(tuple(keys), (keys, []))
        group[1].append(position)
    names = [preset.name for preset in wanting]
    if len(groups) == 1:
        [(keys, _)] = groups.values()
        return dict.fromkeys(keys, names)  # one shared list: every value comes from every setter
    holders: dict[object, list[int]] = {}
    get = holders.get
    for keys, positions in groups.values():
        for key in keys:
            held = get(key)
            if held is None:
                holders[key] = list(positions)
            else:
                held += positions
    return {key: [names[position] for position in sorted(held)] for key, held in holders.items()}


_SMALL_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


def _disjoint(flag: str, wanting: Sequence[PresetInput], merged_count: int) -> Conflict:
    wants = "; ".join(f"{p.name} wants {format_values(p.parameters[flag])}" for p in wanting)
    if merged_count == 2:
        tries = "both"
    else:
        tries = "all " + (_SMALL_NUMBERS[merged_count] if merged_count < len(_SMALL_NUMBERS) else str(merged_count))
    return Conflict(
        parameter=flag,
        kind=ConflictKind.DISJOINT,
        reason=f"{flag}: {wants} — union will try {tries}",
        presets=tuple(p.name for p in wanting),
        values={p.name: list(p.parameters[flag]) for p in wanting},
    )


def _intersection(presets: Sequence[PresetInput]) -> tuple[Grid, dict[str, list[list[str]]], list[Conflict]]:
    parameters: Grid = {}
    sources: dict[str, list[list[str]]] = {}
    conflicts: list[Conflict] = []
    if not presets:
        return parameters, sources, conflicts
    names = [preset.name for preset in presets]
    # Every flag any preset sets, in first-seen order, so flags only later presets set are reported too.
    flags = list(dict.fromkeys(flag for preset in presets for flag in preset.parameters))
    for flag in flags:
        lacking = [preset.name for preset in presets if flag not in preset.parameters]
        if lacking:
            having = [preset.name for preset in presets if flag in preset.parameters]
            conflicts.append(
                Conflict(
                    parameter=flag,
                    kind=ConflictKind.MISSING,
                    reason=f"{flag} is dropped: not set in {_join(lacking)} (only in {_join(having)})",
                    presets=tuple(lacking),
                    values={p.name: list(p.parameters[flag]) for p in presets if flag in p.parameters},
                )
            )
            continue
        first = presets[0].parameters[flag]
        common = set(_keys(first))
        for preset in presets[1:]:
            common.intersection_update(_keys(preset.parameters[flag]))
        kept = [value for key, value in zip(_keys(first), first, strict=True) if key in common]
        if not kept:
            wants = "; ".join(f"{p.name} wants {format_values(p.parameters[flag])}" for p in presets)
            conflicts.append(
                Conflict(
                    parameter=flag,
                    kind=ConflictKind.NO_COMMON_VALUES,
                    reason=f"{flag} is dropped: no value common to all presets ({wants})",
                    presets=tuple(names),
                    values={p.name: list(p.parameters[flag]) for p in presets},
                )
            )
            continue
        parameters[flag] = kept
        sources[flag] = [list(names) for _ in kept]
    return parameters, sources, conflicts


def _last_wins(presets: Sequence[PresetInput]) -> tuple[Grid, dict[str, list[list[str]]], list[Conflict]]:
    parameters: Grid = {}
    owner: dict[str, str] = {}
    conflicts: list[Conflict] = []
    for preset in presets:
        for flag, values in preset.parameters.items():
            previous = parameters.get(flag)
            if previous is not None and set(_keys(previous)) != set(_keys(values)):
                conflicts.append(
                    Conflict(
                        parameter=flag,
                        kind=ConflictKind.OVERRIDDEN,
                        reason=(
                            f"{flag} overridden by {preset.name} "
                            f"(was [{format_values(previous)}], now [{format_values(values)}])"
                        ),
                        presets=(owner[flag], preset.name),
                        values={owner[flag]: list(previous), preset.name: list(values)},
                        overridden_by=preset.name,
                        previous_values=tuple(previous),
                        new_values=tuple(values),
                    )
                )
            parameters[flag] = list(values)
            owner[flag] = preset.name
    sources = {flag: [[owner[flag]] for _ in values] for flag, values in parameters.items()}
    return parameters, sources, conflicts


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
