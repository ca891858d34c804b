"""A task's lifecycle: the transitions Task.move_to allows, start/cancel/restart/resume, workers
claiming experiments, finishing a task, and recovering experiments whose worker died."""

from __future__ import annotations

import itertools
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from engines import standin
from tasks import lifecycle
from tasks.models import Experiment, Task
from tasks.runner import _group_alive, free_port
from tasks.states import (
    FINISHED_STATUSES,
    TRANSITIONS,
    ExperimentStatus,
    OptimizationStrategy,
    TaskStatus,
    TransitionRefused,
)
from tests.factories import make_task
from tests.tasks.runs import EARLIER, GRID, PLAN_ORDER

pytestmark = pytest.mark.django_db

# What a run writes on an experiment; a pending experiment has none of it.
RUN_FIELDS = [
    "status", "command", "step", "levels", "score", "scored_level", "throughput", "latency", "slo_violation",
    "error", "log_tail", "worker", "engine_pid", "heartbeat_at", "started_at", "finished_at",
]  # fmt: skip
PAIRS = list(itertools.product(TaskStatus.values, repeat=2))
ALLOWED = [(current, wanted) for current, wanted in PAIRS if wanted in TRANSITIONS[current]]
REFUSED = [(current, wanted) for current, wanted in PAIRS if wanted not in TRANSITIONS[current]]


def pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-to-{pair[1]}"


def task_in(status: str) -> Task:
    """An unsaved task that has been through a run: old timestamps, an old error, one history entry."""
    return Task(
        name="t",
        status=status,
        status_changed_at=EARLIER,
        status_history=[{"status": status, "at": EARLIER.isoformat(), "note": ""}],
        started_at=EARLIER,
        finished_at=EARLIER,
        error="an old error",
    )


def started(**overrides) -> Task:
    task = make_task(parameters=GRID, gpus=2, **overrides)
    return lifecycle.start(task, enqueue=False)


def set_statuses(task: Task, *statuses: str) -> None:
    """Give experiments 1, 2, … these statuses (finished ones get a finish time, running ones a worker)."""
    for number, status in enumerate(statuses, 1):
        finished = status not in (ExperimentStatus.PENDING, ExperimentStatus.STARTING, ExperimentStatus.BENCHMARKING)
        Experiment.objects.filter(task=task, number=number).update(
            status=status,
            score=100.0 * number if status == ExperimentStatus.SUCCEEDED else None,
            error="the engine crashed" if status == ExperimentStatus.FAILED else "",
            worker="" if status == ExperimentStatus.PENDING else "gpu-host:42",
            started_at=None if status == ExperimentStatus.PENDING else EARLIER,
            finished_at=EARLIER if finished else None,
            **(
                {}
                if status == ExperimentStatus.PENDING
                else {
                    "command": "engine --tp-size 1",
                    "log_tail": "serving",
                    "engine_pid": 4242,
                    "heartbeat_at": EARLIER if finished else timezone.now(),  # a live worker beats
                }
            ),
        )


def move(task: Task, *statuses: str) -> Task:
    for status in statuses:
        task.move_to(status)
    task.save(update_fields=Task.STATUS_FIELDS)
    return task


def jobs_for(task: Task) -> int:
    return sum(1 for job in DBTaskResult.objects.all() if job.args_kwargs["args"] == [task.pk])


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


# Task.move_to


@pytest.mark.parametrize(("current", "wanted"), ALLOWED, ids=map(pair_id, ALLOWED))
def test_move_to_makes_every_allowed_transition_with_its_timestamps_and_history(current, wanted):
    task = task_in(current)

    task.move_to(wanted, note="why")

    assert task.status == wanted
    assert task.status_changed_at > EARLIER
    now = task.status_changed_at
    assert task.status_history == [
        {"status": current, "at": EARLIER.isoformat(), "note": ""},
        {"status": wanted, "at": now.isoformat(), "note": "why"},
    ]
    if wanted == TaskStatus.QUEUED:  # a new run: nothing of the last one is left
        assert (task.started_at, task.finished_at, task.error) == (None, None, "")
    elif wanted == TaskStatus.RUNNING:
        assert (task.started_at, task.finished_at) == (now, EARLIER)
    elif wanted == TaskStatus.FAILED:  # the note says why
        assert (task.started_at, task.finished_at, task.error) == (EARLIER, now, "why")
    else:  # completed, or cancelled (a cancel is in the history, not an error)
        assert wanted in FINISHED_STATUSES
        assert (task.started_at, task.finished_at, task.error) == (EARLIER, now, "")


