"""What changed between two versions of a preset: pure functions, no Django.

A version's content is ``{"name", "description", "category", "runtime", "parameters",
"metadata"}``; a missing key counts as its empty default ("" or {}). Given::

    old = {"name": "fast", "parameters": {"tp-size": [1, 2], "mem-fraction": [0.8]}}
    new = {"name": "faster", "parameters": {"tp-size": [2, 4], "chunked-prefill": [True]}}

``diff_contents(old, new)`` reports chunked-prefill added with [True], mem-fraction removed
with [0.8], tp-size changed (4 added, 1 removed) and the name changed from "fast" to
"faster"; its summary reads "1 flag added, 1 removed, 1 changed; name changed".

Values compare by their JSON spelling: ``1``, ``1.0`` and ``true`` are three different
values, so a flag set to 1 where it was true has changed. The order of flags and of a
flag's values is what the user wrote, so an order alone that differs is reported too.
Metadata is compared as a whole, its key order aside.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

FIELDS = ("name", "description", "category", "runtime", "metadata")


@dataclass(frozen=True)
class ParameterChange:
    flag: str
    added: list[Any]  # values in new, not in old, in new's order
    removed: list[Any]  # values in old, not in new, in old's order
    # The same values in another order; never set alongside added or removed values.
    reordered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "added": self.added, "removed": self.removed, "reordered": self.reordered}


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class ContentDiff:
    parameters_added: dict[str, list[Any]]  # flags only in new, in new's order
    parameters_removed: dict[str, list[Any]]  # flags only in old, in old's order
    parameters_changed: list[ParameterChange]  # flags in both whose values differ, in new's order
    fields_changed: list[FieldChange]  # in the order of FIELDS
    flags_reordered: bool = False  # the flags both versions set appear in another order

    @property
    def is_empty(self) -> bool:
        return not (
            self.parameters_added
            or self.parameters_removed
            or self.parameters_changed
            or self.fields_changed
            or self.flags_reordered
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "parameters": {
                "added": self.parameters_added,
                "removed": self.parameters_removed,
                "changed": [change.as_dict() for change in self.parameters_changed],
            },
            "fields": [change.as_dict() for change in self.fields_changed],
            "flags_reordered": self.flags_reordered,
        }

    def summary(self) -> str:
        """``2 flags added, 1 removed, 3 changed; name and description changed`` in one line."""
        flags: list[str] = []
        for count, verb in (
            (len(self.parameters_added), "added"),
            (len(self.parameters_removed), "removed"),
            (len(self.parameters_changed), "changed"),
        ):
            if count:
                noun = "" if flags else (" flag" if count == 1 else " flags")
                flags.append(f"{count}{noun} {verb}")
        if self.flags_reordered:
            flags.append("flags reordered")
        parts = [", ".join(flags)] if flags else []
        if self.fields_changed:
            parts.append(_join([change.field for change in self.fields_changed]) + " changed")
        return "; ".join(parts) or "no change"


def diff_contents(old: Mapping[str, Any], new: Mapping[str, Any]) -> ContentDiff:
    """What turns ``old`` into ``new``: flags and values added, removed or reordered, fields changed."""
    old_grid: Mapping[str, Sequence[Any]] = _get(old, "parameters", {})
    new_grid: Mapping[str, Sequence[Any]] = _get(new, "parameters", {})

    added = {flag: list(values) for flag, values in new_grid.items() if flag not in old_grid}
    removed = {flag: list(values) for flag, values in old_grid.items() if flag not in new_grid}
    changed: list[ParameterChange] = []
    for flag, new_values in new_grid.items():
        if flag in old_grid:
            change = _parameter_change(flag, old_grid[flag], new_values)
            if change is not None:
                changed.append(change)
    common_in_old = [flag for flag in old_grid if flag in new_grid]
    common_in_new = [flag for flag in new_grid if flag in old_grid]

    fields: list[FieldChange] = []
    for name in FIELDS:
        default: Any = {} if name == "metadata" else ""
        before, after = _get(old, name, default), _get(new, name, default)
        if name == "metadata":
            same = json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
        else:
            same = before == after
        if not same:
            fields.append(FieldChange(name, before, after))
    return ContentDiff(added, removed, changed, fields, common_in_old != common_in_new)


def _get(content: Mapping[str, Any], key: str, default: Any) -> Any:
    value = content.get(key)
    return default if value is None else value


def _parameter_change(flag: str, old: Sequence[Any], new: Sequence[Any]) -> ParameterChange | None:
    old_keys, new_keys = _keys(old, new)
    if old_keys == new_keys:
        return None
    # Lists hold no duplicates, so each value is found by its key in a set, never by a scan.
    in_old, in_new = set(old_keys), set(new_keys)
    added = [value for key, value in zip(new_keys, new, strict=True) if key not in in_old]
    removed = [value for key, value in zip(old_keys, old, strict=True) if key not in in_new]
    return ParameterChange(flag, added, removed, reordered=not added and not removed)


_PLAIN = frozenset({str, int, bool, type(None)})
_SCALARS = _PLAIN | {float}
_NUMBERS = frozenset({int, float, bool})


def _keys(old: Sequence[Any], new: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """A key per value of both lists, two keys equal exactly when the JSON spellings are equal.

    Calling json.dumps on every value is too slow for grids of thousands of values, so the
    keys are found at C speed where Python's equality already agrees with JSON: values
    are their own keys when at most one of bool, int and float occurs (true == 1 == 1.0 in
    Python), and ``(type, value)`` pairs keep those three apart otherwise. Two floats disagree
    with JSON: -0.0 equals 0.0 though spelled apart, NaN equals nothing though spelled alike;
    those are keyed by their spelling.
    """
    types = {*map(type, old), *map(type, new)}
    if not types <= _SCALARS:
        return list(map(_spelling, old)), list(map(_spelling, new))
    odd = float in types and (_has_odd_float(old) or _has_odd_float(new))
    if len(types & _NUMBERS) <= 1 and not odd:
        return list(old), list(new)
    return _typed_keys(old, odd), _typed_keys(new, odd)


def _typed_keys(values: Sequence[Any], odd: bool) -> list[tuple[type, Any]]:
    keys = list(zip(map(type, values), values, strict=True))
    if odd:
        for index, value in enumerate(values):
            if type(value) is float and (value == 0 or value != value):
                keys[index] = (float, float.__repr__(value))
    return keys


def _has_odd_float(values: Sequence[Any]) -> bool:
    floats = [value for value in values if type(value) is float]
    return 0.0 in floats or not all(map(math.isfinite, floats))


def _spelling(value: Any) -> tuple[type, Any]:
    kind = type(value)
    if kind in _PLAIN:
        return (kind, value)
    if kind is float:
        return (float, float.__repr__(value))
    # A subclass (an IntEnum) or a nested value: back through JSON to what it stands for.
    spelling = json.dumps(value, sort_keys=True)
    plain = json.loads(spelling)
    if type(plain) in _SCALARS:
        return _spelling(plain)
    return (object, spelling)


def _join(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
