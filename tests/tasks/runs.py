"""What the run tests (pages and API) read and write: a run's experiments as a worker leaves them, the run panel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasks.models import Experiment, Task
from tasks.states import ExperimentStatus, Objective
from tests.html import Element, parse

HTMX = {"HX-Request": "true"}
GRID = {"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]}
PLAN_ORDER = [
    {"tp-size": 1, "schedule-policy": "fcfs"},
    {"tp-size": 1, "schedule-policy": "lpm"},
    {"tp-size": 2, "schedule-policy": "fcfs"},
    {"tp-size": 2, "schedule-policy": "lpm"},
]
EARLIER = timezone.now() - timedelta(hours=1)
VIOLATION = "violates SLO (p90 TTFT 412 ms > 300 ms)"


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


def flashed_after(client, response) -> list[str]:
    """The messages the page a redirect leads to shows."""
    return flashed(client.get(response["Location"]))


def action_url(task: Task, action: str) -> str:
    return f"/tasks/{task.pk}/{action}/"


def run_actions(response) -> list[str]:
    """The buttons and links of the run panel, in order."""
    bar = page(response).by_id("run").find("div", class_="actions")
    if bar is None:
        return []
    return [element.text for element in bar.iter() if element.tag in ("a", "button")]


def row_numbers(response) -> list[int]:
    table = page(response).find("table", class_="experiments-table")
    return [int(row.attrs["id"].removeprefix("experiment-")) for row in table.find("tbody").find_all("tr")]


def stored(task: Task) -> list[tuple[int, str, dict[str, Any]]]:
    return list(task.experiments.order_by("number").values_list("number", "status", "parameters"))


def jobs(task: Task) -> list[DBTaskResult]:
    return [job for job in DBTaskResult.objects.all() if job.args_kwargs["args"] == [task.pk]]


def make_experiment(task: Task, number: int, status: str = ExperimentStatus.SUCCEEDED, **fields: Any) -> Experiment:
    """One experiment of a run, as a worker would have left it."""
    finished = status in (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)
    values: dict[str, Any] = {
        "task": task,
        "number": number,
        "status": status,
        "parameters": PLAN_ORDER[(number - 1) % len(PLAN_ORDER)],
        "command": f"python -m sglang.launch_server --model-path {task.model} --port {41000 + number}",  # as run
        "started_at": None if status == ExperimentStatus.PENDING else EARLIER,
        "finished_at": EARLIER + timedelta(minutes=number) if finished else None,
    }
    values.update(fields)
    return Experiment.objects.create(**values)


def measured(task: Task, number: int, throughput: float, latency: float, **fields: Any) -> Experiment:
    """A succeeded experiment scored on the task's objective at concurrency 32."""
    score = throughput if task.objective == Objective.MAXIMIZE_THROUGHPUT else latency
    values = {"score": score, "throughput": throughput, "latency": latency, "scored_level": 32}
    values.update(fields)
    level = {"concurrency": 32, "ttft_ms": {"p90": 120.0}, "tpot_ms": {"p90": 15.0}, "e2e_s": {"p99": 4.5}}
    return make_experiment(task, number, levels=[{**level, "success_rate": 1.0}], **values)


def in_status(task: Task, status: str) -> Task:
    """The task moved to a status as the lifecycle would, without a worker."""
    Task.objects.filter(pk=task.pk).update(status=status, started_at=EARLIER)
    task.refresh_from_db()
    return task


def progress_url(task: Task, query: str = "") -> str:
    return f"/tasks/{task.pk}/progress/" + (f"?{query}" if query else "")
