"""The shipped system presets, read against the engines they name."""

from __future__ import annotations

import json

from engines.catalogue import for_engine
from presets.models import SYSTEM_PRESETS_FILE

PRESETS = json.loads(SYSTEM_PRESETS_FILE.read_text())["presets"]


def test_a_vllm_preset_that_lowers_gpu_memory_utilization_says_it_shrinks_the_kv_cache():
    # vllm 0.34.0 config/cache.py:216-231: unset is 1.0 with the extensible KV cache (the default on
    # CUDA and ROCm), and the docs say to leave it unset; 0.33.0 defaulted to 0.92.
    assert for_engine("vllm").flags["gpu-memory-utilization"].default is None
    lowering = [preset for preset in PRESETS if "gpu-memory-utilization" in preset["parameters"]]

    assert [preset["name"] for preset in lowering] == ["Memory Efficient (vLLM)"]
    assert all("shrinks the KV cache" in preset["description"] for preset in lowering)


def test_every_system_preset_checks_clean_against_the_newest_catalogue_of_its_engine():
    from engines.checks import check_for_runtime, errors

    for preset in PRESETS:
        assert errors(check_for_runtime(preset["parameters"], preset["runtime"])) == [], preset["name"]
