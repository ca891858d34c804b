"""The presets API's single-preset endpoints: get, create, update, delete, duplicate, and their errors."""

from __future__ import annotations

from datetime import datetime

import pytest
from rest_framework.test import APIClient

from autotuner.http import JSONRenderer
from presets.models import ParameterPreset
from tests.factories import make_preset
from tests.html import parse

pytestmark = pytest.mark.django_db

FIELDS = {
    "version",
    "id",
    "name",
    "description",
    "category",
    "runtime",
    "is_system",
    "parameters",
    "metadata",
    "created_at",
    "updated_at",
}


def detail_url(preset: ParameterPreset | int | str) -> str:
    return f"/api/presets/{getattr(preset, 'pk', preset)}"


def error_paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


def assert_error_shape(response) -> None:
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"detail", "errors"}
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"}


@pytest.fixture
def own_preset(user) -> ParameterPreset:
    return make_preset(
        name="My grid",
        description="Two GPUs at most",
        category="custom",
        runtime="vllm",
        parameters={"tp-size": [1, 2]},
        metadata={"author": "ada"},
        created_by=user,
    )


# Get one


def test_get_one_answers_exactly_the_documented_fields(api, own_preset):
    response = api.get(detail_url(own_preset))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS
    assert body == {
        "id": own_preset.pk,
        "name": "My grid",
        "description": "Two GPUs at most",
        "category": "custom",
        "runtime": "vllm",
        "is_system": False,
        "parameters": {"tp-size": [1, 2]},
        "metadata": {"author": "ada"},
        "version": 1,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


@pytest.mark.parametrize("field", ["created_at", "updated_at"])
def test_timestamps_are_iso_8601_with_a_timezone(api, own_preset, field):
    text = api.get(detail_url(own_preset)).json()[field]

    assert text.endswith(("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    assert parsed.tzinfo is not None
    assert parsed == getattr(own_preset, field)


def test_an_any_engine_preset_shows_runtime_null(api):
    preset = make_preset(runtime="")

    assert api.get(detail_url(preset)).json()["runtime"] is None


def test_get_one_returns_an_etag(api, own_preset):
    response = api.get(detail_url(own_preset))

    assert response.headers["ETag"].startswith('"')
    assert response.headers["ETag"].endswith('"')


def test_the_etag_changes_when_the_preset_changes(api, own_preset):
    before = api.get(detail_url(own_preset)).headers["ETag"]
    api.patch(detail_url(own_preset), {"description": "Changed"}, format="json")

    assert api.get(detail_url(own_preset)).headers["ETag"] != before


def test_a_system_preset_is_readable_by_any_user(api, system_presets):
    response = api.get(detail_url(system_presets["Balanced"]))

    assert response.status_code == 200
    assert response.json()["is_system"] is True
    assert response.json()["parameters"] == {
        "tp-size": [1, 2],
        "mem-fraction-static": [0.85],
        "schedule-policy": ["fcfs", "lpm"],
    }


def test_another_users_preset_is_readable(api, other_user):
    preset = make_preset(name="Grace's grid", created_by=other_user)

    response = api.get(detail_url(preset))

    assert response.status_code == 200
    assert response.json()["name"] == "Grace's grid"


# Unknown ids

UNKNOWN_ID_REQUESTS = [
    pytest.param("get", "", id="get"),
    pytest.param("put", "", id="put"),
    pytest.param("patch", "", id="patch"),
    pytest.param("delete", "", id="delete"),
    pytest.param("post", "/duplicate", id="duplicate"),
    pytest.param("get", "/export", id="export"),
]


@pytest.mark.parametrize(("method", "suffix"), UNKNOWN_ID_REQUESTS)
@pytest.mark.parametrize("raw_id", ["999", "abc"], ids=["numeric", "not-numeric"])
def test_an_unknown_id_answers_404_naming_it(api, method, suffix, raw_id):
    body = {"name": "Renamed", "parameters": {"tp-size": [1]}}

    response = getattr(api, method)(f"/api/presets/{raw_id}{suffix}", body, format="json")

    assert response.status_code == 404
    assert response.json()["detail"] == f"Preset {raw_id} not found"
    assert_error_shape(response)


@pytest.mark.parametrize("raw_id", ["9999999999999999999", "99999999999999999999999999", "-1", "1.5", "0x1"])
def test_an_id_no_preset_can_have_answers_404(api, raw_id):
    response = api.get(f"/api/presets/{raw_id}")

    assert response.status_code == 404
    assert response.json()["detail"] == f"Preset {raw_id} not found"


# Create


def test_create_answers_201_with_the_full_object(api, user):
    response = api.post(
        "/api/presets/",
        {
            "name": "My grid",
            "description": "For two GPUs",
            "category": "custom",
            "runtime": "sglang",
            "parameters": {"tp-size": [1, 2], "schedule-policy": ["fcfs"]},
            "metadata": {"tags": ["mine"]},
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    preset = ParameterPreset.objects.get(pk=body["id"])
    assert body["name"] == preset.name == "My grid"
    assert body["description"] == preset.description == "For two GPUs"
    assert body["category"] == preset.category == "custom"
    assert body["runtime"] == preset.runtime == "sglang"
    assert body["parameters"] == preset.parameters == {"tp-size": [1, 2], "schedule-policy": ["fcfs"]}
    assert body["metadata"] == preset.metadata == {"tags": ["mine"]}
    assert body["is_system"] is False
    assert preset.created_by == user


def test_create_needs_only_a_name_and_parameters(api):
    response = api.post("/api/presets/", {"name": "Bare", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["description"] == ""
    assert body["category"] == ""
    assert body["runtime"] is None
    assert body["metadata"] == {}
    assert ParameterPreset.objects.get(pk=body["id"]).runtime == ""


@pytest.mark.parametrize("is_system", [True, "true", 1], ids=["true", "string", "one"])
def test_create_ignores_is_system_in_the_body(api, is_system):
    response = api.post(
        "/api/presets/", {"name": "Sneaky", "parameters": {"tp-size": [1]}, "is_system": is_system}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["is_system"] is False
    assert ParameterPreset.objects.get(name="Sneaky").is_system is False


def test_create_ignores_read_only_fields_in_the_body(api):
    response = api.post(
        "/api/presets/",
        {"id": 4242, "name": "Mine", "parameters": {"tp-size": [1]}, "created_at": "2000-01-01T00:00:00Z"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["id"] != 4242
    assert not response.json()["created_at"].startswith("2000")


def test_create_stores_the_name_trimmed_and_flags_normalised(api):
    response = api.post(
        "/api/presets/", {"name": "  Spaced  ", "parameters": {"--tp_size": [1, 1.0, 2]}}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["name"] == "Spaced"
    assert response.json()["parameters"] == {"tp-size": [1, 2]}


def test_create_with_a_unicode_name_works(api):
    response = api.post("/api/presets/", {"name": "Größe 日本語", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201
    assert ParameterPreset.objects.get(pk=response.json()["id"]).name == "Größe 日本語"


INVALID_CREATE_BODIES = [
    pytest.param({"parameters": {"tp-size": [1]}}, ["name"], id="no-name"),
    pytest.param({"name": "   ", "parameters": {"tp-size": [1]}}, ["name"], id="blank-name"),
    pytest.param({"name": 42, "parameters": {"tp-size": [1]}}, ["name"], id="number-name"),
    pytest.param({"name": "x" * 256, "parameters": {"tp-size": [1]}}, ["name"], id="long-name"),
    pytest.param({"name": "a\x00b", "parameters": {"tp-size": [1]}}, ["name"], id="nul-in-name"),
    pytest.param({"name": "Grid"}, ["parameters"], id="no-parameters"),
    pytest.param({"name": "Grid", "parameters": {}}, ["parameters"], id="empty-parameters"),
    pytest.param({"name": "Grid", "parameters": [1, 2]}, ["parameters"], id="list-parameters"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": []}}, ["parameters.tp-size"], id="empty-values"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": [[1]]}}, ["parameters.tp-size[0]"], id="nested-list"),
    pytest.param({"name": "Grid", "parameters": {"Bad Flag": [1]}}, ["parameters.Bad Flag"], id="bad-flag-name"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": [10**30]}}, ["parameters.tp-size[0]"], id="huge-int"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": [1]}, "runtime": "tensorrt"}, ["runtime"], id="runtime"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": [1]}, "category": ["a"]}, ["category"], id="category"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": [1]}, "description": 3}, ["description"], id="desc"),
    pytest.param({"name": "Grid", "parameters": {"tp-size": [1]}, "metadata": [1]}, ["metadata"], id="metadata"),
]


@pytest.mark.parametrize(("body", "paths"), INVALID_CREATE_BODIES)
def test_create_refuses_invalid_input_with_the_path_of_the_problem(api, body, paths):
    response = api.post("/api/presets/", body, format="json")

    assert response.status_code == 400
    assert_error_shape(response)
    assert error_paths(response) == paths
    assert not ParameterPreset.objects.exists()


def test_a_null_value_is_reported_at_its_index(api):
    response = api.post("/api/presets/", {"name": "Grid", "parameters": {"tp-size": [1, None]}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "parameters.tp-size[1]", "message": "null is not allowed"}]


def test_create_lists_every_problem_at_once(api):
    response = api.post(
        "/api/presets/",
        {"name": "", "parameters": {"tp-size": [None, 1, None], "Bad Flag": [1], "mem": []}, "runtime": "x"},
        format="json",
    )

    assert response.status_code == 400
    assert sorted(error_paths(response)) == sorted(
        ["name", "parameters.tp-size[0]", "parameters.tp-size[2]", "parameters.Bad Flag", "parameters.mem", "runtime"]
    )
    assert response.json()["detail"] == "6 problems; see errors"


@pytest.mark.parametrize("name", ["Balanced", "balanced ", "  BALANCED", "bAlAnCeD"])
def test_create_refuses_a_name_taken_ignoring_case_and_spaces(api, system_presets, name):
    response = api.post("/api/presets/", {"name": name, "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 409
    assert_error_shape(response)
    balanced = system_presets["Balanced"]
    assert response.json()["detail"] == f'A preset named "Balanced" already exists (id {balanced.pk}).'
    assert error_paths(response) == ["name"]
    assert ParameterPreset.objects.count() == len(system_presets)


# Update


def test_put_replaces_every_field(api, own_preset):
    response = api.put(
        detail_url(own_preset),
        {"name": "Replaced", "parameters": {"schedule-policy": ["lpm"]}, "category": "memory"},
        format="json",
    )

    assert response.status_code == 200
    own_preset.refresh_from_db()
    assert own_preset.name == "Replaced"
    assert own_preset.parameters == {"schedule-policy": ["lpm"]}
    assert own_preset.category == "memory"
    assert own_preset.description == ""
    assert own_preset.runtime == ""
    assert own_preset.metadata == {}
    assert response.json() == api.get(detail_url(own_preset)).json()


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        pytest.param({"name": "Only a name"}, ["parameters"], id="no-parameters"),
        pytest.param({"parameters": {"tp-size": [1]}}, ["name"], id="no-name"),
        pytest.param({}, ["name", "parameters"], id="empty"),
    ],
)
def test_put_needs_every_required_field(api, own_preset, body, paths):
    response = api.put(detail_url(own_preset), body, format="json")

    assert response.status_code == 400
    assert error_paths(response) == paths
    own_preset.refresh_from_db()
    assert own_preset.name == "My grid"


def test_patch_changes_only_the_fields_sent(api, own_preset):
    response = api.patch(detail_url(own_preset), {"name": "Renamed"}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    own_preset.refresh_from_db()
    assert own_preset.name == "Renamed"
    assert own_preset.description == "Two GPUs at most"
    assert own_preset.runtime == "vllm"
    assert own_preset.parameters == {"tp-size": [1, 2]}
    assert own_preset.metadata == {"author": "ada"}


def test_patch_with_runtime_null_makes_the_preset_any_engine(api, own_preset):
    response = api.patch(detail_url(own_preset), {"runtime": None}, format="json")

    assert response.status_code == 200
    assert response.json()["runtime"] is None
    own_preset.refresh_from_db()
    assert own_preset.runtime == ""


@pytest.mark.parametrize("runtime", ["sglang", "vllm"])
def test_patch_can_give_an_any_engine_preset_a_runtime(api, user, runtime):
    preset = make_preset(runtime="", created_by=user)

    response = api.patch(detail_url(preset), {"runtime": runtime}, format="json")

    assert response.status_code == 200
    assert response.json()["runtime"] == runtime
    preset.refresh_from_db()
    assert preset.runtime == runtime


@pytest.mark.parametrize("cleared", [None, ""], ids=["null", "empty"])
def test_patch_can_clear_the_description(api, own_preset, cleared):
    response = api.patch(detail_url(own_preset), {"description": cleared}, format="json")

    assert response.status_code == 200
    assert response.json()["description"] == ""
    own_preset.refresh_from_db()
    assert own_preset.description == ""


def test_patch_replaces_parameters_wholesale(api, own_preset):
    response = api.patch(detail_url(own_preset), {"parameters": {"schedule-policy": ["lpm"]}}, format="json")

    assert response.status_code == 200
    own_preset.refresh_from_db()
    assert own_preset.parameters == {"schedule-policy": ["lpm"]}


def test_patch_refuses_invalid_parameters_and_changes_nothing(api, own_preset):
    response = api.patch(
        detail_url(own_preset), {"name": "Renamed", "parameters": {"tp-size": [1, None]}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "parameters.tp-size[1]", "message": "null is not allowed"}]
    own_preset.refresh_from_db()
    assert own_preset.name == "My grid"
    assert own_preset.parameters == {"tp-size": [1, 2]}


@pytest.mark.parametrize("name", ["Balanced", "balanced ", " BALANCED "])
def test_patch_refuses_renaming_to_a_taken_name(api, own_preset, system_presets, name):
    response = api.patch(detail_url(own_preset), {"name": name}, format="json")

    assert response.status_code == 409
    assert "Balanced" in response.json()["detail"]
    assert str(system_presets["Balanced"].pk) in response.json()["detail"]
    own_preset.refresh_from_db()
    assert own_preset.name == "My grid"


def test_put_refuses_renaming_to_a_taken_name(api, own_preset, system_presets):
    response = api.put(detail_url(own_preset), {"name": "balanced", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 409
    own_preset.refresh_from_db()
    assert own_preset.name == "My grid"


def test_patch_may_change_only_the_case_of_the_presets_own_name(api, own_preset):
    response = api.patch(detail_url(own_preset), {"name": "MY GRID"}, format="json")

    assert response.status_code == 200
    own_preset.refresh_from_db()
    assert own_preset.name == "MY GRID"


def test_patch_ignores_is_system(api, own_preset):
    response = api.patch(detail_url(own_preset), {"is_system": True}, format="json")

    assert response.status_code == 200
    own_preset.refresh_from_db()
    assert own_preset.is_system is False


# Delete


def test_delete_answers_204_and_removes_the_preset(api, own_preset):
    response = api.delete(detail_url(own_preset))

    assert response.status_code == 204
    assert not response.content
    assert not ParameterPreset.objects.filter(pk=own_preset.pk).exists()
    assert api.get(detail_url(own_preset)).status_code == 404


# Duplicate


def test_duplicate_makes_a_user_copy_of_a_system_preset(api, user, system_presets):
    balanced = system_presets["Balanced"]

    response = api.post(f"{detail_url(balanced)}/duplicate")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS
    assert body["name"] == "Balanced (copy)"
    assert body["is_system"] is False
    assert body["id"] != balanced.pk
    copy = ParameterPreset.objects.get(pk=body["id"])
    assert copy.created_by == user
    assert copy.parameters == balanced.parameters
    assert copy.runtime == balanced.runtime
    assert copy.metadata == balanced.metadata
    assert copy.description == balanced.description
    assert copy.category == balanced.category


def test_duplicating_again_numbers_the_copies(api, system_presets):
    url = f"{detail_url(system_presets['Balanced'])}/duplicate"

    names = [api.post(url).json()["name"] for _ in range(3)]

    assert names == ["Balanced (copy)", "Balanced (copy 2)", "Balanced (copy 3)"]


def test_the_copy_of_a_system_preset_can_be_edited_by_whoever_duplicated_it(api, system_presets):
    copy = api.post(f"{detail_url(system_presets['Balanced'])}/duplicate").json()

    response = api.patch(detail_url(copy["id"]), {"parameters": {"tp-size": [8]}}, format="json")

    assert response.status_code == 200
    assert response.json()["parameters"] == {"tp-size": [8]}


def test_another_users_preset_can_be_duplicated(api, user, other_user):
    theirs = make_preset(name="Grace's grid", created_by=other_user)

    response = api.post(f"{detail_url(theirs)}/duplicate")

    assert response.status_code == 201
    assert response.json()["name"] == "Grace's grid (copy)"
    assert ParameterPreset.objects.get(pk=response.json()["id"]).created_by == user


# Every path answers with and without its trailing slash, never with a redirect


@pytest.mark.parametrize("slash", ["", "/"], ids=["without-slash", "with-slash"])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("get", "/api/presets", 200, id="list"),
        pytest.param("get", "/api/presets/{id}", 200, id="get"),
        pytest.param("patch", "/api/presets/{id}", 200, id="patch"),
        pytest.param("put", "/api/presets/{id}", 200, id="put"),
        pytest.param("post", "/api/presets/{id}/duplicate", 201, id="duplicate"),
        pytest.param("get", "/api/presets/{id}/export", 200, id="export"),
        pytest.param("get", "/api/presets/export", 200, id="bundle-export"),
        pytest.param("delete", "/api/presets/{id}", 204, id="delete"),
    ],
)
def test_every_path_answers_with_and_without_a_trailing_slash(api, own_preset, method, path, status, slash):
    body = {"name": "My grid", "parameters": {"tp-size": [4]}}

    response = getattr(api, method)(path.format(id=own_preset.pk) + slash, body, format="json")

    assert response.status_code == status


@pytest.mark.parametrize("slash", ["", "/"], ids=["without-slash", "with-slash"])
def test_create_answers_with_and_without_a_trailing_slash(api, slash):
    response = api.post("/api/presets" + slash, {"name": "Slash", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201


@pytest.mark.parametrize("slash", ["", "/"], ids=["without-slash", "with-slash"])
def test_merge_and_import_answer_with_and_without_a_trailing_slash(api, own_preset, slash):
    merged = api.post("/api/presets/merge" + slash, {"preset_ids": [own_preset.pk]}, format="json")
    imported = api.post(
        "/api/presets/import" + slash,
        {"version": "1.0", "preset": {"name": "Imported", "parameters": {"tp-size": [1]}}},
        format="json",
    )

    assert merged.status_code == 200
    assert imported.status_code == 201


# Every error has one shape: {"detail": "...", "errors": [{"path": "...", "message": "..."}]}

ERRORS = [
    pytest.param(
        lambda api, preset: api.post("/api/presets/", {"name": ""}, format="json"), 400, True, id="400-validation"
    ),
    pytest.param(
        lambda api, preset: api.post("/api/presets/", "{", content_type="application/json"), 400, False, id="400-json"
    ),
    pytest.param(lambda api, preset: APIClient().get("/api/presets/"), 401, False, id="401"),
    pytest.param(
        lambda api, preset: api.delete(detail_url(ParameterPreset.objects.get(name="Balanced"))), 403, False, id="403"
    ),
    pytest.param(lambda api, preset: api.get("/api/presets/999"), 404, False, id="404"),
    pytest.param(
        lambda api, preset: api.post("/api/presets/merge", {"preset_ids": [999]}, format="json"),
        404,
        True,
        id="404-merge",
    ),
    pytest.param(
        lambda api, preset: api.patch(detail_url(preset), {"name": "balanced"}, format="json"), 409, True, id="409"
    ),
    pytest.param(lambda api, preset: api.delete(detail_url(preset), HTTP_IF_MATCH='"stale"'), 412, False, id="412"),
    pytest.param(
        lambda api, preset: api.post("/api/presets/import", "x" * (1024 * 1024 + 1), content_type="application/json"),
        413,
        False,
        id="413",
    ),
    pytest.param(
        lambda api, preset: api.post("/api/presets/", "name=x", content_type="text/plain"), 415, False, id="415"
    ),
]


@pytest.mark.parametrize(("provoke", "status", "lists_problems"), ERRORS)
def test_every_error_is_json_with_a_detail_and_its_problems(
    api, own_preset, system_presets, provoke, status, lists_problems
):
    response = provoke(api, own_preset)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert_error_shape(response)
    if lists_problems:
        assert response.json()["errors"]
        for error in response.json()["errors"]:
            assert isinstance(error["path"], str)
            assert isinstance(error["message"], str)
            assert error["message"]


# The browsable API: JSON indented for people (DRF asks the renderer for an indent there)

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def shown_json(response) -> str:
    """The answer's JSON as the browsable page shows it, after the status and headers."""
    text = parse(response.content).find("div", class_="response-info").find("pre").raw_text
    return text[text.index("\n\n") :].strip()


@pytest.mark.parametrize(
    ("url", "start"),
    [
        ("/api/presets/", '[\n  {\n    "id": '),
        ("own", '{\n  "id": '),
        ("/api/presets/999999", '{\n  "detail": "Preset 999999 not found"'),
    ],
    ids=["list", "one", "error"],
)
def test_the_browsable_api_page_shows_the_json_indented(client, user, own_preset, url, start):
    client.force_login(user)

    response = client.get(detail_url(own_preset) if url == "own" else url, headers=BROWSER)

    assert response["Content-Type"].startswith("text/html")
    assert shown_json(response).startswith(start)


def test_the_renderers_fallback_indents_too():
    # Over 64 bits: orjson cannot write it, the standard library can.
    written = JSONRenderer().render({"big": [2**70]}, "application/json; indent=4")

    assert written.decode() == '{\n  "big": [\n    1180591620717411303424\n  ]\n}'
