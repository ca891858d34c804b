"""`manage.py run_task ID`: run a task's experiments in the foreground, with a progress bar.

It claims experiments like any worker, so it can share a task with running workers.
"""

from __future__ import annotations

import sys
import threading
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tasks import lifecycle
from tasks.execution import run_experiment
from tasks.jobs import WAIT_SECONDS
from tasks.models import Experiment, Task
from tasks.results import progress
from tasks.states import TaskStatus, TransitionRefused

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Run a task in the foreground: start it if it is a draft, then run its experiments one by one."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("task_id", type=int)
        again = parser.add_mutually_exclusive_group()
        again.add_argument("--restart", action="store_true", help="Run a finished task again from a clean slate.")
        again.add_argument("--resume", action="store_true", help="Continue a cancelled or failed task.")

    def handle(self, *args: Any, task_id: int, restart: bool, resume: bool, **options: Any) -> None:
        lifecycle.recover_lost_experiments()
        task = Task.objects.filter(pk=task_id).first()
        if task is None:
            raise CommandError(f"No task with id {task_id}.")
        try:
            if restart:
                task = lifecycle.restart(task, enqueue=False)
            elif resume:
                task = lifecycle.resume(task, enqueue=False)
            elif task.status == TaskStatus.DRAFT:
                task = lifecycle.start(task, enqueue=False)
            elif not task.is_locked:
                raise CommandError(
                    f"Task {task_id} is {task.status}: pass --restart to run it again"
                    + (" or --resume to continue it." if task.can_resume else ".")
                )
        except TransitionRefused as refusal:
            raise CommandError(str(refusal)) from None
        self.stdout.write(
            f"Running “{task.name}”: {task.experiments_planned} experiment(s), "
            f"{task.get_optimization_strategy_display()}"
        )
        printer = Progress(task, self.stdout)
        printer.start()
        try:
            while not lifecycle.finish_if_done(task.pk):
                experiment = lifecycle.claim_next(task.pk, take_turns=False)  # its own task, in the foreground
                if experiment is None:
                    if not lifecycle.has_more(task.pk):
                        break
                    time.sleep(WAIT_SECONDS)  # a worker runs the task's other experiments
                    continue
                printer.current = experiment.number
                experiment = run_experiment(experiment)
                printer.finished(experiment)
        finally:
            printer.stop()
        task.refresh_from_db()
        self.stdout.write(f"Task {task.pk} is {task.status}." + (f" {task.error}" if task.error else ""))
        if task.status == TaskStatus.FAILED:
            sys.exit(1)


class Progress(threading.Thread):
    """Redraws one line twice a second on a terminal; prints a line per experiment otherwise."""

    def __init__(self, task: Task, out: Any) -> None:
        super().__init__(daemon=True, name="progress")
        self.task = task
        self.out = out
        self.current: int | None = None
        self.tty = out.isatty()
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.wait(0.5):
                if self.tty:
                    self.out.write("\r" + self.line(), ending="")
                    self.out.flush()
        finally:
            connection.close()

    def line(self) -> str:
        experiments = list(Experiment.objects.filter(task=self.task).defer("log_tail", "levels"))
        # The page's count: the baseline, repeats and skipped experiments included.
        counted = progress(self.task, experiments)
        done, total = counted.done, max(counted.total, 1)
        filled = BAR_WIDTH * min(done, total) // total
        current = ""
        if self.current:
            step = next((e.step for e in experiments if e.number == self.current), "")
            current = f"experiment {self.current}: {step}"
        return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} {current}".ljust(100)[:100]

    def finished(self, experiment: Experiment) -> None:
        detail = (
            experiment.error
            or experiment.slo_violation
            or (f"score {experiment.score:.4g}" if experiment.score is not None else "")
        )
        prefix = "\r" if self.tty else ""
        self.out.write(f"{prefix}experiment {experiment.number}: {experiment.status} {detail}".ljust(100))

    def stop(self) -> None:
        self._done.set()
        self.join()
        if self.tty:
            self.out.write("")