@pytest.mark.parametrize(("current", "wanted"), REFUSED, ids=map(pair_id, REFUSED))
def test_move_to_refuses_every_other_transition_and_changes_nothing(current, wanted):
    task = task_in(current)

    with pytest.raises(TransitionRefused) as refusal:
        task.move_to(wanted, note="why")

    message = str(refusal.value)
    assert message[0].isupper(), message
    assert message.endswith("."), message
    assert "TaskStatus" not in message, message
    assert "_" not in message, message
    assert task.status == current
    assert task.status_changed_at == EARLIER
    assert len(task.status_history) == 1
    assert (task.started_at, task.finished_at, task.error) == (EARLIER, EARLIER, "an old error")


def test_the_transition_table_names_every_status_and_nothing_else():
    assert set(TRANSITIONS) == set(TaskStatus.values)
    assert set().union(*TRANSITIONS.values()) <= set(TaskStatus.values)


@pytest.mark.parametrize(
    ("current", "wanted", "message"),
    [
        ("draft", "cancelled", "The task has not been started, so there is nothing to cancel."),
        ("completed", "cancelled", "The task is completed; there is nothing to cancel."),
        ("running", "queued", "The task is running already; cancel it first to run it again."),
        ("draft", "running", "A draft task cannot become running."),
    ],
    ids=["cancel-a-draft", "cancel-a-completed-task", "start-a-running-task", "skip-the-queue"],
)
def test_a_refusal_says_what_is_wrong_in_plain_words(current, wanted, message):
    with pytest.raises(TransitionRefused, match=f"^{re.escape(message)}$"):
        task_in(current).move_to(wanted)


# start


def test_start_plans_the_runnable_grid_in_plan_order_and_queues_the_task():
    task = make_task(parameters={**GRID, "tp-size": [1, 2, 4]}, gpus=2)  # tp-size 4 needs 4 GPUs

    lifecycle.start(task, enqueue=False)

    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert [entry["note"] for entry in task.status_history] == ["started"]
    experiments = list(task.experiments.order_by("number"))
    assert [experiment.number for experiment in experiments] == [1, 2, 3, 4]
    assert [experiment.parameters for experiment in experiments] == PLAN_ORDER
    assert [list(experiment.parameters) for experiment in experiments] == [list(GRID)] * 4  # flag order kept
    assert {experiment.status for experiment in experiments} == {ExperimentStatus.PENDING}


def test_start_honours_max_experiments_for_a_grid_search():
    task = make_task(parameters=GRID, gpus=2, max_experiments=3)

    lifecycle.start(task, enqueue=False)

    assert [experiment.parameters for experiment in task.experiments.order_by("number")] == PLAN_ORDER[:3]


def test_start_queues_one_job_per_parallel_experiment_once_committed(settings, django_capture_on_commit_callbacks):
    settings.PARALLEL_EXPERIMENTS = 3
    task = make_task(parameters=GRID, gpus=2)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        lifecycle.start(task)

    assert len(callbacks) == 3
    assert jobs_for(task) == 3
    job = DBTaskResult.objects.first()
    assert job.task_path == "tasks.jobs.run_next_experiment"


def test_start_queues_no_more_jobs_than_experiments(settings, django_capture_on_commit_callbacks):
    settings.PARALLEL_EXPERIMENTS = 8
    task = make_task(parameters=GRID, gpus=2)

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.start(task)

    assert jobs_for(task) == 4


