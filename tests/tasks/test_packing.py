"""GPU packing through real `manage.py worker` processes and the stand-in engine: experiments run side
by side on disjoint GPUs, each with the GPUs its combination needs; workers of one host, and hosts of
one PostgreSQL, share GPUs through leases; a crash, a cancel and a lost worker each give theirs back;
and the baseline, repeats, early stop, goodput and out-of-memory pruning behave as a run."""

from __future__ import annotations

import json
import signal
from collections.abc import Sequence
from datetime import datetime

import psycopg
import pytest

from tasks import lifecycle
from tasks.gpus import GpuSlot
from tasks.models import Experiment, Task
from tasks.runner import kill_group
from tasks.states import FINISHED_STATUSES, ExperimentRole, ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.postgres import create_database, postgres_url  # noqa: F401
from tests.workers import Processes, wait_until

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

EIGHT_GPUS = ",".join(str(gpu) for gpu in range(8))
# Long enough for experiments started a poll apart to overlap; short enough for a quick test.
ENGINE_START_SECONDS = "1.5"
BENCHMARK = {
    "concurrency_levels": [1],
    "requests_per_level": 4,
    "input_tokens": 8,
    "output_tokens": 16,
    "max_seconds_per_level": 10,
    "warmup_requests": 0,
}
ONE_GPU_GRID = {"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]}
TIMEOUT = 90


@pytest.fixture
def processes(processes: Processes) -> Processes:
    """tests/tasks/conftest.py's, with engines slow enough to start that claims a poll apart overlap."""
    processes.env["AUTOTUNER_STANDIN_STARTUP_SECONDS"] = ENGINE_START_SECONDS
    return processes


def started(parameters: dict, **fields) -> Task:
    task = make_task(parameters=parameters, **{"gpus": 8, **BENCHMARK, **fields})
    lifecycle.start(task)
    return task


def finished(task: Task, processes: Processes, timeout: float = TIMEOUT) -> Task:
    def done() -> Task | None:
        task.refresh_from_db()
        return task if task.status in FINISHED_STATUSES else None

    try:
        return wait_until(done, timeout=timeout, what=f"task {task.pk} to finish")
    except AssertionError as error:
        rows = list(task.experiments.values("number", "status", "error", "gpu_ids"))
        raise AssertionError(f"{error}; it is {task.status}\n{rows}\n{processes.output()}") from None


type Run = tuple[datetime, datetime, str, frozenset[str]]


def runs(experiments: Sequence[Experiment]) -> list[Run]:
    return [
        (experiment.started_at, experiment.finished_at, experiment.host, frozenset(experiment.gpu_ids))
        for experiment in experiments
        if experiment.started_at and experiment.finished_at
    ]


def most_at_once(spans: Sequence[Run]) -> int:
    events = sorted([(start, 1) for start, *_ in spans] + [(end, -1) for _, end, *_ in spans])
    running = most = 0
    for _, change in events:
        running += change
        most = max(most, running)
    return most


def shared_gpus(spans: Sequence[Run]) -> list[tuple[Run, Run]]:
    """Pairs of experiments that ran at the same time on a common GPU of the same host."""
    return [
        (first, second)
        for index, first in enumerate(spans)
        for second in spans[index + 1 :]
        if first[0] < second[1] and second[0] < first[1] and first[2] == second[2] and first[3] & second[3]
    ]


def free_gpus() -> int:
    return GpuSlot.objects.filter(experiment__isnull=True).count()


def test_eight_one_gpu_experiments_on_eight_gpus_run_side_by_side_never_sharing_one(processes):
    processes.worker(AUTOTUNER_GPU_IDS=EIGHT_GPUS)
    task = finished(started(ONE_GPU_GRID), processes)

    experiments = list(task.experiments.all())
    assert task.status == TaskStatus.COMPLETED, [experiment.error for experiment in experiments]
    spans = runs(experiments)
    assert len(spans) == 8
    assert all(len(gpus) == 1 for *_, gpus in spans)
    assert most_at_once(spans) >= 4, spans
    assert shared_gpus(spans) == []
    assert free_gpus() == 8


def test_a_tp_grid_gets_one_two_and_four_adjacent_gpus(processes):
    processes.worker(AUTOTUNER_GPU_IDS=EIGHT_GPUS)
    task = finished(started({"tp-size": [1, 2, 4]}, gpus=4), processes)

    lent = {experiment.parameters["tp-size"]: experiment.gpu_ids for experiment in task.experiments.all()}
    assert {tp: len(ids) for tp, ids in lent.items()} == {1: 1, 2: 2, 4: 4}
    for ids in lent.values():
        positions = sorted(int(gpu) for gpu in ids)
        assert positions == list(range(positions[0], positions[0] + len(positions)))
        assert positions[0] % len(positions) == 0  # an aligned block: 0-1, 2-3, 0-3, 4-7
    # The stand-in, like a real engine, refuses to start with fewer visible GPUs than tp: each served.
    assert {experiment.status for experiment in task.experiments.all()} == {ExperimentStatus.SUCCEEDED}


def test_two_workers_on_one_host_share_its_gpus_without_overlap(processes):
    four = "0,1,2,3"
    processes.worker(AUTOTUNER_GPU_IDS=four, AUTOTUNER_PARALLEL_EXPERIMENTS="8")
    processes.worker(AUTOTUNER_GPU_IDS=four, AUTOTUNER_PARALLEL_EXPERIMENTS="8")
    task = finished(started(ONE_GPU_GRID), processes)

    experiments = list(task.experiments.all())
    spans = runs(experiments)
    assert task.status == TaskStatus.COMPLETED
    assert len({experiment.worker for experiment in experiments}) == 2  # both took some
    assert most_at_once(spans) <= 4
    assert shared_gpus(spans) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=False)  # everything happens in a database of its own
