"""Small factory functions for tests: explicit defaults, any field overridable."""

from __future__ import annotations

import itertools
from typing import Any

from presets.models import ParameterPreset

_numbers = itertools.count(1)


def make_preset(**overrides: Any) -> ParameterPreset:
    fields: dict[str, Any] = {
        "name": f"Preset {next(_numbers)}",
        "category": "custom",
        "parameters": {"tp-size": [1, 2]},
    }
    fields.update(overrides)
    preset = ParameterPreset(**fields)
    preset.save()
    return preset
