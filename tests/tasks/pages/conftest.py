from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks import lifecycle
from tasks.models import Experiment, ExperimentStatus, Task, TaskStatus
from tests.factories import make_task
from tests.tasks.pages.helpers import HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
from tests.tasks.runs import EARLIER, GRID, VIOLATION, in_status, make_experiment, measured


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
def running(draft) -> Task:
    """Started for real, then two experiments finished and the third benchmarking."""
    task = lifecycle.start(draft, enqueue=False)
    task = in_status(task, TaskStatus.RUNNING)
    Experiment.objects.filter(task=task, number=1).update(
        status=ExperimentStatus.SUCCEEDED,
        score=300.0,
        throughput=300.0,
        latency=2.0,
        started_at=EARLIER,
        finished_at=EARLIER + timedelta(minutes=2),
    )
    Experiment.objects.filter(task=task, number=2).update(
        status=ExperimentStatus.FAILED,
        error="engine exited",
        started_at=EARLIER,
        finished_at=EARLIER + timedelta(minutes=2),
    )
    Experiment.objects.filter(task=task, number=3).update(
        status=ExperimentStatus.BENCHMARKING,
        step="benchmarking level 32",
        started_at=timezone.now(),
        worker="gpu-host:42",
    )
    return task
