"""The choices of a task's fields: its and its experiments' statuses, its search strategy and
objective; and the one place the task lifecycle is written down: every status change goes through
Task.move_to, which asks TRANSITIONS."""

from __future__ import annotations

from django.db import models


class TaskStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


TRANSITIONS: dict[str, set[str]] = {
    TaskStatus.DRAFT: {TaskStatus.QUEUED},
    TaskStatus.QUEUED: {TaskStatus.RUNNING, TaskStatus.CANCELLED, TaskStatus.FAILED},
    TaskStatus.RUNNING: {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED},
    # Finished tasks run again by Restart (from a clean slate) or Resume (keeping finished experiments).
    TaskStatus.COMPLETED: {TaskStatus.QUEUED},
    TaskStatus.FAILED: {TaskStatus.QUEUED},
    TaskStatus.CANCELLED: {TaskStatus.QUEUED},
}
ACTIVE_STATUSES = (TaskStatus.QUEUED, TaskStatus.RUNNING)
FINISHED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)


class TransitionRefused(Exception):
    """A status change the lifecycle does not allow; the message says what the user can do instead."""


class ExperimentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    STARTING = "starting", "Starting"
    BENCHMARKING = "benchmarking", "Benchmarking"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    # Never run: an experiment already ran out of memory with less (``Task.skip_after_oom``).
    SKIPPED = "skipped", "Skipped"


class ExperimentRole(models.TextChoices):
    """Why an experiment runs: the engine's defaults to compare against, a combination of the
    search, or a finalist measured again on a fresh engine start."""

    BASELINE = "baseline", "Baseline"
    SEARCH = "search", "Search"
    REPEAT = "repeat", "Repeat"


class LoadMode(models.TextChoices):
    CONCURRENCY = "concurrency", "Closed loop: a fixed number of requests in flight"
    RATE = "rate", "Open loop: requests arrive at a rate (Poisson)"


# An experiment a worker holds: starting its engine or benchmarking it.
RUNNING_EXPERIMENT = (ExperimentStatus.STARTING, ExperimentStatus.BENCHMARKING)
FINISHED_EXPERIMENT = (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED)


def refusal(current: str, wanted: str) -> str:
    """Why a status change is refused, and what the user can do instead."""
    labels = dict(TaskStatus.choices)
    if current in ACTIVE_STATUSES and wanted in (TaskStatus.QUEUED,):
        return f"The task is {labels[current].lower()} already; cancel it first to run it again."
    if current == TaskStatus.DRAFT and wanted == TaskStatus.CANCELLED:
        return "The task has not been started, so there is nothing to cancel."
    if current in FINISHED_STATUSES and wanted == TaskStatus.CANCELLED:
        return f"The task is {labels[current].lower()}; there is nothing to cancel."
    return f"A {labels[current].lower()} task cannot become {labels[wanted].lower()}."


class OptimizationStrategy(models.TextChoices):
    GRID = "grid", "Grid: every combination"
    RANDOM = "random", "Random sample"
    BAYESIAN = "bayesian", "Bayesian (TPE)"


class Objective(models.TextChoices):
    MAXIMIZE_THROUGHPUT = "maximize_throughput", "Maximize throughput"
    # 8 × tp=1 and 1 × tp=8 compare fairly, and what a GPU buys is visible.
    MAXIMIZE_THROUGHPUT_PER_GPU = "maximize_throughput_per_gpu", "Maximize throughput per GPU"
    # The highest load (concurrency or request rate) meeting every SLO: what one replica really serves.
    MAXIMIZE_GOODPUT = "maximize_goodput", "Maximize goodput: the highest load meeting every SLO"
    MINIMIZE_LATENCY = "minimize_latency", "Minimize end-to-end latency"
    MINIMIZE_TTFT = "minimize_ttft", "Minimize time to first token"
    MINIMIZE_TPOT = "minimize_tpot", "Minimize time per output token"
