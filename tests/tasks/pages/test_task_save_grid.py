"""Saving a task's grid as a preset, and the actions' addresses."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tests.tasks.pages.helpers import (
    HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
    flashed,
)

pytestmark = pytest.mark.django_db


# Save grid as preset


def test_save_grid_as_preset_creates_a_user_preset_with_the_grid_and_runtime(signed_in, user, built_from_presets):
    response = signed_in.post(f"/tasks/{built_from_presets.pk}/save-grid/")

    preset = ParameterPreset.objects.get(name="Llama sweep (grid)")
    assert response.status_code == 302
    assert response["Location"] == f"/presets/{preset.pk}/"
    assert preset.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert preset.runtime == "sglang"
    assert preset.is_system is False
    assert preset.created_by == user
    assert flashed(signed_in.get(response["Location"])) == ["Saved the grid as the preset “Llama sweep (grid)”."]


def test_anyone_signed_in_may_save_a_tasks_grid_as_their_preset(client, other_user, built_from_presets):
    client.force_login(other_user)

    client.post(f"/tasks/{built_from_presets.pk}/save-grid/")

    assert ParameterPreset.objects.get(name="Llama sweep (grid)").created_by == other_user


def test_save_grid_is_a_post(signed_in, built_from_presets, system_presets):
    response = signed_in.get(f"/tasks/{built_from_presets.pk}/save-grid/")

    assert response.status_code == 405
    assert ParameterPreset.objects.count() == len(system_presets)


@pytest.mark.parametrize("action", ["duplicate", "delete", "save-grid"])
def test_actions_on_a_missing_task_are_404(signed_in, action):
    assert signed_in.post(f"/tasks/999/{action}/").status_code == 404


@pytest.mark.parametrize("action", ["duplicate", "delete", "save-grid", "edit"])
def test_actions_need_a_signed_in_user(client, built_from_presets, action):
    url = f"/tasks/{built_from_presets.pk}/{action}/"

    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"
    assert Task.objects.count() == 1
