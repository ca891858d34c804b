"""Tasks run end to end by real `manage.py worker` and `manage.py run_task` processes against the
stand-in engine: a grid to completion, a crashing combination, a cancel mid-benchmark, a worker
killed mid-task, two workers sharing a task on PostgreSQL, and a bayesian search resumed."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import psycopg
import pytest

from tasks import lifecycle
from tasks.models import Experiment, Task
from tasks.runner import _group_alive, kill_group
from tasks.states import FINISHED_STATUSES, ExperimentStatus, TaskStatus
from tasks.strategies import build_study, combination_key, next_bayesian, planned_combinations
from tests.factories import make_task

# Imported, the fixture is found here; as a test's argument it shadows the import (F811).
from tests.postgres import create_database, postgres_url  # noqa: F401
from tests.workers import Processes, wait_until

# Workers are other processes: they see only committed rows.
pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

FAST_BENCHMARK = {
    "concurrency_levels": [1, 2],
    "requests_per_level": 4,
    "input_tokens": 8,
    "output_tokens": 32,
    "max_seconds_per_level": 5,
}
TIMEOUT = 60  # seconds for a whole task; a few experiments take a few seconds each


def grid_task(parameters: dict, **overrides) -> Task:
    return make_task(parameters=parameters, **{"gpus": 2, **FAST_BENCHMARK, **overrides})


def finished_task(task: Task, processes: Processes, timeout: float = TIMEOUT) -> Task:
    def finished() -> Task | None:
        task.refresh_from_db()
        return task if task.status in FINISHED_STATUSES else None

    try:
        return wait_until(finished, timeout=timeout, what=f"task {task.pk} to finish")
    except AssertionError as error:
        experiments = list(task.experiments.values("number", "status", "step", "error", "worker"))
        raise AssertionError(f"{error}; it is {task.status}\n{experiments}\n{processes.output()}") from None


def experiment_benchmarking(task: Task, number: int | None = None) -> Experiment:
    def benchmarking() -> Experiment | None:
        experiments = task.experiments.filter(status=ExperimentStatus.BENCHMARKING).exclude(engine_pid=None)
        if number is not None:
            experiments = experiments.filter(number=number)
        return experiments.first()

    return wait_until(benchmarking, timeout=TIMEOUT, what=f"an experiment of task {task.pk} to be benchmarking")


def assert_no_engine_left(task: Task) -> None:
    pids = [pid for pid in task.experiments.values_list("engine_pid", flat=True) if pid]
    assert pids, "no engine was recorded"
    assert not [pid for pid in pids if _group_alive(pid)], "an engine's process group is still running"


def test_processes_started_by_the_tests_use_the_test_database(processes):
    task = make_task(name="Only in the test database")

    result = processes.run(
        "shell", "--no-imports", "-c", f"from tasks.models import Task; print(Task.objects.get(pk={task.pk}).name)"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "Only in the test database"


def test_a_worker_runs_a_grid_to_completion(processes):
    processes.worker()
    # Long enough answers that the engine's speed, not the machine's noise, decides the best score.
    task = grid_task({"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]}, output_tokens=64)

    lifecycle.start(task)  # committed at once: the worker finds the jobs

    assert finished_task(task, processes).status == TaskStatus.COMPLETED
    experiments = list(task.experiments.order_by("number"))
    assert [experiment.number for experiment in experiments] == [1, 2, 3, 4]
    assert [experiment.parameters for experiment in experiments] == planned_combinations(task, seed=0)
    assert {experiment.status for experiment in experiments} == {ExperimentStatus.SUCCEEDED}, processes.output()
    assert all(experiment.levels and experiment.log_tail and experiment.worker for experiment in experiments)
    best = max(experiments, key=lambda experiment: experiment.score)
    assert best.parameters["tp-size"] == 2  # the stand-in serves twice as fast on two GPUs
    assert_no_engine_left(task)


def test_a_crashing_combination_fails_with_its_reason_and_the_task_completes(processes):
    processes.worker()
    task = grid_task({"mem-fraction-static": [0.8, 0.97, 0.9]})

    lifecycle.start(task)

    assert finished_task(task, processes).status == TaskStatus.COMPLETED
    outcomes = {experiment.number: experiment for experiment in task.experiments.all()}
    assert [outcomes[number].status for number in (1, 2, 3)] == ["succeeded", "failed", "succeeded"]
    crashed = outcomes[2]
    assert crashed.error.startswith("the engine exited with status 1 before becoming healthy: ")
    assert "CUDA out of memory" in crashed.error
    assert crashed.score is None
    assert outcomes[1].score > 0
    assert outcomes[3].score > 0


def test_cancelling_mid_benchmark_stops_the_engine_within_seconds(processes):
    worker = processes.worker()
    # 50 requests of 400 tokens: the benchmark would take a minute.
    task = grid_task({"tp-size": [1, 2]}, output_tokens=400, requests_per_level=50, max_seconds_per_level=60)
    lifecycle.start(task)
    running = experiment_benchmarking(task)
    assert _group_alive(running.engine_pid)

    lifecycle.cancel(task)

    wait_until(lambda: not _group_alive(running.engine_pid), timeout=10, what="the engine to be stopped")

    def stopped() -> bool:
        running.refresh_from_db()
        return running.status == ExperimentStatus.CANCELLED

    wait_until(stopped, timeout=10, what="the experiment to be marked cancelled")
    assert running.error == "cancelled while running"
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert set(task.experiments.values_list("status", flat=True)) == {ExperimentStatus.CANCELLED}
    assert worker.popen.poll() is None, worker.output()  # the worker lives on for other tasks


def test_a_task_survives_its_worker_being_killed_mid_experiment(processes, settings):
    # One job at a time: the killed job never queues its successor, so only recovery can carry the task on.
    settings.PARALLEL_EXPERIMENTS = 1
    first = processes.worker()
    task = grid_task({"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]}, output_tokens=100)
    lifecycle.start(task)
    orphaned = experiment_benchmarking(task, number=2)

    first.kill()

    assert _group_alive(orphaned.engine_pid)  # the engine runs in its own session: it outlives its worker
    processes.worker()
    assert finished_task(task, processes).status == TaskStatus.COMPLETED
    experiments = list(task.experiments.order_by("number"))
    assert [experiment.number for experiment in experiments] == [1, 2, 3, 4]
    assert len(experiments) == task.experiments_planned
    assert len({combination_key(experiment.parameters) for experiment in experiments}) == 4
    statuses = [experiment.status for experiment in experiments]
    assert statuses == ["succeeded", "failed", "succeeded", "succeeded"], processes.output()
    lost = experiments[1]
    assert lost.error == f"worker lost: {orphaned.worker} stopped while the experiment was benchmarking"
    assert orphaned.worker.endswith(f":{first.pid}")
    assert_no_engine_left(task)


CREATE_TASK = """
from tests.factories import make_task
task = make_task(name="Two workers", gpus=2, parameters={parameters}, **{benchmark})
print(task.pk)
"""


@pytest.mark.postgres
@pytest.mark.django_db(transaction=False)  # everything happens in a database of its own
def test_two_workers_on_postgresql_share_a_task_running_each_experiment_once(postgres_url, tmp_path):  # noqa: F811
    url = create_database(postgres_url, "autotuner_two_workers")
    processes = Processes(url, tmp_path, AUTOTUNER_PARALLEL_EXPERIMENTS="4")
    grid = {"tp-size": [1, 2], "chunked-prefill-size": [1024, 2048, 4096]}
    pids: list[int] = []
    try:
        migrated = processes.run("migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        script = CREATE_TASK.format(parameters=json.dumps(grid), benchmark=json.dumps(FAST_BENCHMARK))
        created = processes.run("shell", "--no-imports", "-c", script)
        assert created.returncode == 0, created.stdout + created.stderr
        task_id = int(created.stdout.split()[-1])
        workers = [processes.worker(), processes.worker()]
        for worker in workers:  # both poll the queue before there is anything on it
            worker.wait_for_output("Starting worker", timeout=30)

        started = processes.run(
            "shell",
            "--no-imports",
            "-c",
            f"from tasks import lifecycle; from tasks.models import Task; "
            f"lifecycle.start(Task.objects.get(pk={task_id}))",
        )
        assert started.returncode == 0, started.stdout + started.stderr

        def status() -> str | None:
            with psycopg.connect(url) as db:
                (found,) = db.execute(f"SELECT status FROM {Task._meta.db_table} WHERE id = %s", [task_id]).fetchone()
            return found if found in FINISHED_STATUSES else None

        try:
            final = wait_until(status, timeout=90, what="the task to finish", every=0.25)
        finally:
            with psycopg.connect(url) as db:
                rows = db.execute(
                    f"SELECT number, parameters, status, worker, engine_pid, error FROM {Experiment._meta.db_table} "
                    "WHERE task_id = %s ORDER BY number",
                    [task_id],
                ).fetchall()
            pids = [row[4] for row in rows if row[4]]
    finally:
        processes.stop_all()
        for pid in pids:
            kill_group(pid)

    assert final == TaskStatus.COMPLETED, rows
    assert [row[0] for row in rows] == [1, 2, 3, 4, 5, 6]
    combinations = [json.loads(row[1]) for row in rows]
    assert sorted(map(combination_key, combinations)) == sorted(
        combination_key({"tp-size": tp, "chunked-prefill-size": size}) for tp in (1, 2) for size in (1024, 2048, 4096)
    )
    assert {row[2] for row in rows} == {ExperimentStatus.SUCCEEDED}, rows
    # Both workers took some: each experiment names the host:pid that ran it.
    assert {row[3] for row in rows} == {f"{socket.gethostname()}:{worker.pid}" for worker in workers}, rows
    assert not [pid for pid in pids if _group_alive(pid)]


# Bayesian search resumed with run_task

BAYESIAN_GRID = {
    "tp-size": [1, 2],
    "chunked-prefill-size": [1024, 2048, 4096],
    "schedule-policy": ["fcfs", "lpm"],
    "max-running-requests": [64, 128, 256],
}  # 36 runnable on 2 GPUs


def bayesian_task(name: str) -> Task:
    return grid_task(BAYESIAN_GRID, name=name, optimization_strategy="bayesian", max_experiments=6, seed=20260611)


def parameters_by_number(task: Task) -> list[dict]:
    return [experiment.parameters for experiment in task.experiments.order_by("number")]


def test_run_task_runs_a_task_in_the_foreground_printing_its_progress(processes):
    task = grid_task({"mem-fraction-static": [0.8, 0.97]}, name="Foreground")

    result = processes.run("run_task", str(task.pk))

    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[0] == "Running “Foreground”: 2 experiment(s), Grid: every combination"
    assert lines[1].startswith("experiment 1: succeeded score ")
    assert lines[2].startswith("experiment 2: failed the engine exited with status 1 before becoming healthy: ")
    assert lines[-1] == f"Task {task.pk} is completed."
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_run_task_exits_non_zero_for_a_task_whose_every_experiment_failed(processes):
    task = grid_task({"mem-fraction-static": [0.97]})

    result = processes.run("run_task", str(task.pk))

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].rstrip() == (
        f"Task {task.pk} is failed. Every experiment failed; see their errors below."
    )


def test_a_bayesian_search_resumed_asks_what_an_uninterrupted_one_asks(processes):
    # With fewer trials than TPE's ten start-up trials, its questions do not depend on the measured
    # scores (which differ between runs), only on the seed and the history: both runs must match.
    uninterrupted = bayesian_task("Uninterrupted")
    whole = processes.run("run_task", str(uninterrupted.pk))
    assert whole.returncode == 0, whole.stdout + whole.stderr
    uninterrupted.refresh_from_db()
    assert uninterrupted.status == TaskStatus.COMPLETED
    expected = parameters_by_number(uninterrupted)
    assert len(expected) == 6
    assert len(set(map(combination_key, expected))) == 6

    interrupted = bayesian_task("Interrupted")
    first_part = processes.start("run_task", str(interrupted.pk))
    wait_until(
        lambda: interrupted.experiments.filter(status__in=("succeeded", "failed")).count() >= 3,
        timeout=TIMEOUT,
        what="three experiments to finish",
    )
    lifecycle.cancel(interrupted)
    assert first_part.wait(timeout=30) == 0, first_part.output()
    interrupted.refresh_from_db()
    assert interrupted.status == TaskStatus.CANCELLED
    assert 3 <= interrupted.experiments.count() < 6

    resumed = processes.run("run_task", str(interrupted.pk), "--resume")

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    interrupted.refresh_from_db()
    assert interrupted.status == TaskStatus.COMPLETED
    assert parameters_by_number(interrupted) == expected
    experiments = list(interrupted.experiments.order_by("number"))
    assert {experiment.status for experiment in experiments} == {ExperimentStatus.SUCCEEDED}
    # Each question was the study's answer to the history before it.
    for number, experiment in enumerate(experiments):
        assert next_bayesian(interrupted, experiments[:number]) == experiment.parameters
    study = build_study(interrupted, experiments)
    decoded = [{flag: BAYESIAN_GRID[flag][index] for flag, index in trial.params.items()} for trial in study.trials]
    assert decoded == expected
    assert [trial.value for trial in study.trials] == [experiment.score for experiment in experiments]


def test_a_killed_worker_is_recovered_when_a_worker_starts(processes):
    task = grid_task({"tp-size": [1]})
    lifecycle.start(task, enqueue=False)
    experiment = lifecycle.claim_next(task.pk)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Experiment.objects.filter(pk=experiment.pk).update(worker=f"{socket.gethostname()}:{dead.pid}")

    worker = processes.worker()

    worker.wait_for_output("Marked 1 experiment(s) left by a stopped worker as failed (worker lost).", timeout=30)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED
    assert finished_task(task, processes).status == TaskStatus.FAILED  # its only experiment was lost
