"""A grid checked against an engine's catalogue: errors block saving, warnings inform.

- an unknown flag is a warning, with a "did you mean" (``enable-mixed-chunking`` ->
  ``enable-mixed-chunk``);
- a value of the wrong kind, outside its bounds or not among its choices is an error naming
  the flag and the value (``mem-fraction-static[0]: 9 is outside (0, 1]``);
- a deprecated flag is a warning.

A grid for any engine is checked against every engine (``check_every_engine``): a flag none of
them knows is a warning, a value every engine that knows its flag refuses is an error, and what
only some of them refuse is a warning naming those.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from engines.catalogue import Catalogue, Flag, for_engine
from engines.registry import engine_names

ERROR = "error"
WARNING = "warning"
# "Did you mean" is looked for among every flag name of an engine: a few misspellings are a typo
# worth a hint, a grid of hundreds of unknown flags is not, and would cost a request seconds.
MAX_SUGGESTIONS = 20


@dataclass(frozen=True)
class Finding:
    level: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "path": self.path, "message": self.message}


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, str) else repr(value)


def value_problem(flag: Flag, value: object) -> str | None:
    """Why ``value`` cannot be given to ``flag``, or None."""
    kind = flag.kind
    if kind == "switch":
        return None if isinstance(value, bool) else f"{_shown(value)} is not true or false (a switch is on or off)"
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{_shown(value)} is not a whole number"
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{_shown(value)} is not a number"
    elif kind == "choice":
        if isinstance(value, bool) or str(value) not in (flag.choices or ()):
            shown = ", ".join(flag.choices or ())
            return f"{_shown(value)} is not one of: {shown}"
        return None
    elif kind == "size":
        number = flag.size(value)
        if number is None:
            return f"{_shown(value)} is not a whole number or a size such as {flag.size_example}"
        return None if number == flag.auto else _bounds_problem(flag, number)
    elif kind == "json":
        if not isinstance(value, str):
            return f"{_shown(value)} is not JSON text"
        try:
            json.loads(value)
        except ValueError:
            return f"{_shown(value)} is not valid JSON"
        return None
    elif isinstance(value, bool):  # string and list flags take text or numbers
        return f"{_shown(value)} is a boolean; this flag takes a value"
    elif not isinstance(value, int | float):
        return None  # text: its bounds cannot be judged here
    # A number: within the flag's bounds, whatever its kind (a catalogue read from --help text
    # types valued flags as strings, but the bounds their meaning fixes still hold).
    return _bounds_problem(flag, value)


def _switch(value: object) -> str | None:
    return None if isinstance(value, bool) else f"{_shown(value)} is not true or false (a switch is on or off)"


def _bounds_problem(flag: Flag, value: float) -> str | None:
    low, high = flag.minimum, flag.maximum
    too_low = low is not None and (value <= low if flag.exclusive_minimum else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        if low is not None and high is not None:
            return f"{_shown(value)} is outside {flag.bounds_text}"
        return f"{_shown(value)} must be {flag.bounds_text}"
    return None


def check_grid(grid: Mapping[str, Sequence[object]], catalogue: Catalogue) -> list[Finding]:
    """Every problem of a (normalised) grid for this engine, errors and warnings, in grid order."""
    findings: list[Finding] = []
    where = f"{catalogue.engine} {catalogue.version}"
    spelled: dict[str, str] = {}  # canonical flag -> the name the grid gave it first
    unknown = 0
    for name, values in grid.items():
        flag = catalogue.lookup(name)
        negated = None if flag else catalogue.negated(name)  # disable-X is enable-X turned off
        flag = flag or negated
        if flag is not None and spelled.setdefault(flag.name, name) != name:
            first = spelled[flag.name]
            findings.append(Finding(ERROR, name, f"the same {where} flag as {first}; give its values once"))
            continue
        if flag is None:
            unknown += 1
            hint = catalogue.suggest(name) if unknown <= MAX_SUGGESTIONS else None
            message = f"not a {where} flag" + (f"; did you mean {hint}?" if hint else "")
            findings.append(Finding(WARNING, name, message))
            continue
        if flag.deprecated:
            findings.append(Finding(WARNING, name, f"deprecated in {where}"))
        if name in catalogue.abbreviations:
            message = f"an abbreviation of {flag.name} that {where} takes while no other flag starts with it"
            findings.append(Finding(WARNING, name, f"{message}; counted as {flag.name}"))
        for index, value in enumerate(values):
            problem = _switch(value) if negated else value_problem(flag, value)
            if problem:
                findings.append(Finding(ERROR, f"{name}[{index}]", problem))
            elif flag.kind == "string" and flag.choices and str(value) not in flag.choices:
                # The engine takes values its plugins register (vLLM's quantization): known ones are hints.
                known = ", ".join(flag.choices[:8]) + (", ..." if len(flag.choices) > 8 else "")
                message = f"{_shown(value)} is not a value {where} knows (a plugin may add it); known: {known}"
                findings.append(Finding(WARNING, f"{name}[{index}]", message))
    return findings


def errors(findings: Sequence[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.level == ERROR]


def warnings(findings: Sequence[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.level == WARNING]


def same_flag(names: Sequence[str], catalogue: Catalogue | None) -> dict[str, str]:
    """For each flag name, the canonical name it stands for (itself when unknown): aliases are one flag."""
    if catalogue is None:
        return {}
    found = {name: catalogue.lookup(name) for name in names}
    return {name: flag.name for name, flag in found.items() if flag is not None}


def same_value(names: Sequence[str], catalogue: Catalogue | None) -> dict[str, Callable[[object], int | None]]:
    """For each size flag among ``names``, what the engine reads its values as (``"32k"`` -> 32000)."""
    if catalogue is None:
        return {}
    found = {name: catalogue.lookup(name) for name in names}
    return {name: flag.size for name, flag in found.items() if flag is not None and flag.kind == "size"}


def _place(path: str) -> tuple[int, int]:
    """Sorts a flag's findings as check_grid writes them: the flag first, then its values in order."""
    index = path.rpartition("[")[2].rstrip("]")
    return (1, int(index)) if path.endswith("]") and index.isdigit() else (0, 0)


