"""Duplicating a task."""

from __future__ import annotations

import pytest

from tasks.models import Task
from tasks.states import TaskStatus
from tests.tasks.pages.helpers import (
    flashed,
)

pytestmark = pytest.mark.django_db


# Duplicate


def test_duplicate_creates_a_draft_copy_and_opens_it(signed_in, user, built_from_presets):
    Task.objects.filter(pk=built_from_presets.pk).update(status=TaskStatus.COMPLETED)

    response = signed_in.post(f"/tasks/{built_from_presets.pk}/duplicate/")

    copy = Task.objects.get(name="Llama sweep (copy)")
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{copy.pk}/"
    assert copy.status == TaskStatus.DRAFT
    assert copy.created_by == user
    assert copy.parameters == built_from_presets.parameters
    assert copy.applied_presets == built_from_presets.applied_presets
    assert copy.merge_strategy == "last_wins"
    assert flashed(signed_in.get(response["Location"])) == ["Created “Llama sweep (copy)”, a draft copy."]
    built_from_presets.refresh_from_db()
    assert built_from_presets.status == TaskStatus.COMPLETED


def test_anyone_signed_in_may_duplicate_a_task_and_owns_the_copy(client, other_user, built_from_presets):
    client.force_login(other_user)

    client.post(f"/tasks/{built_from_presets.pk}/duplicate/")
    client.post(f"/tasks/{built_from_presets.pk}/duplicate/")

    copies = Task.objects.exclude(pk=built_from_presets.pk).order_by("pk")
    assert [(copy.name, copy.created_by) for copy in copies] == [
        ("Llama sweep (copy)", other_user),
        ("Llama sweep (copy 2)", other_user),
    ]


def test_duplicate_is_a_post(signed_in, built_from_presets):
    response = signed_in.get(f"/tasks/{built_from_presets.pk}/duplicate/")

    assert response.status_code == 405
    assert Task.objects.count() == 1
