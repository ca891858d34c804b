"""The one validator for preset content, shared by the model, forms, the API and import.

``normalize_parameters`` turns what a user sent into the stored grid shape, or raises
``InvalidParameters`` listing every problem with its place (``tp-size[1]: null is not
allowed``). The ``validate_*`` functions adapt it to Django's ValidationError.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from engines.registry import engine_names, quoted_names
from presets.merging import Grid, count_combinations, identity

MAX_PARAMETERS = 200
MAX_VALUES = 1000
MAX_STRING_LENGTH = 500
MAX_FLAG_LENGTH = 100
MAX_NAME_LENGTH = 255
# Descriptions: a paragraph or two about when to use the preset or task; the pages show it whole.
MAX_DESCRIPTION_LENGTH = 2000
MAX_METADATA_DEPTH = 10
MAX_METADATA_SIZE = 64 * 1024
# A grid is searched by sampling, and a grid search runs at most engines.plan.MAX_GRID_EXPERIMENTS:
# a trillion combinations is beyond any search, yet every count stays an exact JSON number (below
# 2^53) for every client. Bigger grids (7 flags of 1,000 values is 10^21) are typing accidents.
MAX_COMBINATIONS = 10**12
# Presets one merge (API or task) takes: the task pages' selector holds as many; more would make
# the merge and its explanation unreadable long before it made them slow.
MAX_MERGE_PRESETS = 50

FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9.-]*")  # used with fullmatch: "$" would let a trailing newline in
# PostgreSQL's jsonb refuses NUL and lone surrogates; SQLite would store them. Refuse both everywhere.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_INT64 = 2**63


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a JSON path, "" for the whole) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def under(self, prefix: str) -> Problem:
        """The same problem seen from an enclosing document, e.g. under("preset.parameters")."""
        if not prefix:
            return self
        if not self.path:
            return Problem(prefix, self.message)
        joiner = "" if self.path.startswith("[") else "."
        return Problem(f"{prefix}{joiner}{self.path}", self.message)


class InvalidParameters(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def parse_id(raw: str) -> int | None:
    """A database id from URL text, or None: ASCII digits only (``"²".isdigit()`` is true), within 64 bits."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        return None
    value = int(raw)
    return value if 0 < value < 2**63 else None


def preset_id_problems(ids: object) -> list[Problem]:
    """What is wrong with a list of preset ids to merge, in merge order (paths ``[i]``): the one
    check of its shape for the merge API, the task API and the task form. Whether the presets
    exist is the database's answer (``ParameterPreset.objects.merge``)."""
    if not isinstance(ids, list | tuple):
        return [Problem("", f"expected a list of preset ids, in merge order, got {describe_type(ids)}")]
    if not ids:
        return [Problem("", "the list is empty; select at least one preset")]
    if len(ids) > MAX_MERGE_PRESETS:
        return [Problem("", f"at most {MAX_MERGE_PRESETS} presets can be merged at once, got {len(ids)}")]
    problems: list[Problem] = []
    first_at: dict[int, int] = {}
    for index, preset_id in enumerate(ids):
        if type(preset_id) is not int or not 0 < preset_id < _INT64:
            shown = _short(repr(preset_id)) if not isinstance(preset_id, str) else _short(f'"{preset_id}"')
            problems.append(Problem(f"[{index}]", f"expected a preset id (a whole number from 1), got {shown}"))
        elif preset_id in first_at:
            problems.append(
                Problem(f"[{index}]", f"preset {preset_id} is repeated (first at index {first_at[preset_id]})")
            )
        else:
            first_at[preset_id] = index
    return problems


