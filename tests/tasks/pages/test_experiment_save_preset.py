"""Saving an experiment's configuration as a preset, under a name the user chooses."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tests.factories import make_preset
from tests.tasks.pages.helpers import row_errors
from tests.tasks.runs import flashed_after, page

pytestmark = pytest.mark.django_db


def save_url(task, number: int) -> str:
    return f"/tasks/{task.pk}/experiments/{number}/save-preset/"


# The results card asks for the name


def test_the_best_card_asks_for_the_preset_s_name_with_a_suggestion(signed_in, finished):
    card = page(signed_in.get(finished.get_absolute_url())).find("div", class_="best-config")

    form = card.find("form", class_="save-preset")
    assert form.attrs["action"] == save_url(finished, 1)
    assert form.attrs["method"] == "post"
    name = form.find("input", name="name")
    assert name.attrs["value"] == "Llama sweep #1 (config)"
    assert form.find("label").attrs["for"] == name.attrs["id"]
    assert form.find("button", type="submit").text == "Save as preset"


def test_the_suggestion_is_a_name_nobody_has_taken(signed_in, user, finished):
    make_preset(name="Llama sweep #1 (config)", created_by=user)

    card = page(signed_in.get(finished.get_absolute_url())).find("div", class_="best-config")

    assert card.find("input", name="name").attrs["value"] == "Llama sweep #1 (config 2)"


# Saving


def test_saving_an_experiment_as_a_preset_keeps_exactly_its_values_under_the_name_given(signed_in, user, finished):
    response = signed_in.post(save_url(finished, 4), {"name": "  Fast TP2 on LPM "})

    preset = ParameterPreset.objects.get(name="Fast TP2 on LPM")
    assert response.status_code == 302
    assert response["Location"] == preset.get_absolute_url()
    assert preset.parameters == {"tp-size": [2], "schedule-policy": ["lpm"]}
    assert preset.metadata["source_task"] == finished.pk
    assert preset.metadata["source_experiment"] == 4
    assert preset.runtime == "sglang"
    assert preset.created_by == user
    assert not preset.is_system
    assert flashed_after(signed_in, response) == ["Saved experiment 4's configuration as the preset “Fast TP2 on LPM”."]


def test_a_taken_name_gives_the_form_back_with_the_error_and_saves_nothing(signed_in, user, finished):
    make_preset(name="Fast", created_by=user)
    count = ParameterPreset.objects.count()

    response = signed_in.post(save_url(finished, 1), {"name": "fast"})

    assert response.status_code == 422
    assert row_errors(response, "name") == ['A preset named "Fast" already exists.']
    assert page(response).find("input", name="name").attrs["value"] == "fast"
    assert ParameterPreset.objects.count() == count


def test_a_blank_name_gives_the_form_back(signed_in, finished):
    count = ParameterPreset.objects.count()

    response = signed_in.post(save_url(finished, 1), {"name": " "})

    assert response.status_code == 422
    assert row_errors(response, "name") == ["This field is required."]
    assert ParameterPreset.objects.count() == count


def test_the_save_page_opened_directly_asks_for_the_name_with_the_suggestion(signed_in, finished):
    response = signed_in.get(save_url(finished, 4))

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Save experiment 4 as a preset"
    assert document.find("input", name="name").attrs["value"] == "Llama sweep #4 (config)"
    assert ParameterPreset.objects.filter(name__startswith="Llama sweep").count() == 0


@pytest.mark.parametrize("url", ["/tasks/{id}/experiments/9/save-preset/", "/tasks/999/experiments/1/save-preset/"])
def test_saving_an_unknown_experiment_is_404(signed_in, finished, url):
    count = ParameterPreset.objects.count()

    assert signed_in.post(url.format(id=finished.pk), {"name": "Anything"}).status_code == 404
    assert signed_in.get(url.format(id=finished.pk)).status_code == 404
    assert ParameterPreset.objects.count() == count
