"""A task's run: start, cancel, restart and resume; workers claiming experiments; lost workers.

Every status change of a task happens here, in a transaction holding the task's row, through
``Task.move_to`` (which knows the allowed transitions). Workers claim one experiment at a time
with ``select_for_update(skip_locked=True)``, so two workers never run the same one, on
PostgreSQL as on SQLite (whose IMMEDIATE transactions serialise the claims instead).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from tasks import gpus
from tasks.models import Experiment, Task
from tasks.runner import kill_group
from tasks.states import (
    ACTIVE_STATUSES,
    RUNNING_EXPERIMENT,
    ExperimentRole,
    ExperimentStatus,
    OptimizationStrategy,
    TaskStatus,
    TransitionRefused,
)
from tasks.strategies import next_bayesian, planned_combinations, search_experiments
from tasks.verdict import challengers, finalists

logger = logging.getLogger("autotuner.runs")


def worker_name() -> str:
    """host:pid, stored on the experiments a worker holds (read per call: workers fork)."""
    return f"{settings.HOST_NAME}:{os.getpid()}"


def start(task: Task, *, enqueue: bool = True) -> Task:
    """Plan a draft task's experiments and queue it for the workers."""
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.status != TaskStatus.DRAFT:
            raise TransitionRefused(
                f"The task is {locked.get_status_display().lower()}; "
                + ("cancel it first." if locked.is_locked else "use Restart or Resume to run it again.")
            )
        _plan(locked)
        locked.move_to(TaskStatus.QUEUED, note="started")
        locked.save(update_fields=Task.STATUS_FIELDS)
    if enqueue:
        _enqueue(locked)
    return locked


def restart(task: Task, *, enqueue: bool = True) -> Task:
    """Run a finished task again from a clean slate: its experiments are deleted and planned anew."""
    recover_lost_experiments()  # an experiment whose worker died would otherwise block it for good
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if not locked.can_restart:
            raise TransitionRefused(restart_refusal(locked))
        _refuse_while_stopping(locked)
        locked.experiments.all().delete()
        _plan(locked)
        locked.move_to(TaskStatus.QUEUED, note="restarted")
        locked.save(update_fields=Task.STATUS_FIELDS)
    if enqueue:
        _enqueue(locked)
    return locked


def resume(task: Task, *, enqueue: bool = True) -> Task:
    """Continue a cancelled or failed task: finished experiments are kept, cancelled ones run again."""
    recover_lost_experiments()
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if not locked.can_resume:
            raise TransitionRefused(
                "Only a cancelled or failed task can be resumed. "
                + ("Use Restart to run it again." if locked.status == TaskStatus.COMPLETED else restart_refusal(locked))
            )
        _refuse_while_stopping(locked)
        # A cancelled experiment runs again from nothing: none of its interrupted attempt is kept.
        locked.experiments.filter(status=ExperimentStatus.CANCELLED).update(
            status=ExperimentStatus.PENDING,
            command="",
            step="",
            levels=[],
            score=None,
            scored_level=None,
            throughput=None,
            latency=None,
            slo_violation="",
            error="",
            log_tail="",
            worker="",
            host="",
            gpu_ids=[],
            serving_at=None,
            engine_pid=None,
            heartbeat_at=None,
            started_at=None,
            finished_at=None,
        )
        locked.move_to(TaskStatus.QUEUED, note="resumed")
        locked.save(update_fields=Task.STATUS_FIELDS)
    if enqueue:
        _enqueue(locked)
    return locked


def cancel(task: Task) -> Task:
    """Stop a queued or running task. Pending experiments are cancelled now; a running one is
    stopped by its worker, which checks twice a second and ends the engine's process group."""
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        locked.move_to(TaskStatus.CANCELLED, note="cancelled")
        locked.save(update_fields=Task.STATUS_FIELDS)
        # Rows a worker is claiming this instant are skipped (not waited for: that worker may be
        # waiting for this task's row); it sees the cancel at its first check and stops.
        pending = Experiment.objects.select_for_update(skip_locked=True).filter(
            task=locked, status=ExperimentStatus.PENDING
        )
        Experiment.objects.filter(pk__in=list(pending.values_list("pk", flat=True))).update(
            status=ExperimentStatus.CANCELLED, finished_at=timezone.now()
        )
    return locked


