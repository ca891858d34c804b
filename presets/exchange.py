"""The preset exchange format: what export writes and import reads.

One preset: ``{"version": "1.0", "preset": {name, description, category, runtime,
parameters, metadata}}``; several: ``{"version": "1.0", "presets": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from django.utils.text import slugify

from presets.validators import Problem, describe_type, preset_fields

if TYPE_CHECKING:
    from presets.models import ParameterPreset

FORMAT_VERSION = "1.0"
MAX_IMPORT_SIZE = 1024 * 1024


def export_document(preset: ParameterPreset) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "preset": preset.content()}


def export_bundle(presets: Iterable[ParameterPreset]) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "presets": [preset.content() for preset in presets]}


def dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def download_response(body: bytes, filename: str, unicode_filename: str | None = None) -> HttpResponse:
    """A JSON file download. ``unicode_filename``, when given, is sent as RFC 6266's ``filename*``
    for browsers that read it, next to the ASCII ``filename`` for those that do not."""
    response = HttpResponse(body, content_type="application/json")
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    if unicode_filename and unicode_filename != filename:
        disposition += f"; filename*=UTF-8''{quote(unicode_filename)}"
    response["Content-Disposition"] = disposition
    return response


def export_filename(name: str) -> str:
    """``preset-high-throughput.json``: a lowercase ASCII slug of the name."""
    return f"preset-{slugify(name) or 'unnamed'}.json"


def export_unicode_filename(name: str) -> str | None:
    """For a name with non-ASCII letters, the slug that keeps them: ``preset-größe-ü.json``."""
    if name.isascii():
        return None
    return f"preset-{slugify(name, allow_unicode=True) or 'unnamed'}.json"


def preset_download(preset: ParameterPreset) -> HttpResponse:
    return download_response(
        dump(export_document(preset)), export_filename(preset.name), export_unicode_filename(preset.name)
    )


def _version_problem(version: object) -> str | None:
    if version is None:
        return f'this field is required (this server writes "{FORMAT_VERSION}")'
    text = str(version) if isinstance(version, str | int | float) and not isinstance(version, bool) else None
    if text is None or not (text == "1" or text.startswith("1.")):
        return f"unsupported version {json.dumps(version)[:40]}; this server reads version 1.x documents"
    return None


def parse_document(document: object) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The presets an import document holds, each normalised, and every problem with its JSON path.

    Paths are rooted in the document: ``preset.parameters.tp-size[0]``, ``presets[2].name``.
    """
    if not isinstance(document, dict):
        return [], [
            Problem("", f'expected an object with "version" and "preset" or "presets", got {describe_type(document)}')
        ]
    problems: list[Problem] = []
    version_problem = _version_problem(document.get("version"))
    if version_problem:
        problems.append(Problem("version", version_problem))

    if "preset" in document and "presets" in document:
        return [], [*problems, Problem("", 'give either "preset" (one) or "presets" (a list), not both')]
    if "preset" in document:
        items, paths = [document["preset"]], ["preset"]
    elif "presets" in document:
        if not isinstance(document["presets"], list):
            return [], [*problems, Problem("presets", f"expected a list, got {describe_type(document['presets'])}")]
        if not document["presets"]:
            return [], [*problems, Problem("presets", "the list is empty; nothing to import")]
        items = document["presets"]
        paths = [f"presets[{index}]" for index in range(len(items))]
    else:
        return [], [*problems, Problem("", 'expected "preset" (one preset) or "presets" (a list of presets)')]

    contents: list[dict[str, Any]] = []
    first_path_of: dict[str, str] = {}
    for item, path in zip(items, paths, strict=True):
        fields, found = preset_fields(item)
        problems += [problem.under(path) for problem in found]
        name = fields.get("name")
        if name and not found:
            key = name.casefold()
            if key in first_path_of:
                problems.append(Problem(f"{path}.name", f'"{name}" is already used by {first_path_of[key]}'))
            first_path_of.setdefault(key, path)
        contents.append(fields)
    return contents, problems


def is_bundle(document: dict[str, Any]) -> bool:
    return "presets" in document
