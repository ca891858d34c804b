"""Requests whose work grows with what they hold are capped where they are read, with a 400 that
names the limit, before anything is written: a file under the size limit holds tens of thousands
of presets or versions, each a write."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from presets.exchange import MAX_IMPORT_PRESETS, MAX_IMPORT_VERSIONS
from presets.models import ParameterPreset

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