def check_every_engine(grid: Mapping[str, Sequence[object]], catalogues: Sequence[Catalogue]) -> list[Finding]:
    """check_grid for a grid meant for any engine, against each of ``catalogues``.

    ``{"tp-szie": [2]}`` warns "not a flag of any engine; did you mean tp-size?";
    ``{"mem-fraction-static": ["abc"]}`` is an error, since the only engine with that flag refuses
    the value; a value one engine takes and another refuses is a warning naming the one.
    """
    if not catalogues:
        return []
    checked = [(catalogue, check_grid(grid, catalogue)) for catalogue in catalogues]
    findings: list[Finding] = []
    unknown = 0
    for name in grid:
        knowing = [
            (catalogue, found) for catalogue, found in checked if catalogue.lookup(name) or catalogue.negated(name)
        ]
        if not knowing:
            unknown += 1
            hints = (catalogue.suggest(name) for catalogue in catalogues) if unknown <= MAX_SUGGESTIONS else ()
            hint = next(filter(None, hints), None)
            message = "not a flag of any engine" + (f"; did you mean {hint}?" if hint else "")
            findings.append(Finding(WARNING, name, message))
            continue
        at: dict[str, list[tuple[str, Finding]]] = {}  # path -> (engine and version, its finding)
        for catalogue, found in knowing:
            for finding in found:
                if finding.path == name or finding.path.startswith(f"{name}["):
                    at.setdefault(finding.path, []).append((f"{catalogue.engine} {catalogue.version}", finding))
        for path in sorted(at, key=_place):
            refusals = [(where, finding.message) for where, finding in at[path] if finding.level == ERROR]
            if len(refusals) == len(knowing):  # no engine with this flag would take it
                said = {message for _, message in refusals}
                message = said.pop() if len(said) == 1 else "; ".join(f"{where}: {text}" for where, text in refusals)
                findings.append(Finding(ERROR, path, message))
                continue
            for where, finding in at[path]:
                named = finding.level == WARNING or where in finding.message
                told = finding.message if named else f"{where} refuses it: {finding.message}"
                findings.append(Finding(WARNING, path, told))
    return findings


def check_for_runtime(grid: Mapping[str, Sequence[object]], runtime: str) -> list[Finding]:
    """check_grid against the runtime's newest catalogue; for an any-engine grid (runtime ""),
    check_every_engine against every engine's; nothing for an unknown engine."""
    if not runtime:
        catalogues = [catalogue for name in engine_names() if (catalogue := for_engine(name)) is not None]
        return check_every_engine(grid, catalogues)
    catalogue = for_engine(runtime)
    return check_grid(grid, catalogue) if catalogue else []
