"""The shipped system presets, read against the engines they name."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from django.conf import settings

from engines.catalogue import for_engine, versions
from engines.checks import check_for_runtime, errors, same_flag
from engines.plan import Plan, command_arguments, rules_for
from engines.registry import engine_names
from presets.models import SYSTEM_PRESETS_FILE
from tests.engines.wheels import PYTHON, unpacked

PRESETS = json.loads(SYSTEM_PRESETS_FILE.read_text())["presets"]


def test_a_vllm_preset_that_lowers_gpu_memory_utilization_says_it_shrinks_the_kv_cache():
    # vllm 0.34.0 config/cache.py:216-231: unset is 1.0 with the extensible KV cache (the default on
    # CUDA and ROCm), and the docs say to leave it unset; 0.33.0 defaulted to 0.92.
    newest = for_engine("vllm")
    assert newest is not None
    assert newest.flags["gpu-memory-utilization"].default is None
    lowering = [preset for preset in PRESETS if "gpu-memory-utilization" in preset["parameters"]]

    assert [preset["name"] for preset in lowering] == ["Memory Efficient (vLLM)"]
    assert all("shrinks the KV cache" in preset["description"] for preset in lowering)


def test_every_system_preset_checks_clean_against_the_newest_catalogue_of_its_engine():
    for preset in PRESETS:
        assert errors(check_for_runtime(preset["parameters"], preset["runtime"])) == [], preset["name"]


def runnable_flags(engine: str, version: str) -> list[tuple[str, list[str]]]:
    """(preset, flags) for every runnable combination of every preset for ``engine`` on 1-8 GPUs."""
    catalogue = for_engine(engine, version)
    lines = []
    for preset in PRESETS:
        if preset["runtime"] not in ("", engine):
            continue
        grid = preset["parameters"]
        for gpus in (1, 2, 4, 8):
            for combination in Plan(grid, rules_for(engine, gpus), same_flag(list(grid), catalogue)).combinations():
                words = [
                    word for flag, value in combination.items() for word in command_arguments(flag, value, catalogue)
                ]
                lines.append((f"{preset['name']} on {gpus} GPUs", words))
    return lines


@pytest.mark.parametrize(
    ("engine", "version"), [(engine, version) for engine in engine_names() for version in versions(engine)]
)
def test_every_runnable_combination_of_every_system_preset_parses_with_the_engines_own_parser(engine, version):
    sources = unpacked(f"{engine}-{version}")
    lines = runnable_flags(engine, version)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(sources), str(settings.BASE_DIR)])}

    done = subprocess.run(
        [PYTHON, "-m", "engines.parsers", engine, "--parse"],
        input=json.dumps([words for _, words in lines]),
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )

    refused = [
        (where, words, said) for (where, words), said in zip(lines, json.loads(done.stdout), strict=True) if said
    ]
    assert len(lines) > 10
    assert refused == []
