"""Running one claimed experiment in this process against a real engine process (the stand-in, or a
launcher standing in for a broken engine): what is stored when it succeeds, crashes, misses an SLO,
lacks GPUs, never serves, outlives its timeout, or cannot be started at all."""

from __future__ import annotations

import sys
import time

import pytest
from django.conf import settings as django_settings

from tasks import lifecycle
from tasks.execution import run_experiment
from tasks.models import HOST_COMMAND_LINE, Experiment, Task
from tasks.runner import _group_alive
from tasks.states import ExperimentStatus
from tests.factories import make_task

# The monitor thread reads the task on its own connection: the rows must be committed.
pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]

FAST_BENCHMARK = {
    "concurrency_levels": [1, 2],
    "requests_per_level": 4,
    "input_tokens": 8,
    "output_tokens": 8,
    "max_seconds_per_level": 5,
}


def claimed(parameters: dict, **overrides) -> Experiment:
    """The first experiment of a new task with this grid, claimed as a worker claims it."""
    task = make_task(parameters=parameters, **{**FAST_BENCHMARK, **overrides})
    lifecycle.start(task, enqueue=False)
    experiment = lifecycle.claim_next(task.pk)
    assert experiment is not None
    return experiment


def launcher(script: str) -> dict[str, list[str]]:
    """SGLang tasks launched as this Python script (the flags the runner adds land in its argv)."""
    return {"sglang": [sys.executable, "-c", script]}


def assert_engine_gone(experiment: Experiment) -> None:
    assert experiment.engine_pid is not None
    assert not _group_alive(experiment.engine_pid), f"the engine group {experiment.engine_pid} is still running"


def test_a_good_combination_succeeds_with_its_levels_score_and_log():
    experiment = claimed({"tp-size": [2], "mem-fraction-static": [0.8]}, gpus=2)

    run_experiment(experiment)

    experiment.refresh_from_db()
    assert (experiment.status, experiment.error, experiment.step) == (ExperimentStatus.SUCCEEDED, "", "")
    assert [level["concurrency"] for level in experiment.levels] == [1, 2]
    assert all(level["succeeded"] == 4 for level in experiment.levels), experiment.levels
    assert experiment.scored_level in (1, 2)
    scored = next(level for level in experiment.levels if level["concurrency"] == experiment.scored_level)
    # Maximising throughput: the score is the scored level's output tokens per second.
    assert experiment.score == experiment.throughput == scored["output_tokens_per_s"] > 0
    assert experiment.latency == scored["e2e_s"]["p50"] > 0
    assert (experiment.slo_violation, experiment.meets_slo) == ("", True)
    # The engine's own command, on the port it ran on; the stand-in launcher that really ran is in the log.
    assert experiment.command.startswith(
        "sglang serve --model-path meta-llama/Llama-3.1-8B-Instruct --host 127.0.0.1 --port "
    )
    assert experiment.command.endswith("--tp-size 2 --mem-fraction-static 0.8")
    assert experiment.log_tail.startswith(f"{HOST_COMMAND_LINE}{sys.executable} -m {django_settings.STANDIN_ENGINE} ")
    assert "standin engine: loading meta-llama/Llama-3.1-8B-Instruct (tp 2, memory fraction 0.8)" in (
        experiment.log_tail
    )
    assert "POST /v1/completions" in experiment.log_tail
    assert experiment.started_at < experiment.finished_at
    assert experiment.heartbeat_at is not None
    assert_engine_gone(experiment)


def test_the_standin_engine_starts_from_the_project_wherever_the_worker_was_started(tmp_path, monkeypatch):
    # python -m engines.standin finds the module only from the project's folder.
    monkeypatch.chdir(tmp_path)
    experiment = claimed({"tp-size": [1]})

    run_experiment(experiment)

    experiment.refresh_from_db()
    assert (experiment.status, experiment.error) == (ExperimentStatus.SUCCEEDED, ""), experiment.log_tail


