"""Learning from out-of-memory failures: a combination that ran out of memory at a memory fraction
skips the same combination at that fraction or a higher one, and nothing else."""

from __future__ import annotations

import pytest

from tasks.models import Experiment, Task
from tasks.pruning import is_out_of_memory, memory_flag, oom_skip_reason, prune_after_oom
from tasks.results import progress
from tasks.states import ExperimentRole, ExperimentStatus
from tests.factories import make_task
from tests.tasks.runs import make_experiment

pytestmark = pytest.mark.django_db

GRID = {"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.85, 0.9]}
# The standin engine's and PyTorch's own words.
TORCH_OOM = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."


def oom_task(**overrides) -> Task:
    return make_task(**{"parameters": GRID, "gpus": 2, **overrides})


def planned(task: Task) -> None:
    """Every combination of the grid, pending, numbered in plan order from 1."""
    for number, (_, combination, _) in enumerate(task.plan(), 1):
        make_experiment(task, number, ExperimentStatus.PENDING, parameters=combination)


def crash(task: Task, number: int, **fields) -> Experiment:
    experiment = task.experiments.get(number=number)
    for name, value in {"status": ExperimentStatus.FAILED, "error": "engine exited with code 1", **fields}.items():
        setattr(experiment, name, value)
    experiment.save()
    return experiment


def statuses(task: Task) -> dict[int, str]:
    return dict(task.experiments.values_list("number", "status"))


@pytest.mark.parametrize(
    ("error", "log_tail", "expected"),
    [
        ("engine exited with code 1", f"loading weights\n{TORCH_OOM}", True),
        ("RuntimeError: CUDA Out Of Memory", "", True),
        ("", "vllm: OutOfMemoryError while profiling", True),
        ("engine exited with code 1", "Address already in use", False),
    ],
    ids=["torch-in-log", "any-case-in-error", "class-name", "another-failure"],
)
def test_an_out_of_memory_failure_is_read_from_the_error_or_the_log(error, log_tail, expected):
    task = oom_task()
    experiment = make_experiment(task, 1, ExperimentStatus.FAILED, error=error, log_tail=log_tail)

    assert is_out_of_memory(experiment) is expected


def test_a_succeeded_experiment_whose_log_mentions_memory_did_not_run_out():
    experiment = make_experiment(oom_task(), 1, log_tail="warning: close to out of memory, lowering the batch")

    assert not is_out_of_memory(experiment)


def test_each_engine_names_its_own_memory_fraction():
    assert (memory_flag("sglang"), memory_flag("vllm"), memory_flag("other")) == (
        "mem-fraction-static",
        "gpu-memory-utilization",
        None,
    )


def test_the_reason_names_the_failed_experiment_and_both_fractions():
    task = oom_task()
    failed = make_experiment(
        task, 4, ExperimentStatus.FAILED, parameters={"tp-size": 1, "mem-fraction-static": 0.85}, log_tail=TORCH_OOM
    )

    assert oom_skip_reason(task, {"tp-size": 1, "mem-fraction-static": 0.9}, [failed]) == (
        "experiment 4 ran out of memory at mem-fraction-static 0.85; 0.9 leaves less room"
    )
    assert oom_skip_reason(task, {"tp-size": 1, "mem-fraction-static": 0.8}, [failed]) is None
    assert oom_skip_reason(task, {"tp-size": 2, "mem-fraction-static": 0.9}, [failed]) is None


def test_running_out_of_memory_skips_the_same_combination_with_a_higher_fraction_only():
    task = oom_task()
    planned(task)  # 1-3: tp 1 at 0.8, 0.85, 0.9; 4-6: tp 2 at the same
    failed = crash(task, 2, log_tail=f"loading weights\n{TORCH_OOM}")

    assert prune_after_oom(failed) == 1

    assert statuses(task) == {1: "pending", 2: "failed", 3: "skipped", 4: "pending", 5: "pending", 6: "pending"}
    skipped = task.experiments.get(number=3)
    assert skipped.error == "experiment 2 ran out of memory at mem-fraction-static 0.85; 0.9 leaves less room"
    assert skipped.finished_at is not None


def test_a_vllm_task_learns_from_its_gpu_memory_utilization():
    grid = {"tensor-parallel-size": [1], "gpu-memory-utilization": [0.8, 0.9, 0.95]}
    task = oom_task(runtime="vllm", parameters=grid)
    planned(task)
    failed = crash(task, 1, error=f"engine exited with code 1: {TORCH_OOM}")

    assert prune_after_oom(failed) == 2

    assert statuses(task) == {1: "failed", 2: "skipped", 3: "skipped"}


def test_other_failures_skip_nothing():
    task = oom_task()
    planned(task)
    failed = crash(task, 1, log_tail="OSError: [Errno 98] Address already in use")

    assert prune_after_oom(failed) == 0
    assert list(statuses(task).values()).count("pending") == 5


def test_a_task_told_not_to_learn_from_failures_runs_every_combination():
    task = oom_task(skip_after_oom=False)
    planned(task)
    failed = crash(task, 1, log_tail=TORCH_OOM)

    assert prune_after_oom(failed) == 0
    assert list(statuses(task).values()).count("pending") == 5


def test_only_pending_search_experiments_are_skipped():
    task = oom_task()
    planned(task)
    crash(task, 3, status=ExperimentStatus.SUCCEEDED, error="")  # 0.9 ran before
    running = task.experiments.get(number=2)
    running.status = ExperimentStatus.BENCHMARKING
    running.save()
    repeat = make_experiment(
        task,
        7,
        ExperimentStatus.PENDING,
        role=ExperimentRole.REPEAT,
        parameters={"tp-size": 1, "mem-fraction-static": 0.9},
        repeat_of=task.experiments.get(number=3),
    )
    failed = crash(task, 1, log_tail=TORCH_OOM)

    assert prune_after_oom(failed) == 0
    repeat.refresh_from_db()
    assert (statuses(task)[2], statuses(task)[3], repeat.status) == ("benchmarking", "succeeded", "pending")


def test_a_skipped_experiment_counts_as_done_in_the_progress():
    task = oom_task()
    planned(task)
    for number in (1, 2, 3):
        crash(task, number, status=ExperimentStatus.SUCCEEDED, error="")
    prune_after_oom(crash(task, 4, log_tail=TORCH_OOM))

    shown = progress(task, list(task.experiments.all()))

    assert (shown.done, shown.total) == (6, 6)
