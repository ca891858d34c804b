"""Run one claimed experiment: start its engine, wait until it serves, benchmark it, score it, stop it.

A monitor thread beside the run writes a heartbeat and the current step, and stops the engine's
whole process group when the task is cancelled or the experiment outlives the task's timeout.
Whatever happens, the experiment ends with a status, a reason when it failed, and the engine's
log tail; a failed experiment never stops the task.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from engines.plan import launch_command
from tasks import gpus
from tasks.benchmark import LevelResult, benchmark, goodput_search
from tasks.isolated import in_own_process
from tasks.models import HOST_COMMAND_LINE, Experiment, Task
from tasks.pruning import prune_after_oom
from tasks.runner import EngineFailed, EngineProcess, free_port
from tasks.scoring import score_levels
from tasks.states import RUNNING_EXPERIMENT, ExperimentStatus, LoadMode, Objective, TaskStatus
from tasks.workload import Workload

logger = logging.getLogger("autotuner.runs")

CHECK_SECONDS = 0.5  # how often the monitor looks for a cancel: "stops within seconds"
HEARTBEAT_SECONDS = 5.0
STANDIN_RUN = "AUTOTUNER_STANDIN_RUN"  # read by engines.standin, which imports nothing of ours


class Monitor(threading.Thread):
    def __init__(self, experiment: Experiment, timeout_s: float) -> None:
        super().__init__(name=f"experiment-{experiment.pk}-monitor", daemon=True)
        self.experiment_id = experiment.pk
        self.task_id = experiment.task_id
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self.step = experiment.step
        self.written_step = experiment.step
        self.engine: EngineProcess | None = None
        self.stopped = threading.Event()  # set once the run must end: read by the benchmark
        self.reason: str | None = None  # "cancelled" or why it was stopped
        self._done = threading.Event()

    def run(self) -> None:
        last_beat = 0.0
        try:
            while not self._done.wait(CHECK_SECONDS):
                status = Task.objects.filter(pk=self.task_id).values_list("status", flat=True).first()
                if status != TaskStatus.RUNNING and status != TaskStatus.QUEUED:
                    self.stop("cancelled")
                elif time.monotonic() > self.deadline:
                    self.stop(f"took longer than the task's experiment timeout ({self.timeout_s:g} s)")
                now = time.monotonic()
                if self.step != self.written_step or now - last_beat >= HEARTBEAT_SECONDS:
                    step = self.step
                    Experiment.objects.filter(pk=self.experiment_id, status__in=RUNNING_EXPERIMENT).update(
                        heartbeat_at=timezone.now(), step=step
                    )
                    self.written_step, last_beat = step, now
        except Exception:  # the run goes on without its monitor rather than dying with it
            logger.exception("experiment %s: monitor failed", self.experiment_id)
        finally:
            connection.close()  # this thread's own connection

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            logger.info("experiment %s: stopping (%s)", self.experiment_id, reason)
        self.stopped.set()
        if self.engine is not None:
            self.engine.stop(grace_s=settings.ENGINE_STOP_GRACE)

    def finish(self) -> None:
        self._done.set()
        if self.is_alive():
            self.join()


def run_experiment(experiment: Experiment) -> Experiment:
    """Run a claimed experiment to its end and store the outcome; returns it as stored."""
    task = Task.objects.get(pk=experiment.task_id)
    port = free_port()
    # Everyone sees the engine's own command. A launcher (a container script, a virtualenv's python)
    # is this host's business and names its paths: what really ran goes in the log, for staff.
    catalogue = task.catalogue
    command = launch_command(task.runtime, task.model, experiment.parameters, port=port, catalogue=catalogue)
    launcher = settings.ENGINE_LAUNCHERS.get(task.runtime)
    ran = launch_command(
        task.runtime, task.model, experiment.parameters, port=port, catalogue=catalogue, launcher=launcher
    )
    experiment.command = command
    Experiment.objects.filter(pk=experiment.pk).update(command=command)
    outcome: dict[str, Any] = {}
    monitor = Monitor(experiment, timeout_s=task.experiment_timeout)
    words = shlex.split(ran)
    log_head: list[str] = []  # the host's line, once the engine is started
    # The stand-in is a module of this project (python -m engines.standin): it starts from the
    # project's folder, wherever the worker was started. A real engine keeps the worker's folder.
    standin = settings.STANDIN_ENGINE in words
    env = _engine_env(experiment)
    if standin:
        env[STANDIN_RUN] = str(experiment.pk)  # each start its own noise: a repeat is a fresh measurement
    engine = EngineProcess(words, env=env, cwd=settings.BASE_DIR if standin else None)
    base_url = f"http://127.0.0.1:{port}"
    try:
        if ran != command:
            log_head.append(HOST_COMMAND_LINE + ran)
        engine.start()
        monitor.engine = engine
        Experiment.objects.filter(pk=experiment.pk).update(engine_pid=engine.pid)
        monitor.start()
        monitor.step = "waiting for the engine to serve"
        engine.wait_until_healthy(base_url, timeout_s=min(settings.ENGINE_START_TIMEOUT, task.experiment_timeout))
        Experiment.objects.filter(pk=experiment.pk, status__in=RUNNING_EXPERIMENT).update(
            status=ExperimentStatus.BENCHMARKING, serving_at=timezone.now()
        )

        def on_level(load: float) -> None:
            monitor.step = f"benchmarking {'rate' if task.load_mode == LoadMode.RATE else 'level'} {load:g}"

        results = _benchmark(task, base_url, stop=monitor.stopped, on_level=on_level)
        outcome = _scored(task, experiment, results)
        if engine.returncode is not None and not monitor.reason:
            # It crashed under load: the numbers are of a dead server.
            outcome = {**outcome, "status": ExperimentStatus.FAILED, "score": None}
            outcome["error"] = f"the engine exited with status {engine.returncode} during the benchmark"
    except EngineFailed as failure:
        last = next((line.strip() for line in reversed(failure.log_tail) if line.strip()), "")
        error = f"the engine {failure.reason}" + (f": {last[:300]}" if last else "")
        outcome = {"status": ExperimentStatus.FAILED, "error": error}
    except OSError as error:  # the launcher itself is missing or not executable
        # Not the file name, a server path: staff find the command in the log.
        outcome = {
            "status": ExperimentStatus.FAILED,
            "error": f"could not start the engine: {error.strerror or type(error).__name__}",
        }
    except Exception as error:
        logger.exception("experiment %s failed in the runner", experiment.pk)
        outcome = {"status": ExperimentStatus.FAILED, "error": f"runner error: {error.__class__.__name__}: {error}"}
    finally:
        monitor.finish()
        engine.stop(grace_s=settings.ENGINE_STOP_GRACE)
    if monitor.reason == "cancelled":
        outcome = {"status": ExperimentStatus.CANCELLED, "error": "cancelled while running"}
    elif monitor.reason:
        outcome = {**outcome, "status": ExperimentStatus.FAILED, "score": None, "error": monitor.reason}
    close_old_connections()
    with transaction.atomic():
        Experiment.objects.filter(pk=experiment.pk, status__in=RUNNING_EXPERIMENT).update(
            **outcome, step="", log_tail="\n".join([*log_head, *engine.log_tail]), finished_at=timezone.now()
        )
        gpus.release(experiment.pk)  # the engine's process group is gone: its GPUs are free
    experiment.refresh_from_db()
    if experiment.status == ExperimentStatus.FAILED and (skipped := prune_after_oom(experiment)):
        logger.info("experiment %s ran out of memory: %s pending experiment(s) skipped", experiment.pk, skipped)
    logger.info("experiment %s of task %s: %s %s", experiment.number, task.pk, experiment.status, experiment.error)
    return experiment


def _benchmark(
    task: Task, base_url: str, *, stop: threading.Event, on_level: Callable[[float], None]
) -> list[LevelResult]:
    """The task's workload at each of its loads; for goodput, the loads from the lowest of them,
    doubled then bisected up to the highest, until an SLO breaks. In a process of its own: the
    experiments running beside it must not slow its client (tasks.isolated)."""
    rate = task.load_mode == LoadMode.RATE
    workload = Workload(
        input_tokens=task.input_tokens,
        output_tokens=task.output_tokens,
        input_tokens_max=task.input_tokens_max,
        output_tokens_max=task.output_tokens_max,
        shared_prefix=task.shared_prefix,
        mode=task.load_mode,
        requests=task.requests_per_level,
        warmup_requests=task.warmup_requests,
        max_seconds=task.max_seconds_per_level,
        # One seed for every experiment of the task: each configuration is sent the same requests.
        seed=task.seed or 0,
    )
    loads = task.request_rates if rate else task.concurrency_levels
    slos, early_stop = task.slos, task.early_stop
    if task.objective == Objective.MAXIMIZE_GOODPUT:
        return in_own_process(
            goodput_search,
            base_url,
            task.model,
            workload,
            slos=slos,
            start=min(loads),
            ceiling=max(loads),
            early_stop=early_stop,
            stop=stop,
            on_level=on_level,
        )
    return in_own_process(
        benchmark, base_url, task.model, workload, loads, slos=slos, early_stop=early_stop, stop=stop, on_level=on_level
    )


def _scored(task: Task, experiment: Experiment, results: list[LevelResult]) -> dict[str, Any]:
    scored = score_levels(results, task.objective, task.slos, gpus=experiment.gpus)
    outcome: dict[str, Any] = {
        "levels": [level.as_dict() for level in results],
        "score": scored.value,
        "slo_violation": scored.reason if scored.reason and scored.level is not None else "",
    }
    if scored.level is not None:
        outcome.update(
            status=ExperimentStatus.SUCCEEDED,
            scored_level=scored.level.concurrency,
            throughput=scored.level.output_tokens_per_s,
            latency=scored.level.e2e_s["p50"],
        )
    else:
        errors = {name: count for level in results for name, count in level.errors.items()}
        detail = "; ".join(f"{name} ×{count}" for name, count in sorted(errors.items())[:3])
        outcome.update(status=ExperimentStatus.FAILED, error=f"{scored.reason}" + (f" ({detail})" if detail else ""))
    return outcome


def _engine_env(experiment: Experiment) -> dict[str, str]:
    # The GPUs the experiment was lent; without AUTOTUNER_GPU_IDS the engine inherits the worker's.
    if not experiment.gpu_ids:
        return {}
    return {"CUDA_VISIBLE_DEVICES": ",".join(experiment.gpu_ids)}