def test_start_refuses_a_task_none_of_whose_combinations_can_run_and_leaves_it_a_draft(
    django_capture_on_commit_callbacks,
):
    task = make_task(parameters={"tp-size": [4]}, gpus=1)

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(TransitionRefused) as refusal:
        lifecycle.start(task)

    assert str(refusal.value) == (
        "The only combination cannot run: "
        "tp-size × dp-size × pp-size = 4 GPUs, over the task's cap of 1 per experiment."
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.DRAFT
    assert task.status_history == []
    assert not task.experiments.exists()
    assert callbacks == []
    assert jobs_for(task) == 0


def test_start_refuses_a_task_that_is_not_a_draft():
    task = started()

    with pytest.raises(TransitionRefused, match=r"^The task is queued; cancel it first\.$"):
        lifecycle.start(task, enqueue=False)
    assert task.experiments.count() == 4


def test_start_picks_a_seed_for_a_random_search_without_one_and_keeps_a_given_one():
    unseeded = make_task(parameters=GRID, gpus=2, optimization_strategy="random", max_experiments=2)
    seeded = make_task(parameters=GRID, gpus=2, optimization_strategy="random", max_experiments=2, seed=7)

    lifecycle.start(unseeded, enqueue=False)
    lifecycle.start(seeded, enqueue=False)

    unseeded.refresh_from_db()
    seeded.refresh_from_db()
    assert unseeded.seed is not None
    assert seeded.seed == 7
    assert unseeded.experiments.count() == seeded.experiments.count() == 2


def test_start_plans_no_rows_for_a_bayesian_search():
    task = make_task(parameters=GRID, gpus=2, optimization_strategy="bayesian", max_experiments=3, seed=1)

    lifecycle.start(task, enqueue=False)

    assert not task.experiments.exists()
    assert lifecycle.has_more(task.pk)


# cancel


def test_cancel_cancels_the_pending_experiments_and_leaves_the_running_one_to_its_worker():
    task = started()
    set_statuses(task, ExperimentStatus.SUCCEEDED, ExperimentStatus.BENCHMARKING)
    move(task, TaskStatus.RUNNING)

    lifecycle.cancel(task)

    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert task.finished_at is not None
    assert task.status_history[-1]["note"] == "cancelled"
    statuses = dict(task.experiments.values_list("number", "status"))
    assert statuses == {1: "succeeded", 2: "benchmarking", 3: "cancelled", 4: "cancelled"}
    assert all(task.experiments.filter(number__in=[3, 4]).values_list("finished_at", flat=True))


def test_cancel_refuses_a_finished_task():
    task = started()
    move(task, TaskStatus.RUNNING, TaskStatus.COMPLETED)

    with pytest.raises(TransitionRefused, match=r"^The task is completed; there is nothing to cancel\.$"):
        lifecycle.cancel(task)


# restart and resume


def test_restart_deletes_the_experiments_and_plans_them_anew():
    task = started()
    old = set(task.experiments.values_list("pk", flat=True))
    set_statuses(task, *[ExperimentStatus.SUCCEEDED] * 4)
    move(task, TaskStatus.RUNNING, TaskStatus.COMPLETED)

    lifecycle.restart(task, enqueue=False)

    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert (task.started_at, task.finished_at) == (None, None)
    assert [entry["note"] for entry in task.status_history][-1] == "restarted"
    experiments = list(task.experiments.order_by("number"))
    assert not old & {experiment.pk for experiment in experiments}
    assert [experiment.parameters for experiment in experiments] == PLAN_ORDER
    assert all(experiment.status == ExperimentStatus.PENDING and experiment.score is None for experiment in experiments)


def test_restart_refuses_a_task_that_is_still_active():
    task = started()

    with pytest.raises(TransitionRefused, match="cancel it first"):
        lifecycle.restart(task, enqueue=False)


def test_resume_runs_the_cancelled_experiments_again_and_keeps_the_finished_ones():
    task = started()
    set_statuses(
        task, ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.CANCELLED, ExperimentStatus.PENDING
    )
    move(task, TaskStatus.RUNNING)
    lifecycle.cancel(task)  # experiment 4 becomes cancelled too

    lifecycle.resume(task, enqueue=False)

    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert [entry["note"] for entry in task.status_history][-2:] == ["cancelled", "resumed"]
    experiments = {experiment.number: experiment for experiment in task.experiments.all()}
    assert (experiments[1].status, experiments[1].score, experiments[1].finished_at) == ("succeeded", 100.0, EARLIER)
    assert (experiments[1].command, experiments[1].log_tail) == ("engine --tp-size 1", "serving")
    assert (experiments[2].status, experiments[2].error) == ("failed", "the engine crashed")
    fresh = Experiment(task=task, number=0, parameters={})  # a never-run experiment, for its defaults
    for number in (3, 4):  # nothing of the interrupted attempt is kept
        again = experiments[number]
        assert again.parameters == PLAN_ORDER[number - 1]
        for field in RUN_FIELDS:
            assert getattr(again, field) == getattr(fresh, field), field


@pytest.mark.parametrize(
    ("statuses", "message"),
    [
        ((), "The task has not run yet; use Start."),
        ((TaskStatus.QUEUED,), "The task is queued; cancel it first."),
        ((TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.COMPLETED), "Use Restart to run it again."),
    ],
    ids=["draft", "queued", "completed"],
)
def test_resume_refuses_a_task_that_was_not_cancelled_or_failed(statuses, message):
    task = move(make_task(parameters=GRID, gpus=2), *statuses)

    with pytest.raises(TransitionRefused) as refusal:
        lifecycle.resume(task, enqueue=False)

    assert str(refusal.value).startswith("Only a cancelled or failed task can be resumed. ")
    assert str(refusal.value).endswith(message)


@pytest.mark.parametrize("action", [lifecycle.restart, lifecycle.resume], ids=["restart", "resume"])
def test_restart_and_resume_wait_for_an_experiment_still_stopping(action):
    task = started()
    set_statuses(task, ExperimentStatus.SUCCEEDED, ExperimentStatus.STARTING)
    move(task, TaskStatus.RUNNING)
    lifecycle.cancel(task)

    with pytest.raises(TransitionRefused, match="An experiment of this task is still stopping; try again"):
        action(task, enqueue=False)

    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    statuses = dict(task.experiments.values_list("number", "status"))
    assert statuses == {1: "succeeded", 2: "starting", 3: "cancelled", 4: "cancelled"}


def test_an_edit_saved_from_a_stale_copy_keeps_the_status_a_worker_set_meanwhile():
    task = make_task(parameters=GRID, gpus=2)
    form_copy = Task.objects.get(pk=task.pk)  # read when the edit form was shown: a draft

    lifecycle.start(task, enqueue=False)
    form_copy.description = "edited"
    form_copy.save()

    task.refresh_from_db()
    assert task.description == "edited"
    assert task.status == TaskStatus.QUEUED
    assert [entry["status"] for entry in task.status_history] == ["queued"]
    assert task.status_changed_at is not None


# claim_next, has_more, finish_if_done


def test_claim_next_hands_out_each_experiment_once_in_number_order():
    task = started()

    claimed = [lifecycle.claim_next(task.pk) for _ in range(4)]

    assert [experiment.number for experiment in claimed] == [1, 2, 3, 4]
    assert lifecycle.claim_next(task.pk) is None
    assert not lifecycle.has_more(task.pk)
    for experiment in task.experiments.all():
        assert experiment.status == ExperimentStatus.STARTING
        assert experiment.worker == lifecycle.worker_name()
        assert experiment.started_at is not None
        assert experiment.heartbeat_at is not None
    task.refresh_from_db()
    assert task.status == TaskStatus.RUNNING
    assert task.started_at is not None


def test_claim_next_gives_nothing_for_a_cancelled_task():
    task = started()
    lifecycle.cancel(task)

    assert lifecycle.claim_next(task.pk) is None
    assert not task.experiments.filter(status=ExperimentStatus.STARTING).exists()


def test_claim_next_gives_nothing_for_a_draft():
    task = make_task(parameters=GRID, gpus=2)

    assert lifecycle.claim_next(task.pk) is None


def test_claim_next_asks_a_bayesian_search_for_one_new_combination_at_a_time():
    task = make_task(parameters=GRID, gpus=2, optimization_strategy=OptimizationStrategy.BAYESIAN, max_experiments=3)
    lifecycle.start(task, enqueue=False)

    claimed = []
    while (experiment := lifecycle.claim_next(task.pk)) is not None:
        claimed.append(experiment)
        Experiment.objects.filter(pk=experiment.pk).update(status=ExperimentStatus.SUCCEEDED, score=1.0)

    assert [experiment.number for experiment in claimed] == [1, 2, 3]
    combinations = [experiment.parameters for experiment in task.experiments.order_by("number")]
    assert len({str(combination) for combination in combinations}) == 3
    assert all(combination in PLAN_ORDER for combination in combinations)
    assert lifecycle.finish_if_done(task.pk)


def test_finish_if_done_waits_while_an_experiment_is_pending_or_running():
    task = started()
    move(task, TaskStatus.RUNNING)
    set_statuses(task, ExperimentStatus.SUCCEEDED, ExperimentStatus.BENCHMARKING, ExperimentStatus.FAILED)

    assert not lifecycle.finish_if_done(task.pk)

    task.refresh_from_db()
    assert task.status == TaskStatus.RUNNING


def test_finish_if_done_completes_a_task_with_one_success():
    task = started()
    move(task, TaskStatus.RUNNING)
    set_statuses(task, ExperimentStatus.FAILED, ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED)
    Experiment.objects.filter(task=task, number=4).update(status=ExperimentStatus.FAILED)

    assert lifecycle.finish_if_done(task.pk)

    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.error == ""
    assert task.finished_at is not None


def test_finish_if_done_fails_a_task_whose_every_experiment_failed():
    task = started()
    move(task, TaskStatus.RUNNING)
    set_statuses(task, *[ExperimentStatus.FAILED] * 4)

    assert lifecycle.finish_if_done(task.pk)

    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert task.error == "Every experiment failed; see their errors below."


def test_finish_if_done_leaves_a_cancelled_task_cancelled():
    task = started()
    lifecycle.cancel(task)

    assert lifecycle.finish_if_done(task.pk)

    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED


# recover_lost_experiments


def running_experiment(task: Task, number: int, *, worker: str, heartbeat_age: float = 0, **fields) -> Experiment:
    Experiment.objects.filter(task=task, number=number).update(
        status=ExperimentStatus.BENCHMARKING,
        step="benchmarking level 1",
        worker=worker,
        started_at=timezone.now(),
        heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age),
        **fields,
    )
    return Experiment.objects.get(task=task, number=number)


