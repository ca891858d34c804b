"""Fixtures of the tasks tests (pages, API, models): the system presets tasks are built from, a
task before and after a run, and worker processes on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from presets.models import ParameterPreset
from tasks.models import Experiment, Task
from tasks.runner import kill_group
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.tasks.runs import GRID, VIOLATION, in_status, make_experiment, measured
from tests.workers import Processes, database_url


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
def draft(user) -> Task:
    """Four runnable experiments: both tp-sizes fit on two GPUs."""
    return make_task(name="Llama sweep", parameters=GRID, gpus=2, created_by=user)


@pytest.fixture
def finished(draft) -> Task:
    """A completed run: the best (1) meets the SLOs, 2 is faster but violates one, 3 failed, 4 is slower."""
    task = in_status(draft, TaskStatus.COMPLETED)
    measured(task, 1, throughput=300.0, latency=2.0)
    measured(task, 2, throughput=500.0, latency=3.0, score=None, slo_violation=VIOLATION)
    make_experiment(
        task,
        3,
        ExperimentStatus.FAILED,
        error="engine exited with code 1 before it was ready",
        log_tail="loading weights\nCUDA out of memory",
    )
    measured(task, 4, throughput=200.0, latency=1.0)
    return task


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Processes on the test database; stopped afterwards, with any engine a killed worker left."""
    started = Processes(database_url(connection.settings_dict), tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
        for pid in Experiment.objects.exclude(engine_pid=None).values_list("engine_pid", flat=True):
            kill_group(pid)
