"""What each engine's server accepts: every flag with its aliases, kind, choices and bounds.

One JSON file per engine and version lives in ``engines/data/`` (format in its README).
The files are read once per process; nothing here needs an engine installed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from engines import registry
from engines.registry import engine_names, is_engine

DATA_DIR = Path(__file__).parent / "data"
# "size": a whole number the engine also reads with a unit suffix (``32k``), see Flag.units.
KINDS = ("integer", "float", "switch", "choice", "string", "json", "list", "size")
FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")

# Bounds the engines do not state but the meaning fixes: fractions of memory lie in (0, 1],
# sizes and counts are at least 1. Applied to whichever engine has the flag.
MEANINGFUL_BOUNDS: dict[str, dict[str, float | bool]] = {
    "mem-fraction-static": {"minimum": 0, "exclusive_minimum": True, "maximum": 1},
    "gpu-memory-utilization": {"minimum": 0, "exclusive_minimum": True, "maximum": 1},
    "schedule-conservativeness": {"minimum": 0},  # sglang srt/arg_groups/validation_hook.py:314 asserts >= 0
    "tp-size": {"minimum": 1},
    "dp-size": {"minimum": 1},
    "pp-size": {"minimum": 1},
    "ep-size": {"minimum": 1},
    "tensor-parallel-size": {"minimum": 1},
    "data-parallel-size": {"minimum": 1},
    "pipeline-parallel-size": {"minimum": 1},
    "max-running-requests": {"minimum": 1},
    "max-total-tokens": {"minimum": 1},
    "max-prefill-tokens": {"minimum": 1},
    "max-num-seqs": {"minimum": 1},
    "max-num-batched-tokens": {"minimum": 1},
    "max-model-len": {"minimum": 1},
    "context-length": {"minimum": 1},
    "cuda-graph-max-bs": {"minimum": 1},
    "page-size": {"minimum": 1},
    "block-size": {"minimum": 1},
    "stream-interval": {"minimum": 1},
    "cpu-offload-gb": {"minimum": 0},
}


class CatalogueError(ValueError):
    """A catalogue file that does not have the expected shape; says where."""


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    default: Any = None
    help: str = ""
    deprecated: bool = False
    negation: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    # Off forms the engine accepts but keeps out of its help (vLLM's ``no-enable-X``).
    hidden_negations: tuple[str, ...] = ()
    # A size flag's suffixes and what each multiplies by, as the engine's own converter reads them:
    # vLLM's ``k`` is 1000 and ``K`` 1024; SGLang's ``k`` is 1000 and ``Ki`` 1024.
    units: tuple[tuple[str, int], ...] = ()
    auto: int | None = None  # the number the word "auto" stands for, exempt from the bounds

    def size(self, value: object) -> int | None:
        """The whole number a size flag's value stands for (``"32k"`` -> 32000), or None."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if not isinstance(value, str):
            return None
        text = value.strip()
        if self.auto is not None and text.lower() == "auto":
            return self.auto
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]+)", text)
        multiplier = dict(self.units).get(match.group(2)) if match else None
        if match is None or multiplier is None:
            return None
        number = match.group(1)
        if "." in number and multiplier % 1000:  # both engines refuse decimals with binary units
            return None
        return int(Decimal(number) * multiplier)

    @property
    def size_example(self) -> str:
        """``32k``: how this flag's sizes may be written, for messages."""
        shown = [f"32{suffix}" for suffix, _ in self.units[:2]]
        return " or ".join(shown + (["auto"] if self.auto is not None else []))

    @property
    def bounds_text(self) -> str:
        """``(0, 1]``, ``>= 1``: the bounds as a user reads them; empty when unbounded."""
        if self.minimum is not None and self.maximum is not None:
            left = "(" if self.exclusive_minimum else "["
            return f"{left}{_number(self.minimum)}, {_number(self.maximum)}]"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_number(self.minimum)}"
        if self.maximum is not None:
            return f"<= {_number(self.maximum)}"
        return ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "aliases": list(self.aliases),
            "kind": self.kind,
            "choices": list(self.choices) if self.choices is not None else None,
            "default": self.default,
            "help": self.help,
            "deprecated": self.deprecated,
            "negation": self.negation,
        }
        if self.hidden_negations:
            data["hidden_negations"] = list(self.hidden_negations)
        if self.kind == "size":
            data["units"] = dict(self.units)
            data["auto"] = self.auto
        for bound in ("minimum", "maximum"):
            if getattr(self, bound) is not None:
                data[bound] = getattr(self, bound)
        if self.minimum is not None:  # written even when False: it may relax a meaningful bound
            data["exclusive_minimum"] = self.exclusive_minimum
        return data


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class Catalogue:
    engine: str
    version: str
    source: str
    flags: Mapping[str, Flag]
    by_any_name: Mapping[str, Flag] = field(repr=False)
    by_negation: Mapping[str, Flag] = field(repr=False, default_factory=dict)
    abbreviations: Mapping[str, str] = field(repr=False, default_factory=dict)  # "tp" -> "tp-size"

    @classmethod
    def from_flags(
        cls, engine: str, version: str, source: str, flags: Iterable[Flag], abbreviations: Iterable[str] = ()
    ) -> Catalogue:
        by_name = {flag.name: flag for flag in sorted(flags, key=lambda flag: flag.name)}
        by_any_name: dict[str, Flag] = {}
        for flag in by_name.values():
            for name in (flag.name, *flag.aliases):
                if name in by_any_name and by_any_name[name] is not flag:
                    raise CatalogueError(
                        f"{engine} {version}: {name} names both {by_any_name[name].name} and {flag.name}"
                    )
                by_any_name[name] = flag
        by_negation = {
            negation: flag
            for flag in by_name.values()
            for negation in (flag.negation, *flag.hidden_negations)
            if negation is not None
        }
        shortened = {}
        for prefix in abbreviations:  # argparse's rule: the option strings it begins all belong to one flag
            owners = {
                flag.name for name, flag in [*by_any_name.items(), *by_negation.items()] if name.startswith(prefix)
            }
            if prefix not in by_any_name and len(owners) == 1:
                shortened[prefix] = owners.pop()
                by_any_name[prefix] = by_name[shortened[prefix]]
        return cls(engine, version, source, by_name, by_any_name, by_negation, shortened)

    def lookup(self, name: str) -> Flag | None:
        """The flag a name or alias stands for."""
        return self.by_any_name.get(name)

    def negated(self, name: str) -> Flag | None:
        """The switch ``name`` turns off (``disable-prefix-caching`` -> ``enable-prefix-caching``)."""
        return self.by_negation.get(name)

    def suggest(self, name: str) -> str | None:
        """The known flag name closest to a misspelt one, for "did you mean"."""
        close = difflib.get_close_matches(name, list(self.by_any_name), n=1, cutoff=0.75)
        return close[0] if close else None

    def as_document(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "version": self.version,
            "source": self.source,
            "flags": [flag.as_dict() for flag in self.flags.values()],
        }