def test_a_combination_that_runs_out_of_memory_fails_with_the_engines_reason():
    experiment = claimed({"mem-fraction-static": [0.97]})

    run_experiment(experiment)

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED
    assert experiment.error.startswith("the engine exited with status 1 before becoming healthy: ")
    assert "CUDA out of memory" in experiment.error
    assert "torch.OutOfMemoryError: CUDA out of memory" in experiment.log_tail
    assert (experiment.score, experiment.levels) == (None, [])
    assert_engine_gone(experiment)


def test_a_combination_missing_an_slo_succeeds_without_a_score_and_says_which_slo():
    experiment = claimed({"tp-size": [1]}, slo_ttft_p90_ms=0.001)

    run_experiment(experiment)

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.SUCCEEDED
    assert experiment.score is None
    assert experiment.slo_violation.startswith("violates SLO (p90 TTFT ")
    assert " ms > 0 ms; stopped early: " in experiment.slo_violation  # early stop names its reason
    # Early stop (on by default): once the first level misses an SLO, the higher one is not run.
    assert [level["concurrency"] for level in experiment.levels] == [1]
    assert not experiment.meets_slo


PRINT_GPUS = "import os; print('CUDA_VISIBLE_DEVICES=' + os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')); exit(1)"


@pytest.mark.parametrize(("tp", "visible"), [(1, "3"), (2, "3,5")], ids=["one-gpu", "two-gpus"])
def test_the_engine_sees_the_gpus_its_combination_needs_and_was_lent(settings, tp, visible):
    settings.GPU_IDS = ["3", "5"]
    settings.ENGINE_LAUNCHERS = launcher(PRINT_GPUS)
    experiment = claimed({"tp-size": [tp]}, gpus=2)  # a cap: tp-size 1 takes one of the two
    assert experiment.gpu_ids == visible.split(",")

    run_experiment(experiment)

    experiment.refresh_from_db()
    visible_line = f"CUDA_VISIBLE_DEVICES={visible}"
    assert visible_line in experiment.log_tail.splitlines()
    assert experiment.error == f"the engine exited with status 1 before becoming healthy: {visible_line}"


def test_without_gpu_ids_the_engine_inherits_the_workers_cuda_visible_devices(settings, monkeypatch):
    settings.GPU_IDS = []
    settings.ENGINE_LAUNCHERS = launcher(PRINT_GPUS)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    experiment = claimed({"tp-size": [1]})

    run_experiment(experiment)

    experiment.refresh_from_db()
    assert "CUDA_VISIBLE_DEVICES=7" in experiment.log_tail.splitlines()


def test_a_combination_needing_more_gpus_than_the_host_offers_fails_without_starting_an_engine(settings):
    settings.GPU_IDS = ["3"]
    task = make_task(parameters={"tp-size": [2]}, gpus=2, **FAST_BENCHMARK)
    lifecycle.start(task, enqueue=False)

    assert lifecycle.claim_next(task.pk) is None  # it would wait for a second GPU forever

    experiment = task.experiments.get()
    assert experiment.status == ExperimentStatus.FAILED
    assert experiment.error == "needs 2 GPUs, and this host offers 1 (AUTOTUNER_GPU_IDS)"
    assert experiment.engine_pid is None
    assert experiment.log_tail == ""


def test_an_engine_that_never_serves_fails_when_the_start_timeout_passes_and_is_stopped(settings):
    settings.ENGINE_START_TIMEOUT = 2
    settings.ENGINE_LAUNCHERS = launcher("import time; print('loading weights', flush=True); time.sleep(60)")
    experiment = claimed({"tp-size": [1]})

    began = time.monotonic()
    run_experiment(experiment)

    assert time.monotonic() - began < 10
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED
    assert experiment.error == "the engine not healthy after 2 s: loading weights"
    assert_engine_gone(experiment)


