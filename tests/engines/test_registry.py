"""engines.registry is the one list of engines: every runtime choice, label, message and launcher comes from it."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from drf_spectacular.generators import SchemaGenerator

import engines.catalogue
from engines.plan import launch_command, rules_for, skip_reason
from engines.registry import ENGINES, UnknownEngine, engine, engine_names, quoted_names
from presets.filters import PresetFilter
from presets.models import ParameterPreset, Runtime
from presets.validators import RUNTIMES, preset_fields
from tasks.models import Task

NAMES = list(engine_names())


def test_the_runtime_choices_the_validator_and_the_api_schema_all_list_the_registrys_engines():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert Runtime.values == NAMES
    assert Runtime.labels == [known.label for known in ENGINES]
    assert [value for value, _ in ParameterPreset._meta.get_field("runtime").choices] == NAMES
    assert [value for value, _ in Task._meta.get_field("runtime").choices] == NAMES
    assert list(RUNTIMES) == NAMES
    assert runtime_enums(schema) == [NAMES]


def runtime_enums(schema: dict[str, Any]) -> list[list[str]]:
    """Every distinct list of values the schema allows for a ``runtime`` property (null and blank aside)."""
    components = schema["components"]["schemas"]
    found: list[list[str]] = []
    for component in components.values():
        runtime = component.get("properties", {}).get("runtime")
        if runtime is None:
            continue
        for choice in runtime.get("oneOf", [runtime]):
            target = components[choice["$ref"].rsplit("/", 1)[1]] if "$ref" in choice else choice
            values = [value for value in target.get("enum", ()) if value not in ("", None)]
            if values and values not in found:
                found.append(values)
    return found


def test_the_preset_list_filters_by_each_engine_or_by_any_engine_only():
    choices = [value for value, _ in PresetFilter.base_filters["runtime"].extra["choices"]]

    assert choices == [*NAMES, "any"]


def test_a_runtime_the_registry_does_not_know_is_refused_with_the_known_ones_listed():
    fields, problems = preset_fields({"name": "x", "parameters": {"tp-size": [1]}, "runtime": "tensorrt"})

    assert "runtime" not in fields
    assert [str(problem) for problem in problems] == [
        f'runtime: "tensorrt" is not a runtime; expected {quoted_names()} or null (any)'
    ]
    assert all(f'"{name}"' in quoted_names() for name in NAMES)


def test_engine_names_the_known_ones_when_asked_for_another():
    assert engine("vllm").label == "vLLM"
    with pytest.raises(UnknownEngine, match=r"^'tensorrt' is not an engine; known: sglang, vllm$"):
        engine("tensorrt")


@pytest.mark.parametrize("known", ENGINES, ids=NAMES)
def test_each_engine_starts_with_its_own_launcher_and_limits_gpus_by_its_parallel_flags(known):
    command = launch_command(known.name, "org/model", {}, catalogue=None)
    tensor = known.parallel_flags[0]

    assert command.startswith(" ".join(known.launcher).replace("{model}", "org/model") + " --host")
    assert skip_reason({tensor: 4}, rules_for(known.name, 2)).endswith("over the task's cap of 2 per experiment")


def test_an_unknown_engine_has_no_rules():
    assert rules_for("tensorrt", 1) == []


def test_regenerate_catalogue_offers_exactly_the_registrys_engines(tmp_path):
    with pytest.raises(CommandError, match=r"invalid choice: 'tensorrt' \(choose from 'sglang', 'vllm'\)"):
        call_command("regenerate_catalogue", "tensorrt", "--output", str(tmp_path / "out.json"))


def test_a_catalogue_file_of_an_engine_the_registry_does_not_know_is_not_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(engines.catalogue, "DATA_DIR", tmp_path)
    engines.catalogue.clear_cache()
    for name in ("vllm", "tensorrt", "sglang"):
        (tmp_path / f"{name}-1.0.json").write_text(f'{{"engine": "{name}", "version": "1.0", "flags": []}}')
    try:
        assert engines.catalogue.engines() == NAMES
        assert engines.catalogue.for_engine("tensorrt") is None
    finally:
        engines.catalogue.clear_cache()


def test_the_standin_launchers_run_the_standin_module_in_each_engines_style():
    assert {
        known.name: [sys.executable, "-m", "engines.standin", *known.model_arguments] for known in ENGINES
    } == settings.STANDIN_LAUNCHERS


def test_the_standin_runs_as_a_module_of_the_app():
    shown = subprocess.run(
        [sys.executable, "-m", "engines.standin", "--help"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    assert "python -m engines.standin serve M" in shown.stdout


def test_the_engines_app_imports_neither_presets_nor_tasks():
    """presets and tasks read the registry; an import back would make the one list depend on its users."""
    modules = ["engines.registry", "engines.catalogue", "engines.checks", "engines.plan", "engines.parsers"]
    code = f"import sys; {'; '.join(f'import {name}' for name in modules)}; print(sorted(sys.modules))"
    shown = subprocess.run(
        [sys.executable, "-c", code], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=30, check=True
    )

    assert not [name for name in shown.stdout.split("'") if name.split(".")[0] in ("presets", "tasks")]
