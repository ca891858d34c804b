from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tests.factories import make_task
from tests.tasks.pages.helpers import HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS


@pytest.fixture
def high(system_presets) -> ParameterPreset:
    return system_presets["High Throughput"]


@pytest.fixture
def memory(system_presets) -> ParameterPreset:
    return system_presets["Memory Efficient"]


@pytest.fixture
def latency(system_presets) -> ParameterPreset:
    return system_presets["Low Latency"]


@pytest.fixture
def built_from_presets(user, high, memory) -> Task:
    """A task the user built from High Throughput then Memory Efficient, last wins, grid untouched."""
    return make_task(
        name="Llama sweep",
        description="Before",
        created_by=user,
        parameters=HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
        applied_presets=[{"id": high.pk, "name": high.name}, {"id": memory.pk, "name": memory.name}],
        merge_strategy="last_wins",
    )
