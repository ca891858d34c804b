"""Fixtures of the tasks tests (pages, API, models): the system presets tasks are built from."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset


@pytest.fixture
def high(system_presets) -> ParameterPreset:
    return system_presets["High Throughput"]


@pytest.fixture
def memory(system_presets) -> ParameterPreset:
    return system_presets["Memory Efficient"]


@pytest.fixture
def latency(system_presets) -> ParameterPreset:
    return system_presets["Low Latency"]