def test_an_experiment_outliving_the_task_timeout_is_stopped_and_fails_with_the_reason(settings):
    # Each request takes 50 tokens × 0.5 s: the benchmark would run for minutes.
    settings.ENGINE_LAUNCHERS = {"sglang": [*django_settings.STANDIN_LAUNCHERS["sglang"], "--tpot-ms", "500"]}
    # Below the form's minimum of 10 s, to keep the test short; the monitor treats any value alike.
    experiment = claimed({"tp-size": [1]}, output_tokens=50, experiment_timeout=3)

    began = time.monotonic()
    run_experiment(experiment)

    elapsed = time.monotonic() - began
    assert 3 <= elapsed < 10, elapsed
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED
    assert experiment.error == "took longer than the task's experiment timeout (3 s)"
    assert experiment.score is None
    assert_engine_gone(experiment)


def test_a_cancelled_task_stops_its_running_experiment(settings):
    settings.ENGINE_LAUNCHERS = {"sglang": [*django_settings.STANDIN_LAUNCHERS["sglang"], "--tpot-ms", "500"]}
    experiment = claimed({"tp-size": [1]}, output_tokens=50)
    # The task is cancelled before the run starts: the monitor's first check (within 0.5 s) stops it.
    lifecycle.cancel(Task.objects.get(pk=experiment.task_id))

    began = time.monotonic()
    run_experiment(experiment)

    assert time.monotonic() - began < 8
    experiment.refresh_from_db()
    assert (experiment.status, experiment.error) == (ExperimentStatus.CANCELLED, "cancelled while running")
    assert_engine_gone(experiment)


def test_a_missing_launcher_fails_the_experiment_with_the_reason(settings):
    settings.ENGINE_LAUNCHERS = {"sglang": ["/nonexistent/bin/engine"]}
    experiment = claimed({"tp-size": [1]})

    run_experiment(experiment)

    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.FAILED
    assert experiment.error == "could not start the engine: No such file or directory"  # not the server's path
    assert experiment.log_tail.startswith(f"{HOST_COMMAND_LINE}/nonexistent/bin/engine --host 127.0.0.1 --port ")
    assert experiment.engine_pid is None


def test_users_see_the_engines_own_command_and_only_staff_see_the_hosts_launcher(
    settings, tmp_path, client, user, staff_user
):
    script = tmp_path / "run-in-container.sh"
    script.write_text('exec "$@"\n')
    settings.ENGINE_LAUNCHERS = {"sglang": ["/bin/sh", str(script), *django_settings.STANDIN_LAUNCHERS["sglang"]]}
    experiment = claimed({"tp-size": [1]})
    run_experiment(experiment)
    experiment.refresh_from_db()
    assert experiment.status == ExperimentStatus.SUCCEEDED, experiment.error
    task = experiment.task
    host_words = ["run-in-container", str(settings.BASE_DIR), sys.executable]
    pages = [
        f"/api/tasks/{task.pk}/experiments",
        f"/api/tasks/{task.pk}/results",
        f"/api/tasks/{task.pk}/plan",
        f"/tasks/{task.pk}/",
        f"/tasks/{task.pk}/progress/",
        f"/tasks/{task.pk}/results/",
        f"/tasks/{task.pk}/results.csv",
        f"/tasks/{task.pk}/results.json",
        f"/tasks/{task.pk}/plan.json",
        f"/tasks/{task.pk}/plan.sh",
    ]

    client.force_login(user)
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        body = b"".join(response) if response.streaming else response.content
        assert not [word for word in host_words if word in body.decode()], page
    records = client.get(f"/api/tasks/{task.pk}/experiments").json()
    assert records[0]["command"] == experiment.command
    assert "standin engine: loading meta-llama/Llama-3.1-8B-Instruct" in records[0]["log_tail"]

    client.force_login(staff_user)
    log = client.get(f"/api/tasks/{task.pk}/experiments").json()[0]["log_tail"]
    assert log.splitlines()[0] == f"{HOST_COMMAND_LINE}/bin/sh {script} {sys.executable} -m engines.standin " + (
        experiment.command.removeprefix("sglang serve ")
    )
    assert f"{HOST_COMMAND_LINE}/bin/sh {script}" in client.get(f"/tasks/{task.pk}/results/").content.decode()