def restart_refusal(task: Task) -> str:
    """Why a task that has not finished cannot be run again (the pages say it before asking to confirm)."""
    if task.is_locked:
        return f"The task is {task.get_status_display().lower()}; cancel it first."
    return "The task has not run yet; use Start."


def _refuse_while_stopping(task: Task) -> None:
    if task.experiments.filter(status__in=RUNNING_EXPERIMENT).exists():
        raise TransitionRefused("An experiment of this task is still stopping; try again in a few seconds.")


def _plan(task: Task) -> None:
    """Check the task can run and write its grid or random experiments as pending rows."""
    if not task.parameters:
        raise TransitionRefused("The task has no parameters to tune; edit it and add some.")
    summary = task.plan_summary
    if not summary.runnable:
        reasons = "; ".join(summary.skipped) or "the grid is empty"
        combinations = (
            "The only combination cannot" if summary.total == 1 else f"None of the {summary.total:,} combinations can"
        )
        raise TransitionRefused(f"{combinations} run: {reasons}.")
    if task.seed is None and task.optimization_strategy != OptimizationStrategy.GRID:
        task.seed = random.SystemRandom().randrange(2**31)
        task.save(update_fields=["seed"])
    if task.baseline:
        # The engine's defaults, no tuning flag: what every result's gain is measured against.
        Experiment.objects.create(
            task=task, number=0, role=ExperimentRole.BASELINE, parameters={}, gpus=task.gpus_for({})
        )
    if task.optimization_strategy == OptimizationStrategy.BAYESIAN:
        return  # asked for one at a time, as the study learns
    Experiment.objects.bulk_create(
        Experiment(task=task, number=number, parameters=combination, gpus=task.gpus_for(combination))
        for number, combination in enumerate(planned_combinations(task, task.seed or 0), 1)
    )


def _enqueue(task: Task, jobs: int | None = None) -> None:
    from tasks.jobs import run_next_experiment

    # Each job runs one experiment and queues its successor: tasks take turns on the workers' slots
    # (round robin), and at most PARALLEL_EXPERIMENTS experiments of one task run at once.
    planned = task.experiments_planned + int(task.baseline)
    count = jobs if jobs is not None else max(1, min(settings.PARALLEL_EXPERIMENTS, planned))
    for _ in range(count):
        transaction.on_commit(lambda: run_next_experiment.enqueue(task.pk))


def claim_next(task_id: int, *, take_turns: bool = True) -> Experiment | None:
    """Take the next experiment of an active task for this worker, with the GPUs it needs leased from
    this host, or None when there is none to take now (``has_more`` tells whether to ask again).

    Tasks take turns (``take_turns``): a task gives way to another one that waits for the same GPUs
    with fewer experiments running, or as many and a longer wait, so tasks started together share the
    hosts round robin instead of the first one's queued jobs running it to the end."""
    host = settings.HOST_NAME
    with transaction.atomic():
        task = Task.objects.filter(pk=task_id, status__in=ACTIVE_STATUSES).first()
        if task is None:
            return None
        running = task.experiments.filter(status__in=RUNNING_EXPERIMENT).count()
        if running >= settings.PARALLEL_EXPERIMENTS:
            return None
        pending = Experiment.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            task_id=task_id, status=ExperimentStatus.PENDING
        )
        free: list[gpus.GpuSlot] = []
        offered = 0
        if settings.GPU_IDS:
            free, offered = gpus.free_slots(host, settings.GPU_IDS)
            _fail_too_big(task, offered)
            # The first experiment in plan order that fits the GPUs free now: a tp=4 combination
            # waiting for four never keeps a free GPU from a tp=1 one behind it.
            pending = pending.filter(gpus__lte=len(free))
        if take_turns and _turn_of_another(task, running, len(free) if settings.GPU_IDS else None):
            return None
        experiment = pending.order_by("number").first()
        if experiment is None and task.optimization_strategy == OptimizationStrategy.BAYESIAN:
            experiment = _ask_bayesian(task_id)
            if experiment is not None and settings.GPU_IDS and experiment.gpus > len(free):
                experiment.save()  # asked for, it waits for its GPUs like a planned one
                return None
        if experiment is None:
            return None
        if experiment.pk is None:
            experiment.save()
        lent: list[str] = []
        if settings.GPU_IDS:
            leased = gpus.lease(free, offered, experiment.pk, experiment.gpus)
            if leased is None:
                return None  # the experiment fits the free GPUs, so this never happens; no half-lease if it did
            lent = leased
        _mark_running(task_id)
        now = timezone.now()
        experiment.status = ExperimentStatus.STARTING
        experiment.step = "starting engine"
        experiment.worker = worker_name()
        experiment.host, experiment.gpu_ids = host, lent
        experiment.started_at = experiment.heartbeat_at = now
        experiment.save()
        return experiment


