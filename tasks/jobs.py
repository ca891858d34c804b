"""Background jobs (Django's Tasks API, run by `manage.py worker` on the database queue).

A job runs one experiment of a task and queues its successor while the task has more, so tasks
take turns on the workers' slots and several workers share a task. A job whose next experiment
waits for GPUs (busy with other experiments) asks again a moment later, at the back of the queue.
Jobs hold no state: a lost, repeated or late job finds nothing to claim and ends.
"""

from __future__ import annotations

from datetime import timedelta

from django.tasks import task
from django.utils import timezone

from tasks import lifecycle
from tasks.execution import run_experiment

# How soon a job waiting for GPUs asks again: a freed GPU idles at most this long.
WAIT_SECONDS = 0.2


@task
def run_next_experiment(task_id: int) -> str:
    lifecycle.recover_lost_experiments()
    experiment = lifecycle.claim_next(task_id)
    if experiment is None:
        if lifecycle.finish_if_done(task_id) or not lifecycle.has_more(task_id):
            return "nothing left to run"
        run_next_experiment.using(run_after=timezone.now() + timedelta(seconds=WAIT_SECONDS)).enqueue(task_id)
        return "waiting for GPUs"
    experiment = run_experiment(experiment)
    if not lifecycle.finish_if_done(task_id) and lifecycle.has_more(task_id):
        run_next_experiment.enqueue(task_id)
    return f"experiment {experiment.number}: {experiment.status}"
