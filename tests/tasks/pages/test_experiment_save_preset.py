"""Saving an experiment's configuration as a preset."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tests.tasks.runs import (
    flashed_after,
)

pytestmark = pytest.mark.django_db


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
