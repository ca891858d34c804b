"""Requests whose work grows with what they hold are capped where they are read, with a 400 that
names the limit, before anything is written: a file under the size limit holds tens of thousands
of presets or versions, each a write."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from presets.exchange import MAX_IMPORT_PRESETS, MAX_IMPORT_VERSIONS
from presets.models import ParameterPreset
from tests.html import parse

pytestmark = pytest.mark.django_db

GRID = {"tp-size": [1]}


def bundle(count: int) -> dict:
    return {"version": "1.0", "presets": [{"name": f"Bulk {number}", "parameters": GRID} for number in range(count)]}


def with_history(versions: int) -> dict:
    history = [
        {"version": number, "content": {"name": "Long", "parameters": GRID}} for number in range(1, versions + 1)
    ]
    return {"version": "1.0", "preset": {"name": "Long", "parameters": GRID, "history": history}}


@pytest.mark.parametrize(
    ("document", "path", "limit"),
    [
        pytest.param(bundle(MAX_IMPORT_PRESETS + 1), "presets", "at most 100 presets", id="presets"),
        pytest.param(with_history(MAX_IMPORT_VERSIONS + 1), "preset.history", "at most 1,000 versions", id="versions"),
    ],
)
def test_an_import_of_more_than_one_request_takes_is_refused_at_its_path(api, server_log, document, path, limit):
    response = api.post("/api/presets/import", json.dumps(document), content_type="application/json")

    assert response.status_code == 400
    assert [(error["path"], limit in error["message"]) for error in response.json()["errors"]] == [(path, True)]
    assert not ParameterPreset.objects.filter(name__in=["Bulk 0", "Long"]).exists()


def test_an_import_page_file_of_too_many_presets_is_refused_with_the_limit(signed_in, server_log):
    upload = SimpleUploadedFile("bulk.json", json.dumps(bundle(MAX_IMPORT_PRESETS + 1)).encode())

    response = signed_in.post("/presets/import/", {"file": upload, "on_conflict": "fail"})

    assert response.status_code == 422
    assert "at most 100 presets are imported at once" in response.content.decode()
    assert not ParameterPreset.objects.filter(name="Bulk 0").exists()


def test_an_import_of_as_many_as_the_limits_allow_is_taken(api):
    document = {**bundle(MAX_IMPORT_PRESETS - 1), "presets": [*bundle(MAX_IMPORT_PRESETS - 1)["presets"],
                with_history(MAX_IMPORT_VERSIONS)["preset"]]}  # fmt: skip

    response = api.post("/api/presets/import", json.dumps(document), content_type="application/json")

    assert response.status_code == 201
    assert ParameterPreset.objects.get(name="Long").revisions.count() == MAX_IMPORT_VERSIONS


# 2 flags of 1,000 values the validator refuses each: 2,000 problems.
REFUSED_GRID = {"flag-a": [None] * 1000, "flag-b": [None] * 1000}
MORE = "null is not allowed (and 1,900 more problems)"


PRESET = {"name": "Many", "parameters": REFUSED_GRID}
TASK = {**PRESET, "model": "m", "runtime": "sglang"}


@pytest.mark.parametrize(
    ("path", "body", "last"),
    [
        pytest.param("/api/presets/", PRESET, "parameters.flag-a[99]", id="preset"),
        pytest.param("/api/tasks/", TASK, "parameters.flag-a[99]", id="task"),
        pytest.param(
            "/api/presets/import", {"version": "1.0", "preset": PRESET}, "preset.parameters.flag-a[99]", id="import"
        ),
    ],
)
def test_an_api_answer_lists_the_first_100_problems_and_counts_the_rest(api, server_log, path, body, last):
    response = api.post(path, json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == 100
    assert errors[-1] == {"path": last, "message": MORE}


def test_a_form_shows_the_first_100_problems_of_its_grid_and_counts_the_rest(signed_in, server_log):
    response = signed_in.post("/presets/preview/", {"parameters": json.dumps(REFUSED_GRID)})

    shown = parse(response.content).find_all("li")
    assert len(shown) == 100
    assert shown[-1].text == f"flag-a[99]: {MORE}"


def test_the_import_page_shows_the_first_100_problems_and_counts_the_rest(signed_in, server_log):
    upload = SimpleUploadedFile("many.json", json.dumps({"version": "1.0", "preset": PRESET}).encode())

    response = signed_in.post("/presets/import/", {"file": upload, "on_conflict": "fail"})

    assert response.status_code == 422
    assert response.content.decode().count("null is not allowed") == 100
    assert MORE in response.content.decode()
