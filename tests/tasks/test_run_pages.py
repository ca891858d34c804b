"""Running a task from its pages, with no worker and no engine: Start, Cancel, Restart and Resume
without JavaScript (plain POSTs and redirects) and with htmx; the polled progress fragment; the
experiments table, its sorting and the results (best configuration, plot, downloads); saving an
experiment as a preset. Finished runs are experiments written straight to the database."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from presets.models import ParameterPreset
from tasks import lifecycle
from tasks.models import Experiment, ExperimentStatus, Objective, Task, TaskStatus
from tests.factories import make_task
from tests.html import Element, accessibility_problems, parse

pytestmark = pytest.mark.django_db

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


@pytest.fixture
def draft(user) -> Task:
    """Four runnable experiments: both tp-sizes fit on two GPUs."""
    return make_task(name="Llama sweep", parameters=GRID, gpus=2, created_by=user)


@pytest.fixture
def finished(draft) -> Task:
    """A completed run: the best (1) meets the SLOs, 2 is faster but violates one, 3 failed, 4 is slower."""
    task = in_status(draft, TaskStatus.COMPLETED)
    measured(task, 1, throughput=300.0, latency=2.0)
    measured(task, 2, throughput=500.0, latency=3.0, score=None, slo_violation=VIOLATION)
    make_experiment(
        task,
        3,
        ExperimentStatus.FAILED,
        error="engine exited with code 1 before it was ready",
        log_tail="loading weights\nCUDA out of memory",
    )
    measured(task, 4, throughput=200.0, latency=1.0)
    return task


@pytest.fixture
def running(draft) -> Task:
    """Started for real, then two experiments finished and the third benchmarking."""
    task = lifecycle.start(draft, enqueue=False)
    task = in_status(task, TaskStatus.RUNNING)
    Experiment.objects.filter(task=task, number=1).update(
        status=ExperimentStatus.SUCCEEDED,
        score=300.0,
        throughput=300.0,
        latency=2.0,
        started_at=EARLIER,
        finished_at=EARLIER + timedelta(minutes=2),
    )
    Experiment.objects.filter(task=task, number=2).update(
        status=ExperimentStatus.FAILED,
        error="engine exited",
        started_at=EARLIER,
        finished_at=EARLIER + timedelta(minutes=2),
    )
    Experiment.objects.filter(task=task, number=3).update(
        status=ExperimentStatus.BENCHMARKING,
        step="benchmarking level 32",
        started_at=timezone.now(),
        worker="gpu-host:42",
    )
    return task


# The run panel on the task page


def test_the_owner_sees_start_and_how_many_experiments_a_draft_will_run(signed_in, draft):
    response = signed_in.get(draft.get_absolute_url())

    run = page(response).by_id("run")
    assert run_actions(response) == ["Start"]
    assert run.find("form").attrs == {"method": "post", "action": action_url(draft, "start")}
    assert "Start runs 4 experiments on the workers" in run.text
    assert run.find("progress") is None
    assert "hx-trigger" not in run.attrs


def test_another_user_is_offered_no_run_actions(client, other_user, draft):
    client.force_login(other_user)

    response = client.get(draft.get_absolute_url())

    assert run_actions(response) == []
    assert "Start runs 4 experiments" in page(response).by_id("run").text


def test_staff_may_start_anyones_task(client, staff_user, draft):
    client.force_login(staff_user)

    assert run_actions(client.get(draft.get_absolute_url())) == ["Start"]
    client.post(action_url(draft, "start"))

    draft.refresh_from_db()
    assert draft.status == TaskStatus.QUEUED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (TaskStatus.QUEUED, ["Cancel"]),
        (TaskStatus.RUNNING, ["Cancel"]),
        (TaskStatus.COMPLETED, ["Restart"]),
        (TaskStatus.FAILED, ["Resume", "Restart"]),
        (TaskStatus.CANCELLED, ["Resume", "Restart"]),
    ],
)
def test_the_run_panel_offers_only_what_the_status_allows(signed_in, draft, status, expected):
    assert run_actions(signed_in.get(in_status(draft, status).get_absolute_url())) == expected


def test_restart_is_a_link_to_its_confirmation_page_that_htmx_posts_after_asking(signed_in, finished):
    link = page(signed_in.get(finished.get_absolute_url())).by_id("run").find("a", class_="button")

    assert link.text == "Restart"
    assert link.attrs["href"] == action_url(finished, "restart")
    assert link.attrs["hx-post"] == action_url(finished, "restart")
    assert "4 experiments and their results will be deleted" in link.attrs["hx-confirm"]


# Start


def test_start_plans_the_experiments_queues_the_task_and_enqueues_jobs(
    signed_in, draft, settings, django_capture_on_commit_callbacks
):
    settings.PARALLEL_EXPERIMENTS = 2

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(draft, "start"))

    assert response.status_code == 302
    assert response["Location"] == draft.get_absolute_url()
    draft.refresh_from_db()
    assert draft.status == TaskStatus.QUEUED
    assert [entry["status"] for entry in draft.status_history] == ["queued"]
    assert stored(draft) == [(number, "pending", combination) for number, combination in enumerate(PLAN_ORDER, 1)]
    assert [job.task_path for job in jobs(draft)] == ["tasks.jobs.run_next_experiment"] * 2
    assert flashed_after(signed_in, response) == ["Started “Llama sweep”: 4 experiment(s) queued for the workers."]


def test_the_jobs_wait_for_the_start_to_be_committed(signed_in, draft, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        signed_in.post(action_url(draft, "start"))

    assert DBTaskResult.objects.count() == 0
    assert len(callbacks) >= 1


def test_start_with_htmx_redirects_the_browser_to_the_task(signed_in, draft, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(draft, "start"), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == draft.get_absolute_url()
    draft.refresh_from_db()
    assert draft.status == TaskStatus.QUEUED
    assert len(jobs(draft)) >= 1


def test_start_with_nothing_runnable_says_why_and_stays_a_draft(signed_in, user, django_capture_on_commit_callbacks):
    task = make_task(name="Too big", parameters={"tp-size": [4]}, gpus=1, created_by=user)

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(task, "start"))

    assert response.status_code == 302
    [message] = flashed_after(signed_in, response)
    assert message.startswith("The only combination cannot run:")
    assert "tp-size" in message
    task.refresh_from_db()
    assert task.status == TaskStatus.DRAFT
    assert task.experiments.count() == 0
    assert DBTaskResult.objects.count() == 0


def test_starting_twice_is_refused_and_plans_nothing_more(signed_in, draft, django_capture_on_commit_callbacks):
    lifecycle.start(draft, enqueue=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(draft, "start"))

    assert flashed_after(signed_in, response) == ["The task is queued; cancel it first."]
    assert draft.experiments.count() == 4
    assert DBTaskResult.objects.count() == 0


# Who may run a task, and which addresses exist


@pytest.mark.parametrize("action", ["start", "cancel", "restart", "resume"])
def test_another_user_cannot_run_or_stop_a_task(client, other_user, finished, action):
    client.force_login(other_user)

    response = client.post(action_url(finished, action))

    assert response.status_code == 403
    finished.refresh_from_db()
    assert finished.status == TaskStatus.COMPLETED
    assert [status for _, status, _ in stored(finished)] == ["succeeded", "succeeded", "failed", "succeeded"]


@pytest.mark.parametrize("action", ["start", "cancel", "restart", "resume"])
def test_running_a_task_needs_a_signed_in_user(client, draft, action):
    url = action_url(draft, action)

    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT


@pytest.mark.parametrize("url", ["/tasks/{id}/explode/", "/tasks/999/start/", "/tasks/{id}/start/extra/"])
def test_an_unknown_action_or_task_is_404(signed_in, draft, url):
    response = signed_in.post(url.format(id=draft.pk))

    assert response.status_code == 404
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT


@pytest.mark.parametrize("action", ["start", "cancel", "resume"])
def test_opening_an_action_address_changes_nothing_and_returns_to_the_task(signed_in, draft, action):
    response = signed_in.get(action_url(draft, action))

    assert response.status_code == 302
    assert response["Location"] == draft.get_absolute_url()
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT
    assert draft.experiments.count() == 0


def test_run_actions_refuse_other_methods(signed_in, draft):
    assert signed_in.put(action_url(draft, "start")).status_code == 405


# Restart


def test_restart_asks_for_confirmation_first(signed_in, finished):
    response = signed_in.get(action_url(finished, "restart"))

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Restart “Llama sweep”?"
    assert "Its 4 experiments and their results will be deleted" in document.find("main").text
    form = document.find("main").find("form")
    assert form.attrs["method"] == "post"
    assert form.attrs.get("action", "") == ""  # posts back to the restart address
    assert form.find("button").text == "Yes, restart it"
    assert form.find("a").attrs["href"] == finished.get_absolute_url()
    finished.refresh_from_db()
    assert finished.status == TaskStatus.COMPLETED
    assert finished.experiments.count() == 4


def test_restart_deletes_the_experiments_and_plans_them_again(signed_in, finished, django_capture_on_commit_callbacks):
    before = set(finished.experiments.values_list("pk", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(finished, "restart"))

    assert response.status_code == 302
    assert response["Location"] == finished.get_absolute_url()
    finished.refresh_from_db()
    assert finished.status == TaskStatus.QUEUED
    assert finished.finished_at is None
    assert stored(finished) == [(number, "pending", combination) for number, combination in enumerate(PLAN_ORDER, 1)]
    assert not before & set(finished.experiments.values_list("pk", flat=True))
    assert not finished.experiments.exclude(score=None).exists()
    assert len(jobs(finished)) >= 1
    assert flashed_after(signed_in, response) == ["Restarted “Llama sweep” from a clean slate."]


def test_restart_with_htmx_redirects_the_browser_to_the_task(signed_in, finished):
    response = signed_in.post(action_url(finished, "restart"), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == finished.get_absolute_url()
    finished.refresh_from_db()
    assert finished.status == TaskStatus.QUEUED


def test_restart_of_a_running_task_is_refused_and_deletes_nothing(
    signed_in, running, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(running, "restart"))

    [message] = page(signed_in.get(response["Location"])).by_id("messages").find_all("p")
    assert "the task is running; cancel it first" in message.text.lower()
    assert message.attrs["role"] == "alert"
    running.refresh_from_db()
    assert running.status == TaskStatus.RUNNING
    assert [status for _, status, _ in stored(running)] == ["succeeded", "failed", "benchmarking", "pending"]
    assert DBTaskResult.objects.count() == 0


# Cancel and resume


def test_cancel_stops_the_pending_experiments_and_keeps_the_finished_ones(signed_in, running):
    Experiment.objects.filter(task=running, number=3).update(status=ExperimentStatus.SUCCEEDED, step="")

    response = signed_in.post(action_url(running, "cancel"))

    assert response.status_code == 302
    running.refresh_from_db()
    assert running.status == TaskStatus.CANCELLED
    assert [status for _, status, _ in stored(running)] == ["succeeded", "failed", "succeeded", "cancelled"]
    assert flashed_after(signed_in, response) == ["Cancelled “Llama sweep”; a running engine stops within seconds."]


def test_cancel_leaves_the_running_experiment_to_its_worker(signed_in, running):
    signed_in.post(action_url(running, "cancel"))

    running.refresh_from_db()
    assert running.status == TaskStatus.CANCELLED
    assert [status for _, status, _ in stored(running)] == ["succeeded", "failed", "benchmarking", "cancelled"]


def test_cancelling_a_draft_is_refused(signed_in, draft):
    response = signed_in.post(action_url(draft, "cancel"))

    assert flashed_after(signed_in, response) == ["The task has not been started, so there is nothing to cancel."]
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT


def test_resume_runs_the_cancelled_experiments_again_and_keeps_the_finished_ones(
    signed_in, running, django_capture_on_commit_callbacks
):
    Experiment.objects.filter(task=running, number=3).update(status=ExperimentStatus.SUCCEEDED, step="")
    lifecycle.cancel(running)

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(action_url(running, "resume"))

    running.refresh_from_db()
    assert running.status == TaskStatus.QUEUED
    assert [status for _, status, _ in stored(running)] == ["succeeded", "failed", "succeeded", "pending"]
    assert running.experiments.get(number=1).score == 300.0
    assert running.experiments.get(number=4).finished_at is None
    assert len(jobs(running)) >= 1
    assert flashed_after(signed_in, response) == ["Resumed “Llama sweep”: finished experiments are kept."]


def test_resume_waits_while_an_experiment_is_still_stopping(signed_in, running):
    lifecycle.cancel(running)

    response = signed_in.post(action_url(running, "resume"))

    assert flashed_after(signed_in, response) == [
        "An experiment of this task is still stopping; try again in a few seconds."
    ]
    running.refresh_from_db()
    assert running.status == TaskStatus.CANCELLED


def test_a_completed_task_is_not_resumed_but_pointed_to_restart(signed_in, finished):
    response = signed_in.post(action_url(finished, "resume"))

    [message] = flashed_after(signed_in, response)
    assert "Use Restart" in message
    finished.refresh_from_db()
    assert finished.status == TaskStatus.COMPLETED


# A started task is locked


def test_a_started_task_cannot_be_edited(signed_in, draft):
    lifecycle.start(draft, enqueue=False)

    response = signed_in.post(f"/tasks/{draft.pk}/edit/", {"name": "Changed"})

    assert response.status_code == 302
    assert flashed_after(signed_in, response) == ["“Llama sweep” is queued; it cannot be edited now."]
    draft.refresh_from_db()
    assert draft.name == "Llama sweep"


def test_a_started_task_cannot_be_deleted(signed_in, draft):
    lifecycle.start(draft, enqueue=False)

    response = signed_in.post(f"/tasks/{draft.pk}/delete/")

    assert response.status_code == 302
    assert flashed_after(signed_in, response) == ["“Llama sweep” is queued; cancel it before deleting."]
    assert Task.objects.filter(pk=draft.pk).exists()
    assert draft.experiments.count() == 4


# Progress, polled while the task runs


def progress_url(task: Task, query: str = "") -> str:
    return f"/tasks/{task.pk}/progress/" + (f"?{query}" if query else "")


def test_the_progress_fragment_shows_which_experiment_runs_and_its_step(signed_in, running):
    response = signed_in.get(progress_url(running, "live=1"), headers=HTMX)

    assert response.status_code == 200
    document = page(response)
    [run] = [child for child in document.children if isinstance(child, Element)]
    assert run.attrs["id"] == "run"
    assert document.find("h1") is None
    assert "Experiment 3 of 4" in run.find("span", class_="progress-text").text
    assert run.find("span", class_="step").text == "· #3: benchmarking level 32"
    bar = run.find("progress")
    assert (bar.attrs["value"], bar.attrs["max"]) == ("2", "4")
    assert "HX-Refresh" not in response


@pytest.mark.parametrize(
    ("statuses", "shown", "done"),
    [
        (["benchmarking", "succeeded", "succeeded", "pending"], "Experiment 1 of 4", "2"),
        (["succeeded", "starting", "benchmarking", "pending"], "Experiment 2 of 4", "1"),
        (["succeeded", "failed", "pending", "pending"], "Experiment 3 of 4", "2"),
    ],
    ids=["a-slow-first-experiment", "two-in-parallel", "between-experiments"],
)
def test_the_progress_names_the_lowest_running_experiment_else_the_next(signed_in, draft, statuses, shown, done):
    task = in_status(lifecycle.start(draft, enqueue=False), TaskStatus.RUNNING)
    for number, status in enumerate(statuses, 1):
        task.experiments.filter(number=number).update(status=status, step="")

    run = page(signed_in.get(progress_url(task), headers=HTMX)).by_id("run")

    assert shown in run.find("span", class_="progress-text").text
    assert run.find("progress").attrs["value"] == done


def test_the_progress_keeps_polling_while_the_task_runs(signed_in, running):
    run = page(signed_in.get(progress_url(running), headers=HTMX)).by_id("run")

    assert run.attrs["hx-trigger"] == "every 1s"
    assert run.attrs["hx-get"] == progress_url(running, "live=1&sort=number")
    assert run.attrs["hx-swap"] == "outerHTML"


def test_the_task_page_polls_the_progress_and_reloads_itself_without_javascript(signed_in, running):
    document = page(signed_in.get(running.get_absolute_url()))

    assert document.by_id("run").attrs["hx-get"] == progress_url(running, "live=1&sort=number")
    assert document.find("noscript").find("meta").attrs["http-equiv"] == "refresh"


def test_a_queued_task_shows_the_next_experiment_to_run(signed_in, draft):
    signed_in.post(action_url(draft, "start"))

    run = page(signed_in.get(progress_url(draft), headers=HTMX)).by_id("run")

    assert "Experiment 1 of 4" in run.text
    assert run.find("progress").attrs["value"] == "0"
    assert run.attrs["hx-trigger"] == "every 1s"


def test_once_the_run_ends_the_fragment_stops_polling_and_asks_for_a_reload(signed_in, finished):
    response = signed_in.get(progress_url(finished, "live=1"), headers=HTMX)

    assert response["HX-Refresh"] == "true"
    run = page(response).by_id("run")
    assert "hx-trigger" not in run.attrs
    assert "hx-get" not in run.attrs
    assert "4 of 4 experiments finished" in run.text


def test_after_a_cancel_the_fragment_polls_until_the_running_experiment_has_stopped(signed_in, running):
    lifecycle.cancel(running)

    response = signed_in.get(progress_url(running, "live=1"), headers=HTMX)

    assert "HX-Refresh" not in response
    run = page(response).by_id("run")
    assert run.attrs["hx-trigger"] == "every 1s"
    assert run.find("span", class_="step").text == "· #3: stopping"

    running.experiments.filter(number=3).update(status=ExperimentStatus.CANCELLED, step="")

    assert signed_in.get(progress_url(running, "live=1"), headers=HTMX)["HX-Refresh"] == "true"


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["htmx", "plain"])
def test_a_finished_fragment_asked_for_by_sorting_does_not_reload(signed_in, finished, headers):
    response = signed_in.get(progress_url(finished, "sort=score"), headers=headers)

    assert response.status_code == 200
    assert "HX-Refresh" not in response


def test_a_queued_task_whose_job_waits_too_long_suggests_starting_a_worker(
    signed_in, draft, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(action_url(draft, "start"))
    assert "Waiting for a worker" not in page(signed_in.get(progress_url(draft))).text

    DBTaskResult.objects.update(enqueued_at=timezone.now() - timedelta(minutes=5))

    assert "Waiting for a worker" in page(signed_in.get(progress_url(draft))).text


def test_the_progress_fragment_reads_the_same_few_queries_for_many_experiments(signed_in, draft):
    lifecycle.start(draft, enqueue=False)
    in_status(draft, TaskStatus.RUNNING)
    with CaptureQueriesContext(connection) as few:
        signed_in.get(progress_url(draft), headers=HTMX)

    many = make_task(name="Wide", parameters={"max-running-requests": list(range(1, 41))}, created_by=draft.created_by)
    lifecycle.start(many, enqueue=False)
    in_status(many, TaskStatus.RUNNING)
    Experiment.objects.filter(task=many, number__lte=20).update(
        status=ExperimentStatus.SUCCEEDED,
        score=1.0,
        throughput=1.0,
        latency=1.0,
        started_at=EARLIER,
        finished_at=timezone.now(),
    )
    with CaptureQueriesContext(connection) as more:
        response = signed_in.get(progress_url(many), headers=HTMX)

    assert response.status_code == 200
    assert len(row_numbers(response)) == 40
    assert len(more) == len(few)


# The experiments table and its sorting


@pytest.mark.parametrize(
    ("objective", "sort", "order"),
    [
        (Objective.MAXIMIZE_THROUGHPUT, "number", [1, 2, 3, 4]),
        (Objective.MAXIMIZE_THROUGHPUT, "score", [1, 4, 2, 3]),
        (Objective.MINIMIZE_LATENCY, "score", [4, 1, 2, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "throughput", [2, 1, 4, 3]),
        (Objective.MINIMIZE_LATENCY, "latency", [4, 1, 2, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "bogus", [1, 2, 3, 4]),
    ],
    ids=["number", "score-highest-first", "score-lowest-latency-first", "throughput", "latency", "unknown-key"],
)
def test_sorting_puts_the_best_first_and_experiments_without_a_value_last(signed_in, finished, objective, sort, order):
    Task.objects.filter(pk=finished.pk).update(objective=objective)
    if objective == Objective.MINIMIZE_LATENCY:
        for experiment in finished.experiments.exclude(latency=None).exclude(slo_violation__gt=""):
            Experiment.objects.filter(pk=experiment.pk).update(score=experiment.latency)

    response = signed_in.get(f"{finished.get_absolute_url()}?sort={sort}")

    assert response.status_code == 200
    assert row_numbers(response) == order


@pytest.mark.parametrize(("sort", "current"), [("throughput", "Throughput"), ("bogus", "Number")])
def test_the_sort_links_mark_the_current_one(signed_in, finished, sort, current):
    links = page(signed_in.get(f"{finished.get_absolute_url()}?sort={sort}")).find("p", class_="sort-links")

    assert links.find("strong").text == current
    assert links.find("strong").attrs["aria-current"] == "true"
    assert current not in [link.text for link in links.find_all("a")]
    score = links.find("a", href="?sort=score#experiments")
    assert score.attrs["hx-get"] == progress_url(finished, "sort=score")
    assert score.attrs["hx-target"] == "#run"


def test_sorting_with_htmx_answers_the_run_panel_alone(signed_in, finished):
    response = signed_in.get(progress_url(finished, "sort=throughput"), headers=HTMX)

    assert page(response).find("h1") is None
    assert row_numbers(response) == [2, 1, 4, 3]


# Results


def test_the_best_is_the_highest_score_meeting_every_slo(signed_in, finished):
    document = page(signed_in.get(finished.get_absolute_url()))

    card = document.find("div", class_="best-config")
    assert card.find("h4").text == "Best configuration: experiment 1"
    assert "300.0" in card.text
    assert document.by_id("experiment-1").attrs["class"].split() == ["experiment-succeeded", "best-row"]
    assert "Best" not in document.by_id("experiment-2").text


def test_an_experiment_violating_an_slo_is_never_best_and_says_why(signed_in, finished):
    row = page(signed_in.get(finished.get_absolute_url())).by_id("experiment-2")

    assert "best-row" not in row.attrs["class"]
    assert row.find("div", class_="warning-text").text == VIOLATION
    assert row.find_all("td")[4].text == "500.0"  # the fastest, all the same


def test_the_best_card_shows_the_command_to_copy_and_saves_it_as_a_preset(signed_in, finished):
    card = page(signed_in.get(finished.get_absolute_url())).find("div", class_="best-config")

    command = card.find("code")  # to start it for real: on the plan's port, not the worker's
    assert command.text == finished.experiments.get(number=1).deploy_command
    assert command.text.startswith("python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct")
    assert "--tp-size 1 --schedule-policy fcfs" in command.text
    assert "--port 41001" not in command.text
    assert card.find("button", type="button").attrs["data-copy"] == command.attrs["id"]
    assert card.find("form").attrs["action"] == f"/tasks/{finished.pk}/experiments/1/save-preset/"


def test_the_results_plot_throughput_against_latency(signed_in, finished):
    figure = page(signed_in.get(finished.get_absolute_url())).find("figure", class_="plot")

    svg = figure.find("svg")
    assert svg.attrs["role"] == "img"
    assert all(target for target in svg.attrs["aria-labelledby"].split())
    assert figure.find("figcaption") is not None


def test_a_failed_experiment_shows_its_error_and_the_engine_log(signed_in, finished):
    row = page(signed_in.get(finished.get_absolute_url())).by_id("experiment-3")

    assert row.find("div", class_="error-text").text == "engine exited with code 1 before it was ready"
    log = row.find("details")
    assert log.find("summary").text == "Engine log (last 2 lines)"
    assert log.find("pre").raw_text == "loading weights\nCUDA out of memory"


def test_with_no_experiment_meeting_the_slos_there_is_no_best(signed_in, finished):
    finished.experiments.filter(number__in=[1, 4]).update(score=None, slo_violation=VIOLATION)

    document = page(signed_in.get(finished.get_absolute_url()))

    assert document.find("div", class_="best-config") is None
    assert "No experiment met every SLO: there is no best configuration" in document.by_id("results").text


def test_a_run_whose_every_experiment_failed_still_offers_its_downloads(signed_in, draft):
    task = in_status(draft, TaskStatus.FAILED)
    make_experiment(task, 1, ExperimentStatus.FAILED, error="engine exited with code 1")
    make_experiment(task, 2, ExperimentStatus.FAILED, error="engine exited with code 1")

    for address in (task.get_absolute_url(), f"/tasks/{task.pk}/results/"):
        results = page(signed_in.get(address)).by_id("results")

        assert results.find("div", class_="best-config") is None
        assert "No experiment has succeeded" in results.text
        assert f"/tasks/{task.pk}/results.csv" in [link.attrs["href"] for link in results.find_all("a")]


def test_a_draft_shows_no_results_yet(signed_in, draft):
    assert page(signed_in.get(draft.get_absolute_url())).find(id="results") is None


def test_the_results_page_shows_the_run_and_links_back_to_the_task(signed_in, finished):
    response = signed_in.get(f"/tasks/{finished.pk}/results/")

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").find("a").attrs["href"] == finished.get_absolute_url()
    assert document.find("div", class_="best-config").find("h4").text == "Best configuration: experiment 1"
    assert len(row_numbers(response)) == 4
    assert "Results page" not in document.by_id("results").text


def test_the_results_page_of_a_running_task_reloads_itself_without_javascript(signed_in, running):
    document = page(signed_in.get(f"/tasks/{running.pk}/results/"))

    assert document.find("noscript").find("meta").attrs == {"http-equiv": "refresh", "content": "5"}
    assert document.by_id("run").attrs["hx-trigger"] == "every 1s"


def test_the_results_page_of_a_finished_task_stays_put(signed_in, finished):
    assert page(signed_in.get(f"/tasks/{finished.pk}/results/")).find("noscript") is None


def test_the_results_page_sorts_too(signed_in, finished):
    assert row_numbers(signed_in.get(f"/tasks/{finished.pk}/results/?sort=throughput")) == [2, 1, 4, 3]


def test_the_csv_download_has_a_row_per_experiment_and_a_column_per_flag(signed_in, finished):
    response = signed_in.get(f"/tasks/{finished.pk}/results.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="results-llama-sweep.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["number"] for row in rows] == ["1", "2", "3", "4"]
    assert list(rows[0])[-2:] == ["tp-size", "schedule-policy"]
    assert {key: rows[0][key] for key in ("status", "score", "throughput_tokens_per_s", "latency_p50_s")} == {
        "status": "succeeded",
        "score": "300",
        "throughput_tokens_per_s": "300",
        "latency_p50_s": "2",
    }
    assert (rows[0]["ttft_p90_ms"], rows[0]["e2e_p99_s"], rows[0]["success_rate"]) == ("120", "4.5", "1")
    assert (rows[1]["tp-size"], rows[1]["schedule-policy"]) == ("1", "lpm")
    assert (rows[1]["score"], rows[1]["slo_violation"]) == ("", VIOLATION)
    assert rows[2]["error"] == "engine exited with code 1 before it was ready"


def test_the_json_download_has_the_best_the_pareto_front_and_every_experiment(signed_in, finished):
    response = signed_in.get(f"/tasks/{finished.pk}/results.json")

    assert response.status_code == 200
    assert 'filename="results-llama-sweep.json"' in response["Content-Disposition"]
    document = json.loads(response.content)
    assert document["best"]["number"] == 1
    assert document["best"]["parameters"] == PLAN_ORDER[0]
    assert document["pareto_front"] == [4, 1]
    assert [experiment["number"] for experiment in document["experiments"]] == [1, 2, 3, 4]
    assert document["experiments"][1]["slo_violation"] == VIOLATION


def test_the_results_link_both_downloads_and_the_task_page_links_the_results_page(signed_in, finished):
    document = page(signed_in.get(finished.get_absolute_url()))
    links = document.by_id("results").find_all("a")

    assert {link.attrs["href"] for link in links} >= {
        f"/tasks/{finished.pk}/results.csv",
        f"/tasks/{finished.pk}/results.json",
    }
    assert f"/tasks/{finished.pk}/results/" in {link.attrs.get("href") for link in document.find_all("a")}


@pytest.mark.parametrize("url", ["/tasks/{id}/results.xml", "/tasks/999/results.csv", "/tasks/999/results/"])
def test_unknown_results_addresses_are_404(signed_in, finished, url):
    assert signed_in.get(url.format(id=finished.pk)).status_code == 404


def test_anyone_signed_in_may_read_the_results(client, other_user, finished):
    client.force_login(other_user)

    assert client.get(f"/tasks/{finished.pk}/results/").status_code == 200
    assert client.get(f"/tasks/{finished.pk}/results.csv").status_code == 200


@pytest.mark.parametrize("url", ["/tasks/{id}/results/", "/tasks/{id}/results.json", "/tasks/{id}/progress/"])
def test_results_need_a_signed_in_user(client, finished, url):
    address = url.format(id=finished.pk)

    response = client.get(address)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={address}"


# Save an experiment as a preset


def test_saving_an_experiment_as_a_preset_keeps_exactly_its_values(signed_in, user, finished):
    response = signed_in.post(f"/tasks/{finished.pk}/experiments/4/save-preset/")

    preset = ParameterPreset.objects.get(name="Llama sweep #4 (config)")
    assert response.status_code == 302
    assert response["Location"] == preset.get_absolute_url()
    assert preset.parameters == {"tp-size": [2], "schedule-policy": ["lpm"]}
    assert preset.metadata["source_task"] == finished.pk
    assert preset.metadata["source_experiment"] == 4
    assert preset.runtime == "sglang"
    assert preset.created_by == user
    assert not preset.is_system
    assert flashed_after(signed_in, response) == [
        "Saved experiment 4's configuration as the preset “Llama sweep #4 (config)”."
    ]


def test_saving_the_same_experiment_twice_makes_a_second_preset(signed_in, finished):
    signed_in.post(f"/tasks/{finished.pk}/experiments/1/save-preset/")
    signed_in.post(f"/tasks/{finished.pk}/experiments/1/save-preset/")

    assert ParameterPreset.objects.filter(name__startswith="Llama sweep #1 (config").count() == 2


@pytest.mark.parametrize("url", ["/tasks/{id}/experiments/9/save-preset/", "/tasks/999/experiments/1/save-preset/"])
def test_saving_an_unknown_experiment_is_404(signed_in, finished, url):
    count = ParameterPreset.objects.count()

    assert signed_in.post(url.format(id=finished.pk)).status_code == 404
    assert ParameterPreset.objects.count() == count


def test_saving_an_experiment_is_a_post(signed_in, finished):
    count = ParameterPreset.objects.count()

    assert signed_in.get(f"/tasks/{finished.pk}/experiments/1/save-preset/").status_code == 405
    assert ParameterPreset.objects.count() == count


# Accessibility smoke check


@pytest.mark.parametrize("url", ["detail", "results", "restart", "progress"])
def test_run_pages_label_every_control_and_have_one_heading(signed_in, finished, url):
    address = {
        "detail": finished.get_absolute_url(),
        "results": f"/tasks/{finished.pk}/results/",
        "restart": action_url(finished, "restart"),
        "progress": progress_url(finished),
    }[url]

    response = signed_in.get(address)

    assert response.status_code == 200
    problems = accessibility_problems(response.content)
    if url == "progress":  # a fragment: its heading is the page's
        problems.remove("expected exactly one <h1>, found 0")
    assert problems == []


def test_a_running_task_page_stays_accessible(signed_in, running):
    response = signed_in.get(running.get_absolute_url())

    assert accessibility_problems(response.content) == []
    assert page(response).find("progress").attrs["aria-label"] == "Experiments finished"
