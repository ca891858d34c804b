"""Formula strings are text: taken where text goes, stored as sent, and made inert in the one
download a spreadsheet opens (results.csv)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tasks.states import TaskStatus
from tests.hostile.cases import HYPERLINK
from tests.tasks.runs import in_status, make_experiment

pytestmark = pytest.mark.django_db

FORMULAS = [HYPERLINK, "@SUM(1)"]


@pytest.mark.parametrize("formula", FORMULAS, ids=["hyperlink", "at-sum"])
def test_a_formula_is_stored_as_text_and_written_inert_in_the_results_csv(api, formula):
    body = {"name": formula, "model": formula, "description": formula, "runtime": "sglang",
            "parameters": {"custom-note": [formula, "fcfs"]}}  # fmt: skip
    response = api.post("/api/tasks/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201
    task = Task.objects.get(pk=response.json()["id"])
    assert (task.name, task.model, task.description) == (formula, formula, formula)
    assert task.parameters["custom-note"][0] == formula
    make_experiment(in_status(task, TaskStatus.COMPLETED), 1, parameters={"custom-note": formula}, error=formula)

    rows = list(csv.reader(io.StringIO(api.get(f"/tasks/{task.pk}/results.csv").content.decode())))

    cells = [cell for row in rows for cell in row]
    assert f"'{formula}" in cells
    assert not [cell for cell in cells if cell.startswith(("=", "@"))]


@pytest.mark.parametrize("formula", FORMULAS, ids=["hyperlink", "at-sum"])
def test_a_formula_in_a_preset_is_exported_as_the_same_text(api, formula):
    body = {"name": formula, "description": formula, "parameters": {"custom-note": [formula]}}
    created = api.post("/api/presets/", json.dumps(body), content_type="application/json")
    assert created.status_code == 201
    preset = ParameterPreset.objects.get(pk=created.json()["id"])

    exported = api.get(f"/api/presets/{preset.pk}/export").json()["preset"]

    assert (exported["name"], exported["description"], exported["parameters"]) == (
        formula, formula, {"custom-note": [formula]})  # fmt: skip
