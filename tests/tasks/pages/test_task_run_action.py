"""Start, Cancel, Restart and Resume from the task page: without JavaScript (plain POSTs and
redirects) and with htmx; who may run a task."""

from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from tasks import lifecycle
from tasks.models import Experiment
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.tasks.runs import (
    HTMX,
    PLAN_ORDER,
    action_url,
    flashed_after,
    jobs,
    page,
    stored,
)

pytestmark = pytest.mark.django_db


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