def _turn_of_another(task: Task, running: int, free: int | None) -> bool:
    """Whether another active task waits for the ``free`` GPUs (None: GPUs are not leased) and comes
    first: fewer experiments running, then the longest since its last claim, then the oldest."""
    waiting = Experiment.objects.filter(task=OuterRef("pk"), status=ExperimentStatus.PENDING)
    if free is not None:
        waiting = waiting.filter(gpus__lte=free)
    others = (
        Task.objects.filter(status__in=ACTIVE_STATUSES)
        .exclude(pk=task.pk)
        .filter(Exists(waiting))
        .annotate(
            running=Count("experiments", filter=Q(experiments__status__in=RUNNING_EXPERIMENT)),
            last_claim=Max("experiments__started_at"),
        )
        .values_list("pk", "running", "last_claim")
    )
    if not others:
        return False
    mine = task.experiments.aggregate(last=Max("started_at"))["last"]
    never = timezone.now() - timedelta(days=36500)

    def order(pk: int, running: int, last_claim: datetime | None) -> tuple[int, datetime, int]:
        return running, last_claim or never, pk

    return min(order(*other) for other in others) < order(task.pk, running, mine)


def _fail_too_big(task: Task, offered: int) -> None:
    """Fail the pending experiments needing more GPUs than this host offers at all: they would wait forever."""
    too_big = Experiment.objects.filter(task=task, status=ExperimentStatus.PENDING, gpus__gt=offered)
    for needed in too_big.values_list("gpus", flat=True).distinct():
        too_big.filter(gpus=needed).update(
            status=ExperimentStatus.FAILED,
            error=f"needs {needed} GPUs, and this host offers {offered} (AUTOTUNER_GPU_IDS)",
            finished_at=timezone.now(),
        )


def _ask_bayesian(task_id: int) -> Experiment | None:
    # The task's row is held while asking, so two workers never receive the same suggestion.
    task = Task.objects.select_for_update().get(pk=task_id)
    if task.status not in ACTIVE_STATUSES:
        return None
    experiments = list(task.experiments.order_by("number"))
    if len(search_experiments(experiments)) >= task.experiments_planned:
        return None
    combination = next_bayesian(task, experiments)
    if combination is None:
        return None
    number = max((experiment.number for experiment in experiments), default=0) + 1
    return Experiment(task=task, number=number, parameters=combination, gpus=task.gpus_for(combination))


def _mark_running(task_id: int) -> None:
    task = Task.objects.select_for_update().get(pk=task_id)
    if task.status == TaskStatus.QUEUED:
        task.move_to(TaskStatus.RUNNING)
        task.save(update_fields=Task.STATUS_FIELDS)


def has_more(task_id: int) -> bool:
    """Whether the task may have another experiment to hand out."""
    task = Task.objects.filter(pk=task_id, status__in=ACTIVE_STATUSES).first()
    if task is None:
        return False
    if task.experiments.filter(status=ExperimentStatus.PENDING).exists():
        return True
    if task.optimization_strategy == OptimizationStrategy.BAYESIAN:
        tried = task.experiments.filter(role=ExperimentRole.SEARCH).count()
        return tried < task.experiments_planned
    return False