def parse(document: Any, where: str = "catalogue") -> Catalogue:
    """A catalogue from its JSON document; CatalogueError naming the place of any problem."""
    if not isinstance(document, dict):
        raise CatalogueError(f"{where}: expected an object")
    for key in ("engine", "version", "flags"):
        if key not in document:
            raise CatalogueError(f"{where}: {key} is missing")
    if not isinstance(document["flags"], list):
        raise CatalogueError(f"{where}.flags: expected a list")
    flags = []
    for index, entry in enumerate(document["flags"]):
        path = f"{where}.flags[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise CatalogueError(f"{path}: expected an object with a name")
        if not FLAG_NAME.fullmatch(entry["name"]):
            raise CatalogueError(f"{path}.name: {entry['name']!r} is not a flag name")
        if entry.get("kind") not in KINDS:
            raise CatalogueError(f"{path}.kind: expected one of {', '.join(KINDS)}")
        choices = entry.get("choices")
        if entry["kind"] == "choice" and not (isinstance(choices, list) and choices):
            raise CatalogueError(f"{path}.choices: a choice flag needs its list of choices")
        bounds = {**MEANINGFUL_BOUNDS.get(entry["name"], {}), **_bounds_of(entry)}
        flags.append(
            Flag(
                name=entry["name"],
                kind=entry["kind"],
                aliases=tuple(entry.get("aliases") or ()),
                choices=tuple(str(choice) for choice in choices) if choices is not None else None,
                default=entry.get("default"),
                help=entry.get("help") or "",
                deprecated=bool(entry.get("deprecated")),
                negation=entry.get("negation"),
                minimum=bounds.get("minimum"),
                maximum=bounds.get("maximum"),
                exclusive_minimum=bool(bounds.get("exclusive_minimum")),
                hidden_negations=tuple(entry.get("hidden_negations") or ()),
                units=tuple((str(suffix), int(value)) for suffix, value in (entry.get("units") or {}).items()),
                auto=entry.get("auto"),
            )
        )
    engine = str(document["engine"])
    abbreviations = registry.engine(engine).abbreviations if registry.is_engine(engine) else ()
    return Catalogue.from_flags(engine, str(document["version"]), document.get("source", ""), flags, abbreviations)


def _bounds_of(entry: dict[str, Any]) -> dict[str, Any]:
    return {key: entry[key] for key in ("minimum", "maximum", "exclusive_minimum") if key in entry}


def dumps(catalogue: Catalogue) -> str:
    return json.dumps(catalogue.as_document(), indent=2, ensure_ascii=False) + "\n"


def _version_key(path: Path) -> tuple[int, ...]:
    version = path.stem.split("-", 1)[1]
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.]", version))


def for_engine(engine: object, version: object = None) -> Catalogue | None:
    """The catalogue of an engine's ``version``, by default the newest shipped (what new presets
    and tasks use); None for an engine or a version we do not ship."""
    if not is_engine(engine):
        return None  # never a file pattern built from what a client sent
    shipped = _shipped(engine, DATA_DIR)
    if version is None:
        return _read(shipped[-1]) if shipped else None
    # Looked up among the files found, so a version string from a client never names a path.
    found = next((path for path in shipped if path.stem == f"{engine}-{version}"), None)
    return _read(found) if found else None


def versions(engine: object) -> list[str]:
    """The versions shipped for an engine, oldest first."""
    if not is_engine(engine):
        return []
    return [path.stem.split("-", 1)[1] for path in _shipped(engine, DATA_DIR)]


def clear_cache() -> None:
    """Forget the catalogues read so far (after the data files changed)."""
    _shipped.cache_clear()
    _read.cache_clear()
    _engines_in.cache_clear()


@cache
def _shipped(engine: str, data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob(f"{engine}-*.json"), key=_version_key)


@cache
def _read(path: Path) -> Catalogue:
    return parse(json.loads(path.read_text()), path.name)


@cache
def _engines_in(data_dir: Path) -> frozenset[str]:
    return frozenset(path.stem.split("-", 1)[0] for path in data_dir.glob("*-*.json"))


def engines() -> list[str]:
    """The engines a catalogue ships for, in the registry's order."""
    shipped = _engines_in(DATA_DIR)
    return [name for name in engine_names() if name in shipped]