def test_recovery_fails_the_experiment_of_a_dead_local_worker_and_queues_the_task_on(
    django_capture_on_commit_callbacks,
):
    task = move(started(), TaskStatus.RUNNING)
    worker = f"{socket.gethostname()}:{dead_pid()}"
    lost = running_experiment(task, 1, worker=worker)

    with django_capture_on_commit_callbacks(execute=True):
        recovered = lifecycle.recover_lost_experiments()

    assert recovered == [lost.pk]
    lost.refresh_from_db()
    assert lost.status == ExperimentStatus.FAILED
    assert lost.error == f"worker lost: {worker} stopped while the experiment was benchmarking"
    assert (lost.step, lost.finished_at is not None) == ("", True)
    task.refresh_from_db()
    assert task.status == TaskStatus.RUNNING  # three experiments are still pending
    assert jobs_for(task) == 1


def test_recovery_fails_an_experiment_whose_remote_worker_stopped_writing(settings):
    settings.WORKER_LOST_AFTER = 120
    task = move(started(), TaskStatus.RUNNING)
    stale = running_experiment(task, 1, worker="gpu-host-7:1234", heartbeat_age=121)
    quiet = running_experiment(task, 2, worker="gpu-host-8:1234", heartbeat_age=60)

    assert lifecycle.recover_lost_experiments() == [stale.pk]

    stale.refresh_from_db()
    quiet.refresh_from_db()
    assert stale.status == ExperimentStatus.FAILED
    assert stale.error.startswith("worker lost: gpu-host-7:1234 stopped")
    assert quiet.status == ExperimentStatus.BENCHMARKING


