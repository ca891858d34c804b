"""What changed in an engine's flags between two of its catalogues (two versions of the engine).

``compare(old, new)`` lines the flags of two catalogues of one engine up by name and returns
the flags added, the flags removed, and for each flag in both the attributes that changed::

    0.33.0: --gpu-memory-utilization  float, default 0.9
    0.34.0: --gpu-memory-utilization  float, default None
    -> changed: gpu-memory-utilization, default 0.9 -> None

A flag whose old name the new catalogue still accepts as an alias of another flag was renamed,
not removed: it is listed as changed, with its ``name``. Help text is not compared: its rewording
changes nothing a preset or a task relies on.

Pure functions and frozen dataclasses; no Django.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engines.catalogue import Catalogue, Flag

# What a preset or a task relies on, in the order a reader wants them.
ATTRIBUTES = ("name", "kind", "default", "choices", "bounds", "aliases", "negation", "deprecated")


@dataclass(frozen=True)
class Change:
    """One attribute of one flag, before and after."""

    attribute: str
    old: Any
    new: Any

    @property
    def gained(self) -> tuple[str, ...]:
        """For a list on both sides (choices, aliases): the items only the new one has."""
        if isinstance(self.old, tuple) and isinstance(self.new, tuple):
            return tuple(item for item in self.new if item not in self.old)
        return ()

    @property
    def lost(self) -> tuple[str, ...]:
        """For a list on both sides: the items only the old one has."""
        if isinstance(self.old, tuple) and isinstance(self.new, tuple):
            return tuple(item for item in self.old if item not in self.new)
        return ()


@dataclass(frozen=True)
class ChangedFlag:
    old: Flag
    new: Flag
    changes: tuple[Change, ...]

    @property
    def name(self) -> str:
        return self.new.name


@dataclass(frozen=True)
class Differences:
    engine: str
    old_version: str
    new_version: str
    added: tuple[Flag, ...]
    removed: tuple[Flag, ...]
    changed: tuple[ChangedFlag, ...]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _attribute(flag: Flag, attribute: str) -> Any:
    if attribute == "bounds":
        return flag.bounds_text or None
    return getattr(flag, attribute)


def _same(old: Any, new: Any) -> bool:
    # 1 and 1.0, or True and 1, are different defaults to a reader of the catalogue's JSON.
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def changes(old: Flag, new: Flag) -> tuple[Change, ...]:
    """The attributes (``ATTRIBUTES``) that differ between two versions of one flag."""
    found = []
    for attribute in ATTRIBUTES:
        before, after = _attribute(old, attribute), _attribute(new, attribute)
        if not _same(before, after):
            found.append(Change(attribute, before, after))
    return tuple(found)


def compare(old: Catalogue, new: Catalogue) -> Differences:
    """What changed from the ``old`` catalogue to the ``new`` one, each list sorted by flag name."""
    added = [flag for name, flag in new.flags.items() if name not in old.flags]
    removed, changed = [], []
    for name, flag in old.flags.items():
        successor = new.flags.get(name) or new.lookup(name)
        # Renamed only when the successor is new and not claimed yet: an alias kept by a flag that
        # was there before means two flags became one, and this one is gone.
        if successor is not None and successor.name != name:
            successor = successor if successor in added else None
            if successor is not None:
                added.remove(successor)
        if successor is None:
            removed.append(flag)
            continue
        if found := changes(flag, successor):
            changed.append(ChangedFlag(flag, successor, found))
    return Differences(
        engine=new.engine,
        old_version=old.version,
        new_version=new.version,
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(sorted(changed, key=lambda item: item.name)),
    )
