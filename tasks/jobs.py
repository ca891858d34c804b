"""Background jobs (Django's Tasks API, run by `manage.py worker` on the database queue).

A job runs one experiment of a task and queues its successor while the task has more, so tasks
take turns on a worker and several workers share a task. Jobs hold no state: a lost, repeated
or late job finds nothing to claim and ends.
"""

from __future__ import annotations

from django.tasks import task

from tasks import lifecycle
from tasks.execution import run_experiment


@task
def run_next_experiment(task_id: int) -> str:
    lifecycle.recover_lost_experiments()
    experiment = lifecycle.claim_next(task_id)
    if experiment is None:
        lifecycle.finish_if_done(task_id)
        return "nothing left to run"
    experiment = run_experiment(experiment)
    if not lifecycle.finish_if_done(task_id) and lifecycle.has_more(task_id):
        run_next_experiment.enqueue(task_id)
    return f"experiment {experiment.number}: {experiment.status}"