def describe_type(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def normalize_flag(name: str) -> str:
    """``--tp_size`` -> ``tp-size``: the spelling flags are stored under."""
    return name.removeprefix("--").replace("_", "-")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar_problem(value: object) -> str | None:
    """Why ``value`` cannot be one of a flag's values, or None when it can."""
    if value is None:
        return "null is not allowed"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if -_INT64 <= value < _INT64 else "integer is out of range (must fit in 64 bits)"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN is not allowed"
        if math.isinf(value):
            return "Infinity is not allowed"
        return None
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            return f"text is {len(value)} characters long; at most {MAX_STRING_LENGTH} are allowed"
        if _UNSTORABLE.search(value):
            return "text contains a NUL or an unpaired surrogate character"
        return None
    if isinstance(value, list | tuple):
        return "a nested list is not allowed; each value must be a string, number or boolean"
    if isinstance(value, Mapping):
        return "an object is not allowed; each value must be a string, number or boolean"
    return f"{describe_type(value)} is not allowed; each value must be a string, number or boolean"


def normalize_parameters(raw: object) -> Grid:
    """Validate and normalise a parameters object; raise InvalidParameters with every problem."""
    if not isinstance(raw, Mapping):
        raise InvalidParameters(
            [Problem("", f"expected an object mapping flag names to lists of values, got {describe_type(raw)}")]
        )
    problems: list[Problem] = []
    if not raw:
        problems.append(Problem("", "at least one parameter is required"))
    elif len(raw) > MAX_PARAMETERS:
        problems.append(Problem("", f"at most {MAX_PARAMETERS} parameters are allowed, got {len(raw)}"))
        raise InvalidParameters(problems)

    grid: Grid = {}
    spelled: dict[str, str] = {}
    seen_by_flag: dict[str, set[object]] = {}
    for key, raw_values in raw.items():
        if not isinstance(key, str):
            problems.append(Problem(repr(key), "flag names must be strings"))
            continue
        flag = normalize_flag(key)
        where = _short(key)
        if len(flag) > MAX_FLAG_LENGTH:
            problems.append(Problem(where, f"flag name is longer than {MAX_FLAG_LENGTH} characters"))
            continue
        if not FLAG_NAME.fullmatch(flag):
            problems.append(
                Problem(
                    where,
                    'not a valid flag name: use lowercase letters, digits, "-" and ".", '
                    'starting with a letter or digit (a leading "--" is dropped, "_" becomes "-")',
                )
            )
            continue
        # Two spellings of one flag (``tp_size`` and ``--tp-size``) are that flag once, with their
        # values in the order given, as the engine's own parser would read them: an API schema
        # cannot say that keys must differ once normalised, so refusing them would refuse data
        # the schema calls valid.
        spelled.setdefault(flag, key)

        if not isinstance(raw_values, list | tuple):
            if isinstance(raw_values, Mapping) or raw_values is None:
                problems.append(Problem(where, f"{_scalar_problem(raw_values)}"))
                continue
            raw_values = [raw_values]  # a bare scalar means a one-value list
        if not raw_values:
            problems.append(Problem(where, "an empty list is not allowed; give at least one value"))
            continue
        values = grid.setdefault(flag, [])
        if len(values) + len(raw_values) > MAX_VALUES:
            given = len(raw_values) if values == [] else f"{len(values)} + {len(raw_values)}"
            problems.append(Problem(where, f"at most {MAX_VALUES} values are allowed, got {given}"))
            continue

        seen = seen_by_flag.setdefault(flag, set())
        for index, value in enumerate(raw_values):
            problem = _scalar_problem(value)
            if problem:
                problems.append(Problem(f"{where}[{index}]", problem))
                continue
            key_ = identity(value)
            if key_ not in seen:  # the first spelling of a value wins: [1, 1.0] -> [1]
                seen.add(key_)
                values.append(value)

    problems = problems or grid_size_problems(grid)
    if problems:
        raise InvalidParameters(problems)
    return grid


def grid_size_problems(grid: Grid) -> list[Problem]:
    """What makes a grid of valid values too big to plan: too many flags, too many values of one
    flag, too many combinations. Also for a merged grid, which a union can make bigger than its presets."""
    if len(grid) > MAX_PARAMETERS:
        return [Problem("", f"at most {MAX_PARAMETERS} parameters are allowed, got {len(grid)}")]
    problems = [
        Problem(_short(flag), f"at most {MAX_VALUES} values are allowed, got {len(values)}")
        for flag, values in grid.items()
        if len(values) > MAX_VALUES
    ]
    combinations = count_combinations(grid)
    if combinations > MAX_COMBINATIONS:
        problems.append(
            Problem(
                "",
                f"the grid has {describe_count(combinations)} combinations; at most {MAX_COMBINATIONS:,} (10^12) "
                "are allowed: give its flags fewer values",
            )
        )
    return problems


def describe_count(count: int) -> str:
    """A count for a sentence: exact with separators, or its order of magnitude past a quadrillion."""
    if count <= 10**15:
        return f"{count:,}"
    return f"about 10^{math.floor(math.log10(count))}"


def name_problems(name: object) -> tuple[str, list[Problem]]:
    """A preset name trimmed, and what is wrong with it."""
    if not isinstance(name, str):
        return "", [Problem("", f"expected a string, got {describe_type(name)}")]
    name = name.strip()
    if not name:
        return name, [Problem("", "a name is required")]
    if len(name) > MAX_NAME_LENGTH:
        return name, [Problem("", f"at most {MAX_NAME_LENGTH} characters are allowed, got {len(name)}")]
    if _CONTROL.search(name) or _UNSTORABLE.search(name):
        return name, [Problem("", "control characters are not allowed in a name")]
    return name, []


def metadata_problems(metadata: object) -> list[Problem]:
    """Metadata is free-form, but an object, storable and small."""
    if metadata is None or metadata == {}:
        return []
    if not isinstance(metadata, Mapping):
        return [Problem("", f"expected an object, got {describe_type(metadata)}")]
    problems: list[Problem] = []
    size = 0

    def walk(value: Any, path: str, depth: int) -> None:
        # ``size`` adds up about the JSON text of the metadata: every value and key, with its quotes
        # and separator, so a list of 100,000 numbers weighs what it takes to store.
        nonlocal size
        if depth > MAX_METADATA_DEPTH:
            problems.append(Problem(path, f"nested deeper than {MAX_METADATA_DEPTH} levels"))
            return
        if isinstance(value, str):
            size += len(value) + 3
            if _UNSTORABLE.search(value):
                problems.append(Problem(path, "text contains a NUL or an unpaired surrogate character"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(path, "NaN and Infinity are not allowed"))
        elif isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
            problems.append(Problem(path, "integer is out of range (must fit in 64 bits)"))
        elif isinstance(value, Mapping):
            size += 2
            for key, item in value.items():
                if not isinstance(key, str) or _UNSTORABLE.search(key):
                    problems.append(Problem(path, f"invalid key {_short(repr(key))}"))
                    continue
                size += len(key) + 3
                walk(item, f"{path}.{key}" if path else key, depth + 1)
        elif isinstance(value, list | tuple):
            size += 2
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", depth + 1)
        elif value is not None and not isinstance(value, bool | int | float):
            problems.append(Problem(path, f"{describe_type(value)} is not a JSON value"))
        else:
            size += len(str(value)) + 1  # a number, true, false or null

    walk(metadata, "", 0)
    if size > MAX_METADATA_SIZE:
        problems.append(Problem("", f"metadata is too large (at most {MAX_METADATA_SIZE // 1024} KiB as JSON)"))
    return problems


def messages(problems: list[Problem]) -> list[str]:
    return [str(problem) for problem in problems]


# An answer (API or page) lists at most this many problems: a body under the size limit can hold
# hundreds of thousands (200 flags of 1,000 bad values), and listing each cost seconds and megabytes.
MAX_LISTED_PROBLEMS = 100


def listed(problems: list[Problem]) -> list[Problem]:
    """The first MAX_LISTED_PROBLEMS problems, the last of them saying how many more there are."""
    if len(problems) <= MAX_LISTED_PROBLEMS:
        return problems
    last = problems[MAX_LISTED_PROBLEMS - 1]
    more = len(problems) - MAX_LISTED_PROBLEMS
    return [*problems[: MAX_LISTED_PROBLEMS - 1], Problem(last.path, f"{last.message} (and {more:,} more problems)")]


def clean_parameters(value: object) -> Grid:
    """normalize_parameters for Django: errors become one ValidationError with the messages listed."""
    try:
        return normalize_parameters(value)
    except InvalidParameters as error:
        raise ValidationError(
            [ValidationError(message, code="invalid_parameters") for message in messages(listed(error.problems))]
        ) from None


def validate_metadata(value: object) -> None:
    problems = metadata_problems(value)
    if problems:
        raise ValidationError(
            [ValidationError(message, code="invalid_metadata") for message in messages(listed(problems))]
        )


# The free-text fields a preset document holds, with their limits. A description is kept as written
# (its line breaks and indentation are the author's); a category is trimmed.
PRESET_TEXT_FIELDS = {"description": MAX_DESCRIPTION_LENGTH, "category": 100}
TRIMMED_TEXT_FIELDS = {"category"}
RUNTIMES = engine_names()


def preset_fields(data: object, *, partial: bool = False) -> tuple[dict[str, Any], list[Problem]]:
    """The writable fields of a preset from a JSON document (API body or import), normalised.

    Returns the fields present (all of them unless ``partial``: missing optional ones get
    their empty value) and every problem, with paths relative to the document. Fields
    clients may not set (``id``, ``is_system``, timestamps) are ignored.
    """
    if not isinstance(data, Mapping):
        return {}, [Problem("", f"expected an object, got {describe_type(data)}")]
    fields: dict[str, Any] = {}
    problems: list[Problem] = []

    if "name" in data:
        fields["name"], found = name_problems(data["name"])
        problems += [problem.under("name") for problem in found]
    elif not partial:
        problems.append(Problem("name", "this field is required"))

    for field, limit in PRESET_TEXT_FIELDS.items():
        if field not in data:
            if not partial:
                fields[field] = ""
            continue
        value, found = text_problems(data[field], limit=limit, trim=field in TRIMMED_TEXT_FIELDS)
        problems += [problem.under(field) for problem in found]
        if not found:
            fields[field] = value

    if "runtime" in data:
        runtime = "" if data["runtime"] is None else data["runtime"]
        if runtime in ("", *RUNTIMES):
            fields["runtime"] = runtime
        else:
            shown = runtime if isinstance(runtime, str) else describe_type(runtime)
            problems.append(
                Problem("runtime", f'"{_short(str(shown))}" is not a runtime; expected {quoted_names()} or null (any)')
            )
    elif not partial:
        fields["runtime"] = ""

    if "parameters" in data:
        try:
            fields["parameters"] = normalize_parameters(data["parameters"])
        except InvalidParameters as error:
            problems += [problem.under("parameters") for problem in error.problems]
    elif not partial:
        problems.append(Problem("parameters", "this field is required"))

    if "metadata" in data:
        found = metadata_problems(data["metadata"])
        problems += [problem.under("metadata") for problem in found]
        if not found:
            fields["metadata"] = data["metadata"] or {}
    elif not partial:
        fields["metadata"] = {}
    return fields, problems


def text_problems(value: object, *, limit: int | None, trim: bool = True) -> tuple[str, list[Problem]]:
    """Free text of at most ``limit`` characters (counted as kept: trimmed with ``trim``, else as
    written), and what is wrong with it; null counts as empty."""
    if value is None:
        return "", []
    if not isinstance(value, str):
        return "", [Problem("", f"expected a string, got {describe_type(value)}")]
    kept = value.strip() if trim else value
    if limit and len(kept) > limit:
        return value, [Problem("", f"at most {limit:,} characters are allowed, got {len(kept):,}")]
    if _UNSTORABLE.search(value):
        return value, [Problem("", "text contains a NUL or an unpaired surrogate character")]
    return kept, []


def note_problems(note: object, *, limit: int) -> tuple[str, list[Problem]]:
    """A change note trimmed, and what is wrong with it; null counts as no note."""
    if note is None:
        return "", []
    if not isinstance(note, str):
        return "", [Problem("", f"expected a string, got {describe_type(note)}")]
    note = note.strip()
    if len(note) > limit:
        return note, [Problem("", f"at most {limit} characters are allowed, got {len(note)}")]
    if _UNSTORABLE.search(note):
        return note, [Problem("", "text contains a NUL or an unpaired surrogate character")]
    return note, []


def change_note(data: object, *, limit: int) -> tuple[str, list[Problem]]:
    """The optional ``change_note`` of a write (API body), trimmed, with problems at ``change_note``."""
    if not isinstance(data, Mapping) or "change_note" not in data:
        return "", []
    note, found = note_problems(data["change_note"], limit=limit)
    return note, [problem.under("change_note") for problem in found]
