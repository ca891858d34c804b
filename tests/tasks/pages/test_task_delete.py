"""Deleting a task."""

from __future__ import annotations

import pytest

from tasks.models import Task
from tasks.states import TaskStatus
from tests.tasks.pages.helpers import (
    HTMX,
    LIST,
    flashed,
    page,
)

pytestmark = pytest.mark.django_db


# Delete


def test_delete_asks_for_confirmation_first(signed_in, built_from_presets):
    response = signed_in.get(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Delete “Llama sweep”?"
    assert document.find("main").find("form").attrs["method"] == "post"
    assert Task.objects.filter(pk=built_from_presets.pk).exists()


def test_confirming_deletes_the_task_and_returns_to_the_list(signed_in, built_from_presets):
    response = signed_in.post(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert not Task.objects.filter(pk=built_from_presets.pk).exists()
    assert flashed(signed_in.get(LIST)) == ["Deleted task “Llama sweep”."]


def test_deleting_with_htmx_redirects_the_browser_to_the_list(signed_in, built_from_presets):
    response = signed_in.post(f"/tasks/{built_from_presets.pk}/delete/", headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == LIST
    assert not Task.objects.filter(pk=built_from_presets.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_user_cannot_delete_a_task(client, other_user, built_from_presets, method):
    client.force_login(other_user)

    response = getattr(client, method)(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 403
    assert Task.objects.filter(pk=built_from_presets.pk).exists()


def test_staff_may_delete_anyones_task(client, staff_user, built_from_presets):
    client.force_login(staff_user)

    client.post(f"/tasks/{built_from_presets.pk}/delete/")

    assert not Task.objects.filter(pk=built_from_presets.pk).exists()


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING])
def test_a_queued_or_running_task_is_not_deleted(signed_in, built_from_presets, status):
    Task.objects.filter(pk=built_from_presets.pk).update(status=status)

    response = signed_in.post(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{built_from_presets.pk}/"
    assert Task.objects.filter(pk=built_from_presets.pk).exists()
    assert flashed(signed_in.get(response["Location"])) == [
        f"“Llama sweep” is {status.label.lower()}; cancel it before deleting."
    ]