def finish_if_done(task_id: int) -> bool:
    """Complete (or fail) an active task once nothing is pending or running; True when it is finished."""
    with transaction.atomic():
        task = Task.objects.select_for_update().filter(pk=task_id).first()
        if task is None or task.status not in ACTIVE_STATUSES:
            return True
        experiments = task.experiments
        if experiments.filter(status__in=(ExperimentStatus.PENDING, *RUNNING_EXPERIMENT)).exists():
            return False
        tried = list(experiments.all())
        bayesian = task.optimization_strategy == OptimizationStrategy.BAYESIAN
        if (
            bayesian
            and len(search_experiments(tried)) < task.experiments_planned
            and next_bayesian(task, tried) is not None
        ):
            return False
        if _plan_repeats(task, tried):
            return False
        if task.status == TaskStatus.QUEUED:
            task.move_to(TaskStatus.RUNNING)
        if experiments.filter(status=ExperimentStatus.SUCCEEDED).exists():
            task.move_to(TaskStatus.COMPLETED)
        else:
            task.move_to(TaskStatus.FAILED, note="Every experiment failed; see their errors below.")
        task.save(update_fields=Task.STATUS_FIELDS)
        logger.info("task %s %s", task_id, task.status)
        return True


def _plan_repeats(task: Task, experiments: Sequence[Experiment]) -> bool:
    """Once the search is done, measure its finalists again (each on a fresh engine start); once
    theirs are in, the challengers within noise of the leader; True when repeats were queued."""
    if not task.finalists:
        return False
    repeated = any(experiment.role == ExperimentRole.REPEAT for experiment in experiments)
    chosen = challengers(task, experiments) if repeated else finalists(task, experiments)
    if not chosen:
        return False
    number = max(experiment.number for experiment in experiments)
    repeats = []
    for finalist in chosen:
        for _ in range(task.repeats):
            number += 1
            repeats.append(
                Experiment(
                    task=task,
                    number=number,
                    role=ExperimentRole.REPEAT,
                    repeat_of=finalist,
                    parameters=finalist.parameters,
                    gpus=finalist.gpus,
                )
            )
    Experiment.objects.bulk_create(repeats)
    _enqueue(task, jobs=max(1, min(settings.PARALLEL_EXPERIMENTS, len(repeats))))
    logger.info("task %s: %s repeats of %s finalists planned", task.pk, len(repeats), len(chosen))
    return True


def recover_lost_experiments() -> list[int]:
    """Fail the running experiments whose worker is gone, and let their tasks go on; returns their ids.

    A worker on this host is gone when its process is; one elsewhere when it has not written for
    WORKER_LOST_AFTER seconds. An engine left behind on this host is killed with its group.
    """
    host = settings.HOST_NAME
    now = timezone.now()
    stale = now - timedelta(seconds=settings.WORKER_LOST_AFTER)
    lost: list[Experiment] = []
    for experiment in Experiment.objects.filter(status__in=RUNNING_EXPERIMENT):
        worker_host, _, pid = experiment.worker.rpartition(":")
        here = worker_host == host and pid.isdigit()
        if (here and not _process_alive(int(pid))) or (experiment.heartbeat_at or now) < stale:
            updated = Experiment.objects.filter(pk=experiment.pk, status=experiment.status).update(
                status=ExperimentStatus.FAILED,
                error=f"worker lost: {experiment.worker} stopped while the experiment was {experiment.status}",
                step="",
                finished_at=now,
            )
            if updated:
                lost.append(experiment)
                if here and experiment.engine_pid:
                    kill_group(experiment.engine_pid)
    gpus.release_orphans()
    for task_id in {experiment.task_id for experiment in lost}:
        logger.warning("task %s: recovered experiments lost with their worker", task_id)
        if not finish_if_done(task_id):
            with transaction.atomic():
                _enqueue(Task.objects.get(pk=task_id), jobs=1)
    return [experiment.pk for experiment in lost]


def _process_alive(pid: int) -> bool:
    """Whether the process runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return not Path("/proc").is_dir()  # no /proc: trust kill(0); with /proc, the read failed: gone
    return state not in ("Z", "X")
