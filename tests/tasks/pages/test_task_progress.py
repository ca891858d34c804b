"""The run panel fragment, polled while the task runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tasks import lifecycle
from tasks.models import Experiment
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.html import Element
from tests.tasks.runs import (
    EARLIER,
    HTMX,
    action_url,
    in_status,
    page,
    progress_url,
    row_numbers,
)

pytestmark = pytest.mark.django_db


# Progress, polled while the task runs


def test_the_progress_fragment_shows_which_experiment_runs_and_its_step(signed_in, running):
    response = signed_in.get(progress_url(running, "live=1"), headers=HTMX)

    assert response.status_code == 200
    document = page(response)
    [run, _] = [child for child in document.children if isinstance(child, Element)]
    assert run.attrs["id"] == "run"
    assert document.find("h1") is None
    assert "Experiment 3 of 4" in run.find("span", class_="progress-text").text
    assert run.find("span", class_="step").text == "· #3: benchmarking level 32"
    bar = run.find("progress")
    assert (bar.attrs["value"], bar.attrs["max"]) == ("2", "4")
    assert "HX-Refresh" not in response


def test_the_polled_fragment_brings_the_heading_s_status_badge_along(signed_in, running):
    opened = page(signed_in.get(running.get_absolute_url()))
    assert opened.find("h1").find("span", class_="status").attrs["id"] == "task-status"

    response = signed_in.get(progress_url(running, "live=1"), headers=HTMX)

    run, badge = [child for child in page(response).children if isinstance(child, Element)]
    assert (badge.attrs["id"], badge.attrs["hx-swap-oob"]) == ("task-status", "true")
    assert badge.text == run.find("p", class_="run-times").find("span", class_="status").text == "Running"
    assert badge.attrs["class"] == "status status-running"


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
    succeeded = {
        "status": ExperimentStatus.SUCCEEDED,
        "score": 1.0,
        "throughput": 1.0,
        "latency": 1.0,
        "started_at": EARLIER,
        "finished_at": timezone.now(),
    }
    lifecycle.start(draft, enqueue=False)
    in_status(draft, TaskStatus.RUNNING)
    Experiment.objects.filter(task=draft, number=1).update(**succeeded)  # a best, with its Save as preset
    with CaptureQueriesContext(connection) as few:
        signed_in.get(progress_url(draft), headers=HTMX)

    many = make_task(name="Wide", parameters={"max-running-requests": list(range(1, 41))}, created_by=draft.created_by)
    lifecycle.start(many, enqueue=False)
    in_status(many, TaskStatus.RUNNING)
    Experiment.objects.filter(task=many, number__lte=20).update(**succeeded)
    with CaptureQueriesContext(connection) as more:
        response = signed_in.get(progress_url(many), headers=HTMX)

    assert response.status_code == 200
    assert len(row_numbers(response)) == 40
    assert len(more) == len(few)
