"""Small factory functions for tests: explicit defaults, any field overridable."""

from __future__ import annotations

import itertools
from typing import Any

from presets.models import ParameterPreset
from tasks.models import Task

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


def make_task(**overrides: Any) -> Task:
    fields: dict[str, Any] = {
        "name": f"Task {next(_numbers)}",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "runtime": "sglang",
        "parameters": {"tp-size": [1, 2]},
    }
    fields.update(overrides)
    task = Task(**fields)
    task.save()
    return task