def test_recovery_leaves_the_experiment_of_a_live_worker_alone():
    task = move(started(), TaskStatus.RUNNING)
    live = running_experiment(task, 1, worker=lifecycle.worker_name())  # this process: alive

    assert lifecycle.recover_lost_experiments() == []

    live.refresh_from_db()
    assert (live.status, live.error) == (ExperimentStatus.BENCHMARKING, "")


def test_recovery_finishes_a_task_whose_last_experiment_was_lost(django_capture_on_commit_callbacks):
    task = move(started(max_experiments=2), TaskStatus.RUNNING)
    set_statuses(task, ExperimentStatus.SUCCEEDED)
    running_experiment(task, 2, worker=f"{socket.gethostname()}:{dead_pid()}")

    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.recover_lost_experiments()

    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert jobs_for(task) == 0


@pytest.mark.engine
def test_recovery_kills_the_engine_a_dead_worker_left_running():
    task = move(started(), TaskStatus.RUNNING)
    # The engine runs in its own session, as the runner starts it, so it outlived its worker.
    engine = subprocess.Popen(
        standin.command(free_port()),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        running_experiment(task, 1, worker=f"{socket.gethostname()}:{dead_pid()}", engine_pid=engine.pid)
        assert _group_alive(engine.pid)

        lifecycle.recover_lost_experiments()

        assert not _group_alive(engine.pid)
        assert engine.wait(timeout=5) == -signal.SIGKILL
    finally:
        if engine.poll() is None:
            engine.kill()
        engine.wait()