def test_two_hosts_on_postgresql_with_four_gpus_each_run_eight_at_once(postgres_url, tmp_path):  # noqa: F811
    url = create_database(postgres_url, "autotuner_two_hosts")
    processes = Processes(url, tmp_path, AUTOTUNER_STANDIN_STARTUP_SECONDS="3", AUTOTUNER_GPU_IDS="0,1,2,3")
    try:
        migrated = processes.run("migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        for host in ("node-a", "node-b"):
            processes.worker(AUTOTUNER_HOST_NAME=host).wait_for_output("Starting worker", timeout=30)
        script = (
            "from tasks import lifecycle; from tests.factories import make_task; "
            f"task = make_task(name='Two hosts', gpus=8, parameters={ONE_GPU_GRID!r}, **{BENCHMARK!r}); "
            "lifecycle.start(task); print(task.pk)"
        )
        created = processes.run("shell", "--no-imports", "-c", script)
        assert created.returncode == 0, created.stdout + created.stderr
        task_id = int(created.stdout.split()[-1])

        def status() -> str | None:
            with psycopg.connect(url) as db:
                (found,) = db.execute(f"SELECT status FROM {Task._meta.db_table} WHERE id = %s", [task_id]).fetchone()
            return found if found in FINISHED_STATUSES else None

        final = wait_until(status, timeout=TIMEOUT, what="the task to finish", every=0.25)
        with psycopg.connect(url) as db:
            rows = db.execute(
                f"SELECT started_at, finished_at, host, gpu_ids, engine_pid FROM {Experiment._meta.db_table} "
                "WHERE task_id = %s",
                [task_id],
            ).fetchall()
    finally:
        processes.stop_all()
    for *_, pid in rows:
        kill_group(pid)

    assert final == TaskStatus.COMPLETED, processes.output()
    spans = [
        (start, end, host, frozenset(json.loads(ids) if isinstance(ids, str) else ids))
        for start, end, host, ids, _ in rows
    ]
    assert {host for _, _, host, _ in spans} == {"node-a", "node-b"}
    assert most_at_once(spans) == 8, spans
    assert shared_gpus(spans) == []


def test_a_crashed_engine_a_cancel_and_a_lost_worker_each_give_their_gpus_back(processes):
    worker = processes.worker(AUTOTUNER_GPU_IDS="0,1")
    # Crash: a memory fraction above 0.95 makes the stand-in die with CUDA out of memory.
    crashed = finished(started({"tp-size": [1], "mem-fraction-static": [0.97]}, gpus=1), processes)
    assert crashed.experiments.get().error.startswith("the engine exited with status 1")
    assert free_gpus() == 2

    # Cancel mid-benchmark.
    long_run = {**BENCHMARK, "output_tokens": 4000, "requests_per_level": 50, "max_seconds_per_level": 60}
    cancelled = started({"tp-size": [2]}, gpus=2, **long_run)
    wait_until(
        lambda: cancelled.experiments.filter(status=ExperimentStatus.BENCHMARKING).exists(),
        timeout=TIMEOUT,
        what="the experiment to be benchmarking",
    )
    assert free_gpus() == 0
    lifecycle.cancel(cancelled)
    wait_until(lambda: free_gpus() == 2, timeout=30, what="the cancelled experiment's GPUs to be free")

    # A worker killed mid-experiment: the next worker to start recovers its experiment and GPUs.
    lost = started({"tp-size": [2]}, gpus=2, **long_run)
    wait_until(
        lambda: lost.experiments.filter(status=ExperimentStatus.BENCHMARKING).exists(),
        timeout=TIMEOUT,
        what="the experiment to be benchmarking",
    )
    worker.popen.send_signal(signal.SIGKILL)
    worker.popen.wait()
    assert free_gpus() == 0
    processes.worker(AUTOTUNER_GPU_IDS="0,1")
    wait_until(lambda: free_gpus() == 2, timeout=30, what="the lost worker's GPUs to be free")
    assert lost.experiments.get().error.startswith("worker lost")


def test_a_run_measures_the_baseline_first_repeats_its_finalists_and_skips_what_it_learned(processes):
    processes.worker(AUTOTUNER_GPU_IDS="0,1,2,3")
    grid = {"tp-size": [1, 2], "mem-fraction-static": [0.9, 0.96, 0.97]}
    task = finished(
        started(grid, gpus=2, baseline=True, finalists=2, repeats=2, concurrency_levels=[1, 2], slo_ttft_p90_ms=5000),
        processes,
    )

    experiments = {experiment.number: experiment for experiment in task.experiments.all()}
    assert task.status == TaskStatus.COMPLETED
    baseline = experiments[0]
    assert (baseline.role, baseline.parameters, baseline.status) == (ExperimentRole.BASELINE, {}, "succeeded")
    assert baseline.started_at <= min(e.started_at for e in experiments.values() if e.started_at)
    # Out of memory at 0.96 skips 0.97 for the same tp (unless it already ran beside it).
    ooms = [e for e in experiments.values() if "out of memory" in e.error]
    assert ooms
    skipped = [e for e in experiments.values() if e.status == ExperimentStatus.SKIPPED]
    for experiment in skipped:
        assert experiment.parameters["mem-fraction-static"] == 0.97
        assert "ran out of memory at mem-fraction-static 0.96" in experiment.error
    repeats = [e for e in experiments.values() if e.role == ExperimentRole.REPEAT]
    assert len(repeats) == 4
    assert len({r.repeat_of_id for r in repeats}) == 2
    assert all(r.status == ExperimentStatus.SUCCEEDED and r.parameters == r.repeat_of.parameters for r in repeats)


def test_early_stop_skips_the_loads_above_one_missing_its_slo(processes):
    processes.worker(AUTOTUNER_GPU_IDS="0")
    task = finished(started({"tp-size": [1]}, gpus=1, concurrency_levels=[1, 4, 16], slo_ttft_p90_ms=0.001), processes)

    experiment = task.experiments.get()
    assert [level["concurrency"] for level in experiment.levels] == [1]
    assert experiment.score is None
    assert "p90 TTFT" in experiment.slo_violation


def test_goodput_finds_the_highest_concurrency_meeting_the_slo(processes):
    processes.worker(AUTOTUNER_GPU_IDS="0")
    task = finished(
        started(
            {"tp-size": [1]},
            gpus=1,
            objective="maximize_goodput",
            concurrency_levels=[1, 64],
            requests_per_level=16,
            slo_e2e_p99_s=60,
        ),
        processes,
        timeout=180,
    )

    experiment = task.experiments.get()
    loads = [level["concurrency"] for level in experiment.levels]
    assert loads[:3] == [1, 2, 4]  # doubling from the lowest level
    assert experiment.score == max(loads) == 64  # a generous SLO holds up to the ceiling
