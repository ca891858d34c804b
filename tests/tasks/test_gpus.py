"""GPUs lent through database leases: which ids an experiment gets, that no two running experiments
share one, that a lease ends with its experiment, and how claims pack a host (tasks.gpus and
tasks.lifecycle.claim_next, in-process; tests/tasks/test_packing.py runs real workers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from tasks import gpus, lifecycle
from tasks.gpus import GpuSlot, choose
from tasks.models import Experiment, Task
from tasks.results import progress
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.tasks.runs import make_experiment

pytestmark = pytest.mark.django_db

HOST = settings.HOST_NAME


@pytest.mark.parametrize(
    ("free", "needed", "chosen"),
    [
        ([0, 1, 2, 3], 2, [0, 1]),
        ([1, 2, 3], 2, [2, 3]),  # the aligned pair 2-3 before the unaligned 1-2
        ([1, 2, 4, 7], 2, [1, 2]),  # no aligned pair free: neighbours
        ([0, 3, 5, 7], 2, [0, 3]),  # no neighbours free: whichever are
        ([0, 1, 2, 4, 5, 6, 7], 4, [4, 5, 6, 7]),
        ([0, 1, 2], 4, None),
        ([5], 1, [5]),
    ],
)
def test_a_tensor_parallel_group_gets_adjacent_gpus_when_it_can(free, needed, chosen):
    assert choose(free, 8, needed) == chosen


def free_gpus() -> int:
    return GpuSlot.objects.filter(host=HOST, experiment__isnull=True).count()


def start(parameters, *, gpus_cap=8, **fields):
    task = make_task(parameters=parameters, gpus=gpus_cap, **fields)
    lifecycle.start(task, enqueue=False)
    return task


def claim_all(task) -> list[Experiment]:
    claimed = []
    while (experiment := lifecycle.claim_next(task.pk)) is not None:
        claimed.append(experiment)
    return claimed


def test_one_gpu_combinations_fill_a_host_each_on_its_own_gpu(settings):
    settings.GPU_IDS = [str(gpu) for gpu in range(8)]
    settings.PARALLEL_EXPERIMENTS = 8
    task = start(
        {"tp-size": [1], "schedule-policy": ["fcfs", "lpm"], "chunked-prefill-size": [512, 1024, 2048, 4096, 8192]}
    )

    claimed = claim_all(task)

    assert len(claimed) == 8  # of 10: the host has 8 GPUs
    assert sorted(gpu for experiment in claimed for gpu in experiment.gpu_ids) == settings.GPU_IDS
    assert all(experiment.host == HOST and len(experiment.gpu_ids) == 1 for experiment in claimed)
    assert GpuSlot.objects.filter(experiment__isnull=True).count() == 0


def test_each_combination_gets_the_gpus_its_engine_uses_under_the_tasks_cap(settings):
    settings.GPU_IDS = [str(gpu) for gpu in range(8)]
    task = start({"tp-size": [1, 2, 4, 8]}, gpus_cap=4)

    assert {experiment.parameters["tp-size"]: experiment.gpus for experiment in task.experiments.all()} == {
        1: 1,
        2: 2,
        4: 4,
    }
    assert task.plan_summary.skipped == {
        "tp-size × dp-size × pp-size = 8 GPUs, over the task's cap of 4 per experiment": 1
    }
    claimed = {experiment.parameters["tp-size"]: experiment.gpu_ids for experiment in claim_all(task)}
    assert claimed == {1: ["0"], 2: ["2", "3"], 4: ["4", "5", "6", "7"]}


def test_sglang_data_parallel_replicas_take_gpus_and_attention_dp_does_not(settings):
    settings.GPU_IDS = [str(gpu) for gpu in range(8)]
    task = start({"tp-size": [2], "dp-size": [2], "attn-dp-size": [1, 2]}, gpus_cap=8)

    needed = {experiment.parameters["attn-dp-size"]: experiment.gpus for experiment in task.experiments.all()}

    assert needed == {1: 4}  # tp 2 × 2 replicas; replicas with attention DP are refused by SGLang


def test_a_combination_waiting_for_more_gpus_leaves_the_free_ones_to_those_behind_it(settings):
    settings.GPU_IDS = ["0", "1", "2"]
    task = start({"tp-size": [2, 1], "chunked-prefill-size": [512, 1024]})
    first = lifecycle.claim_next(task.pk)  # tp 2 on 0-1
    assert first.parameters == {"tp-size": 2, "chunked-prefill-size": 512}

    second = lifecycle.claim_next(task.pk)

    # The next tp 2 needs two GPUs and one is free: the tp 1 behind it runs on that one.
    assert second.parameters == {"tp-size": 1, "chunked-prefill-size": 512}
    assert second.gpu_ids == ["2"]
    assert lifecycle.claim_next(task.pk) is None
    assert lifecycle.has_more(task.pk)


def test_a_finished_experiment_returns_its_gpus(settings):
    settings.GPU_IDS = ["0", "1"]
    task = start({"tp-size": [2], "chunked-prefill-size": [512, 1024]})
    first = lifecycle.claim_next(task.pk)
    assert lifecycle.claim_next(task.pk) is None

    Experiment.objects.filter(pk=first.pk).update(status=ExperimentStatus.SUCCEEDED)
    gpus.release(first.pk)
    second = lifecycle.claim_next(task.pk)

    assert second.gpu_ids == ["0", "1"]


def test_a_lease_whose_experiment_no_longer_runs_is_freed_by_recovery(settings):
    settings.GPU_IDS = ["0", "1"]
    task = start({"tp-size": [2]})
    experiment = lifecycle.claim_next(task.pk)
    # The worker died between ending the experiment and freeing its GPUs.
    Experiment.objects.filter(pk=experiment.pk).update(status=ExperimentStatus.FAILED)

    lifecycle.recover_lost_experiments()

    assert GpuSlot.objects.filter(experiment__isnull=False).count() == 0


def test_a_cancelled_task_returns_no_gpu_held_by_a_pending_experiment_and_deleting_frees_them(settings):
    settings.GPU_IDS = ["0", "1"]
    task = start({"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048]})
    claim_all(task)
    assert free_gpus() == 0

    task.experiments.filter(status__in=[ExperimentStatus.STARTING]).update(status=ExperimentStatus.CANCELLED)
    lifecycle.recover_lost_experiments()

    assert free_gpus() == 2


def test_at_most_parallel_experiments_of_one_task_run_at_once(settings):
    settings.GPU_IDS = [str(gpu) for gpu in range(8)]
    settings.PARALLEL_EXPERIMENTS = 3
    task = start({"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048, 4096, 8192]})

    assert len(claim_all(task)) == 3
    assert free_gpus() == 5


def test_two_tasks_share_a_hosts_gpus_without_overlap(settings):
    settings.GPU_IDS = ["0", "1", "2", "3"]
    first = start({"tp-size": [2], "chunked-prefill-size": [512, 1024]})
    second = start({"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048]})

    held = [gpu for task in (first, second, first, second) if (e := lifecycle.claim_next(task.pk)) for gpu in e.gpu_ids]

    assert sorted(held) == ["0", "1", "2", "3"]


def test_a_worker_offering_other_gpus_registers_them_and_drops_the_free_ones_it_no_longer_offers():
    gpus.register_host("gpu-host-1", ["0", "1", "2"])
    gpus.register_host("gpu-host-1", ["1", "2"])

    assert list(GpuSlot.objects.filter(host="gpu-host-1").values_list("gpu", "position")) == [("1", 0), ("2", 1)]


def test_tasks_started_together_take_turns_on_a_hosts_gpu(settings):
    settings.GPU_IDS = ["0"]
    first = start({"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048]})
    second = start({"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048]})
    order = []
    for _ in range(12):  # each task's jobs ask in turn, as the queue hands them out
        for task in (first, first, second, second):
            if (experiment := lifecycle.claim_next(task.pk)) is not None:
                order.append(task.pk)
                Experiment.objects.filter(pk=experiment.pk).update(status=ExperimentStatus.SUCCEEDED)
                gpus.release(experiment.pk)

    assert order == [first.pk, second.pk] * 3


def test_a_task_run_in_the_foreground_does_not_give_way(settings):
    settings.GPU_IDS = ["0"]
    first = start({"tp-size": [1], "chunked-prefill-size": [512, 1024]})
    start({"tp-size": [1], "chunked-prefill-size": [512, 1024]})
    claimed = lifecycle.claim_next(first.pk)
    Experiment.objects.filter(pk=claimed.pk).update(status=ExperimentStatus.SUCCEEDED)
    gpus.release(claimed.pk)

    assert lifecycle.claim_next(first.pk) is None  # the other task's turn
    assert lifecycle.claim_next(first.pk, take_turns=False) is not None


def test_the_time_left_counts_the_experiments_running_side_by_side():
    task = make_task(parameters={"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048, 4096, 8192, 16384]})
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.RUNNING, started_at=timezone.now())
    task.refresh_from_db()
    start = timezone.now() - timedelta(minutes=5)
    for number in (1, 2):
        make_experiment(task, number, started_at=start, finished_at=start + timedelta(seconds=60))
    for number in (3, 4):
        make_experiment(task, number, ExperimentStatus.BENCHMARKING)

    left = progress(task, list(task.experiments.all())).remaining_s

    assert left == 60 * 4 / 2  # four to go, a minute each, two at a time
