"""The run panel on the task page, and what a started task locks."""

from __future__ import annotations

import pytest

from tasks import lifecycle
from tasks.models import Task
from tasks.states import TaskStatus
from tests.tasks.runs import (
    action_url,
    flashed_after,
    in_status,
    page,
    run_actions,
)

pytestmark = pytest.mark.django_db


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


def test_a_draft_says_it_runs_the_baseline_first_and_measures_its_finalists_again(signed_in, draft):
    Task.objects.filter(pk=draft.pk).update(baseline=True, finalists=3, repeats=2)

    run = page(signed_in.get(draft.get_absolute_url())).by_id("run")

    assert (
        "Start runs 4 experiments on the workers (grid: every combination), after the baseline (the engine's "
        "defaults), then measures the best 3 again, 2 more times each." in " ".join(run.text.split())
    )
