from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks import lifecycle
from tasks.models import Experiment, Task
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.tasks.pages.helpers import HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
from tests.tasks.runs import EARLIER, in_status


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
