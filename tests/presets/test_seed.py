from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from engines.catalogue import for_engine
from engines.checks import check_for_runtime
from presets.models import SYSTEM_PRESETS_FILE, ParameterPreset
from presets.seeding import seed_system_presets
from tests.factories import make_preset, system_preset_names, system_presets

pytestmark = pytest.mark.django_db

SYSTEM_PARAMETERS = {
    "Memory Efficient": {
        "tp-size": [1],
        "mem-fraction-static": [0.7, 0.75],
        "chunked-prefill-size": [2048],
    },
    "High Throughput": {
        "tp-size": [2, 4],
        "mem-fraction-static": [0.9],
        "schedule-policy": ["fcfs"],
        "enable-mixed-chunk": [True],
    },
    "Low Latency": {
        "tp-size": [1, 2],
        "schedule-policy": ["lpm"],
        "mem-fraction-static": [0.85],
    },
    "Balanced": {
        "tp-size": [1, 2],
        "mem-fraction-static": [0.85],
        "schedule-policy": ["fcfs", "lpm"],
    },
}

# The vLLM counterparts, after the four SGLang presets in the shipped file, each with its category.
VLLM_CATEGORIES = {
    "Memory Efficient (vLLM)": "memory",
    "High Throughput (vLLM)": "performance",
    "Low Latency (vLLM)": "performance",
    "Balanced (vLLM)": "general",
}

# Every shipped system preset, SGLang and vLLM: what a full seed creates.
SHIPPED = len(system_preset_names())


def seed() -> str:
    out = StringIO()
    call_command("seed_presets", stdout=out)
    return out.getvalue()


def as_json(value: object) -> str:
    """JSON text, so that a flag set to 1 does not pass for one set to true."""
    return json.dumps(value, sort_keys=True)


def test_seeding_creates_the_four_sglang_system_presets_with_their_exact_parameters():
    output = seed()

    presets = {preset.name: preset for preset in ParameterPreset.objects.filter(runtime="sglang")}
    assert set(presets) == set(SYSTEM_PARAMETERS)
    for name, parameters in SYSTEM_PARAMETERS.items():
        assert as_json(presets[name].parameters) == as_json(parameters), name
        assert list(presets[name].parameters) == list(parameters), name  # flag order as shipped
    assert set(ParameterPreset.objects.values_list("name", flat=True)) == set(system_preset_names())
    assert f"System presets: {SHIPPED} created, 0 restored, 0 unchanged." in output


def test_seeding_creates_the_four_vllm_system_presets_and_every_system_preset_passes_its_engine_check():
    seed()

    vllm = {preset.name: preset for preset in ParameterPreset.objects.filter(runtime="vllm")}
    assert set(vllm) == set(VLLM_CATEGORIES)
    for name, preset in vllm.items():
        assert preset.is_system is True, name
        assert preset.category == VLLM_CATEGORIES[name], name
    presets = list(ParameterPreset.objects.filter(is_system=True))
    assert len(presets) == SHIPPED == len(SYSTEM_PARAMETERS) + len(VLLM_CATEGORIES)
    for preset in presets:
        # An empty or unknown runtime would be checked against nothing: each names a catalogued engine.
        assert for_engine(preset.runtime) is not None, preset.name
        assert check_for_runtime(preset.parameters, preset.runtime) == [], preset.name


def test_system_presets_are_for_their_engine_marked_system_and_authored_by_system():
    seed()

    runtimes = dict(ParameterPreset.objects.values_list("name", "runtime"))
    assert runtimes == {definition["name"]: definition["runtime"] for definition in system_presets()}
    assert {runtimes[name] for name in SYSTEM_PARAMETERS} == {"sglang"}
    assert {runtimes[name] for name in VLLM_CATEGORIES} == {"vllm"}
    for preset in ParameterPreset.objects.all():
        assert preset.is_system is True, preset.name
        assert preset.created_by is None, preset.name
        assert preset.description, preset.name
        assert preset.metadata["author"] == "system", preset.name
        assert preset.metadata["tags"], preset.name
        assert all(isinstance(tag, str) for tag in preset.metadata["tags"]), preset.name


def test_system_presets_have_the_categories_of_what_they_are_for():
    seed()

    categories = dict(ParameterPreset.objects.values_list("name", "category"))
    assert categories == {
        "Memory Efficient": "memory",
        "High Throughput": "performance",
        "Low Latency": "performance",
        "Balanced": "general",
        **VLLM_CATEGORIES,
    }
    for name in SYSTEM_PARAMETERS:  # a vLLM preset is for what its SGLang namesake is for
        assert categories[f"{name} (vLLM)"] == categories[name], name


def test_system_presets_use_real_sglang_flag_names():
    seed()

    # enable-chunked-prefill is a real vLLM flag, so only the SGLang presets are looked at.
    flags = {flag for preset in ParameterPreset.objects.filter(runtime="sglang") for flag in preset.parameters}
    assert "enable-mixed-chunking" not in flags
    assert "enable-chunked-prefill" not in flags
    assert "enable-mixed-chunk" in flags


