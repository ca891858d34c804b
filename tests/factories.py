"""Small factory functions for tests: explicit defaults, any field overridable."""

from __future__ import annotations

import itertools
from typing import Any

from accounts.models import ApiToken
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
        # The run tests count and time a grid's own experiments; the baseline, the finalists' repeats
        # and warm-up have tests of their own (tests/tasks/test_trust.py), which turn them on.
        "baseline": False,
        "finalists": 0,
        "warmup_requests": 0,
    }
    fields.update(overrides)
    task = Task(**fields)
    task.save()
    return task


def system_presets(runtime: str | None = None) -> list[dict[str, Any]]:
    """The shipped system preset definitions, as in presets/data/system_presets.json (file order);
    only those for ``runtime`` when given."""
    import json

    from presets.models import SYSTEM_PRESETS_FILE

    definitions = json.loads(SYSTEM_PRESETS_FILE.read_text())["presets"]
    return [definition for definition in definitions if runtime is None or definition.get("runtime") == runtime]


def system_preset_names(runtime: str | None = None) -> list[str]:
    """The shipped system presets' names in file order; only those for ``runtime`` when given."""
    return [definition["name"] for definition in system_presets(runtime)]


def make_token_key(user, name: str = "Tests") -> str:
    """A new API token for the user; returns its key (the database holds only its hash)."""
    return ApiToken.objects.create_token(user=user, name=name)[1]
