"""The preset exchange format: what export writes and import reads.

One preset: ``{"version": "1.0", "preset": {name, description, category, runtime,
parameters, metadata}}``; several: ``{"version": "1.0", "presets": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.utils.text import slugify

if TYPE_CHECKING:
    from presets.models import ParameterPreset

FORMAT_VERSION = "1.0"


def export_document(preset: ParameterPreset) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "preset": preset.content()}


def export_bundle(presets: Iterable[ParameterPreset]) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "presets": [preset.content() for preset in presets]}


def dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def export_filename(name: str) -> str:
    """``preset-high-throughput.json``: a lowercase ASCII slug of the name."""
    return f"preset-{slugify(name) or 'unnamed'}.json"