def test_seeding_twice_changes_nothing():
    seed()
    before = {preset.pk: (preset.name, preset.updated_at) for preset in ParameterPreset.objects.all()}

    output = seed()

    after = {preset.pk: (preset.name, preset.updated_at) for preset in ParameterPreset.objects.all()}
    assert after == before
    assert ParameterPreset.objects.count() == SHIPPED
    assert f"System presets: 0 created, 0 restored, {SHIPPED} unchanged." in output


def test_the_manager_method_reports_what_it_did():
    first = seed_system_presets()
    second = seed_system_presets()

    assert first["created"] == system_preset_names()  # in file order
    assert set(SYSTEM_PARAMETERS) | set(VLLM_CATEGORIES) == set(first["created"])
    assert first["restored"] == first["unchanged"] == []
    assert second["unchanged"] == system_preset_names()
    assert second["created"] == second["restored"] == []


def test_the_manager_method_accepts_its_own_definitions():
    outcome = seed_system_presets([{"name": "Tiny", "parameters": {"--tp_size": 1}}])

    preset = ParameterPreset.objects.get()
    assert outcome["created"] == ["Tiny"]
    assert preset.is_system is True
    assert preset.parameters == {"tp-size": [1]}
    assert preset.runtime == ""
    assert preset.metadata == {}


def test_a_flag_changed_from_true_to_one_is_restored():
    seed()
    preset = ParameterPreset.objects.get(name="High Throughput")
    tampered = {**SYSTEM_PARAMETERS["High Throughput"], "enable-mixed-chunk": [1]}
    ParameterPreset.objects.filter(pk=preset.pk).update(parameters=tampered)

    output = seed()

    preset.refresh_from_db()
    assert as_json(preset.parameters) == as_json(SYSTEM_PARAMETERS["High Throughput"])
    assert preset.parameters["enable-mixed-chunk"][0] is True
    assert "restored: High Throughput" in output
    assert ParameterPreset.objects.count() == SHIPPED


def test_changed_values_are_restored():
    seed()
    ParameterPreset.objects.filter(name="Balanced").update(parameters={"tp-size": [8]})

    seed()

    assert ParameterPreset.objects.get(name="Balanced").parameters == SYSTEM_PARAMETERS["Balanced"]


def test_a_changed_description_and_metadata_are_restored():
    seed()
    preset = ParameterPreset.objects.get(name="Low Latency")
    shipped_description, shipped_metadata = preset.description, preset.metadata
    ParameterPreset.objects.filter(pk=preset.pk).update(description="Edited", metadata={"author": "mallory"})

    seed()

    preset.refresh_from_db()
    assert preset.description == shipped_description
    assert preset.metadata == shipped_metadata


def test_a_renamed_system_preset_keeps_its_row_and_gets_its_name_back():
    seed()
    preset = ParameterPreset.objects.get(name="Balanced")
    ParameterPreset.objects.filter(pk=preset.pk).update(name="BALANCED ")

    seed()

    preset.refresh_from_db()
    assert preset.name == "Balanced"
    assert ParameterPreset.objects.count() == SHIPPED


def test_seeding_restores_only_what_was_changed():
    seed()
    untouched = ParameterPreset.objects.get(name="Memory Efficient")
    ParameterPreset.objects.filter(name="Balanced").update(description="Edited")

    output = seed()

    assert f"System presets: 0 created, 1 restored, {SHIPPED - 1} unchanged." in output
    assert ParameterPreset.objects.get(pk=untouched.pk).updated_at == untouched.updated_at


def test_a_user_preset_with_a_system_name_makes_seeding_fail_and_change_nothing(user):
    squatter = make_preset(name="balanced", parameters={"tp-size": [8]}, created_by=user)

    with pytest.raises(CommandError, match='A user preset is named "balanced"'):
        seed()

    # Memory Efficient, High Throughput and Low Latency come first in the file: rolled back too.
    assert list(ParameterPreset.objects.all()) == [squatter]
    squatter.refresh_from_db()
    assert squatter.is_system is False
    assert squatter.parameters == {"tp-size": [8]}


def test_the_manager_method_raises_a_validation_error_for_a_user_preset_with_a_system_name():
    make_preset(name="Low Latency")

    with pytest.raises(ValidationError, match="rename it first"):
        seed_system_presets()

    assert ParameterPreset.objects.count() == 1


def test_the_shipped_file_is_in_the_exchange_format():
    document = json.loads(SYSTEM_PRESETS_FILE.read_text())

    assert document["version"] == "1.0"
    assert [preset["name"] for preset in document["presets"]] == [*SYSTEM_PARAMETERS, *VLLM_CATEGORIES]
