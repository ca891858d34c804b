"""The hostile inputs, written as JSON text (some cannot be built as Python objects and dumped:
2,000 levels of nesting overflow the encoder, ``1e999`` is a number no float holds), and the
rules every answer to them keeps.

Each input says what it looks like in a field of each kind: a plain value (``scalar``), a list
(``array``, e.g. ``preset_ids``) and an object (``object``, e.g. ``parameters``, where a string
goes inside the grid as a flag's value or as a flag's name).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEEP = "[" * 2000 + "]" * 2000
HUNDRED_THOUSAND = "[" + ",".join(["1"] * 100_000) + "]"
# 7 flags × 1,000 values: 10^21 combinations, every flag and value valid on its own.
ASTRONOMICAL_GRID = json.dumps({f"flag-{letter}": list(range(1000)) for letter in "abcdefg"})
HYPERLINK = '=HYPERLINK("https://example.com/x","click")'


def in_grid(value: str) -> str:
    """A JSON value as the one value of one flag of a grid."""
    return '{"tp-size": [' + value + "]}"


def as_flag(text: str) -> str:
    """A string (JSON text) as a flag's name."""
    return "{" + text + ": [1]}"


@dataclass(frozen=True)
class Hostile:
    """One hostile input; ``refused`` when no field may take it (4xx wherever it lands)."""

    id: str
    scalar: str
    array: str | None = None  # default: the scalar as the one item of a list
    object: str | None = None  # default: the scalar as a grid's value
    refused: bool = True
    text: str | None = None  # in a form's plain text field or a query string; default: none sent

    def variants(self, kind: str) -> list[str]:
        if kind == "array":
            return [self.scalar, self.array or "[" + self.scalar + "]"]
        if kind == "object":
            return [self.scalar, self.object or in_grid(self.scalar)]
        return [self.scalar]


HOSTILE = [
    Hostile("nesting-2000", DEEP, array=DEEP, object='{"tp-size": ' + DEEP + "}", text=DEEP),
    Hostile("surrogate-d800", '"m\\ud800"', object=as_flag('"tp-size\\ud800"'), text="m\ud800"),
    Hostile("surrogate-dfff", '"\\udfff"', object=in_grid('"\\udfff"'), text="\udfff"),
    Hostile("surrogate-in-key", '{"\\ud800": 1}', array='[{"\\ud800": 1}]', object=as_flag('"\\ud800"')),
    Hostile("nul", '"a\\u0000b"', object=in_grid('"a\\u0000b"'), text="a\x00b"),
    Hostile("nul-in-key", '{"a\\u0000": 1}', array='[{"a\\u0000": 1}]', object=as_flag('"a\\u0000"')),
    Hostile("list-100k", HUNDRED_THOUSAND, array=HUNDRED_THOUSAND, object='{"tp-size": ' + HUNDRED_THOUSAND + "}"),
    Hostile("grid-10e21", ASTRONOMICAL_GRID, array="[" + ASTRONOMICAL_GRID + "]", object=ASTRONOMICAL_GRID),
    Hostile("id-2e63", str(2**63), refused=False, text=str(2**63)),
    Hostile("id-1e30", str(10**30), refused=False, text=str(10**30)),
    Hostile("id-minus-1", "-1", refused=False, text="-1"),
    Hostile("number-1e999", "1e999", refused=False, text="1e999"),
    Hostile("string-1e999", '"1e999"', refused=False),
    Hostile("date-9999", '"9999-12-31T23:59:59-14:00"', refused=False, text="9999-12-31T23:59:59-14:00"),
    Hostile("date-0001", '"0001-01-01T00:00:00+14:00"', refused=False, text="0001-01-01T00:00:00+14:00"),
    Hostile("formula-hyperlink", json.dumps(HYPERLINK), refused=False, text=HYPERLINK),
    Hostile("formula-at-sum", '"@SUM(1)"', refused=False, text="@SUM(1)"),
]
BY_ID = {hostile.id: hostile for hostile in HOSTILE}

PLACEHOLDER = "\ue000hostile\ue000"


def spliced(base: Any, where: tuple[str | int, ...], fragment: str) -> str:
    """``base`` as JSON text with the value at ``where`` replaced by the JSON text ``fragment``."""
    document = json.loads(json.dumps(base))
    container = document
    for key in where[:-1]:
        container = container[key]
    container[where[-1]] = PLACEHOLDER
    text = json.dumps(document)
    assert text.count(json.dumps(PLACEHOLDER)) == 1
    return text.replace(json.dumps(PLACEHOLDER), fragment)


def has(document: Any, where: tuple[str | int, ...]) -> bool:
    """Whether ``document`` holds the container of ``where``'s last key."""
    for key in where[:-1]:
        try:
            document = document[key]
        except (KeyError, IndexError, TypeError):
            return False
    return isinstance(document, dict | list)


def dotted(where: tuple[str | int, ...]) -> str:
    """A place as the API's errors write it: ``preset.history[0].created_at``."""
    path = ""
    for key in where:
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else key)
    return path


def failures_in_log(records: list[logging.LogRecord]) -> list[str]:
    """What the server log shows of a request that failed: an ERROR on ``django.request`` (a 500) or
    any traceback, except Django's own security log, which refuses floods (too many fields) by design
    with a 400."""
    return [
        f"{record.name}: {record.getMessage()}"
        for record in records
        if (record.name == "django.request" and record.levelno >= logging.ERROR)
        or (record.exc_info and not record.name.startswith("django.security."))
    ]


def api_problems(response: Any, hostile: Hostile, place: str) -> Iterator[str]:
    """What is wrong with an API answer to ``hostile`` at ``place`` (a field's path, or "" for a URL)."""
    status = response.status_code
    if status >= 500 or (hostile.refused and not 400 <= status < 500):
        yield f"{place or 'url'}: answered {status}"
        return
    if status < 400:
        return
    body = response.json() if response.get("Content-Type", "").startswith("application/json") else None
    if not isinstance(body, dict) or not body.get("detail"):
        yield f"{place or 'url'}: {status} without the API's error shape: {response.content[:200]!r}"
        return
    if status != 400:
        return
    paths = [error.get("path", "") for error in body.get("errors", [])]
    if not paths or not all(paths):
        yield f"{place or 'url'}: 400 without a path for every error: {body}"
    elif place and not any(path.split(".")[0].split("[")[0] == place.split(".")[0] for path in paths):
        yield f"{place}: 400 whose errors point elsewhere: {paths}"
