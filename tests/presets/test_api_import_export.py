"""Export to and import from the preset exchange format: /api/presets/import, …/export, /api/presets/export."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from presets.models import ParameterPreset
from tests.factories import make_preset, system_preset_names

pytestmark = pytest.mark.django_db

IMPORT = "/api/presets/import"
MiB = 1024 * 1024
CONTENT_FIELDS = {"name", "description", "category", "runtime", "parameters", "metadata"}
PRESET_FIELDS = {
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


def document(**preset) -> dict:
    """A one-preset document; ``name`` and ``parameters`` default to something valid."""
    return {"version": "1.0", "preset": {"name": "Imported", "parameters": {"tp-size": [1, 2]}, **preset}}


def bundle(*presets: dict) -> dict:
    return {"version": "1.0", "presets": list(presets)}


def upload(content: dict | bytes | str, name: str = "preset.json") -> SimpleUploadedFile:
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode()
    return SimpleUploadedFile(name, content, content_type="application/json")


def import_file(api: APIClient, content: dict | bytes | str, on_conflict: str | None = None):
    query = f"?on_conflict={on_conflict}" if on_conflict else ""
    return api.post(IMPORT + query, {"file": upload(content)}, format="multipart")


def import_body(api: APIClient, content: dict, on_conflict: str | None = None):
    query = f"?on_conflict={on_conflict}" if on_conflict else ""
    return api.post(IMPORT + query, content, format="json")


def error_paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


def disposition_filename_star(header: str) -> str:
    """The decoded ``filename*=UTF-8''…`` value of a Content-Disposition header."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename*":
            charset, _, encoded = value.partition("''")
            assert charset.lower() == "utf-8"
            return unquote(encoded)
    raise AssertionError(f"no filename* in {header!r}")


# Export one preset


def test_export_downloads_a_document_named_after_the_preset(api, system_presets):
    response = api.get(f"/api/presets/{system_presets['High Throughput'].pk}/export")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"] == 'attachment; filename="preset-high-throughput.json"'


def test_export_body_holds_the_version_and_the_presets_content(api, system_presets):
    body = json.loads(api.get(f"/api/presets/{system_presets['High Throughput'].pk}/export").content)

    assert set(body) == {"version", "preset"}
    assert body["version"] == "1.0"
    assert set(body["preset"]) == CONTENT_FIELDS
    assert body["preset"]["name"] == "High Throughput"
    assert body["preset"]["category"] == "performance"
    assert body["preset"]["runtime"] == "sglang"
    assert body["preset"]["parameters"] == {
        "tp-size": [2, 4],
        "mem-fraction-static": [0.9],
        "schedule-policy": ["fcfs"],
        "enable-mixed-chunk": [True],
    }
    assert body["preset"]["metadata"]["author"] == "system"


@pytest.mark.parametrize(
    ("name", "letters"),
    [pytest.param("Größe Ü", ["größe", "ü"], id="german"), pytest.param("Größe 日本語", ["日本語"], id="japanese")],
)
def test_export_of_a_non_ascii_name_also_sends_a_utf8_filename(api, user, name, letters):
    preset = make_preset(name=name, created_by=user)

    header = api.get(f"/api/presets/{preset.pk}/export")["Content-Disposition"]

    assert header.startswith("attachment;")
    assert 'filename="' in header
    filename = disposition_filename_star(header).lower()
    for letter in letters:
        assert letter in filename


def test_a_non_ascii_name_still_gets_an_ascii_filename(api, user):
    preset = make_preset(name="Größe Ü", created_by=user)

    header = api.get(f"/api/presets/{preset.pk}/export")["Content-Disposition"]

    assert header.startswith("attachment;")
    header.encode("ascii")
    assert "filename=" in header


def test_a_unicode_preset_exports_with_its_name_intact(api):
    created = api.post("/api/presets/", {"name": "Größe 日本語", "parameters": {"tp-size": [1]}}, format="json")

    response = api.get(f"/api/presets/{created.json()['id']}/export")

    assert response.status_code == 200
    assert json.loads(response.content.decode("utf-8"))["preset"]["name"] == "Größe 日本語"


# Export a bundle


def exported_names(response) -> list[str]:
    return [preset["name"] for preset in json.loads(response.content)["presets"]]


def test_the_bundle_export_holds_every_preset_by_default(api, system_presets):
    response = api.get("/api/presets/export")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    body = json.loads(response.content)
    assert set(body) == {"version", "presets"}
    assert body["version"] == "1.0"
    assert exported_names(response) == sorted(system_preset_names())  # by name, as the list
    for preset in body["presets"]:
        assert set(preset) == CONTENT_FIELDS


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("category=performance", id="category"),
        pytest.param("runtime=vllm", id="runtime"),
        pytest.param("runtime=any", id="any-engine"),
        pytest.param("is_system=false", id="user-made"),
        pytest.param("is_system=true", id="system"),
        pytest.param("search=LATENCY", id="search"),
        pytest.param("ordering=-name", id="ordering"),
        pytest.param("category=performance&ordering=-name", id="combined"),
    ],
)
def test_the_bundle_export_matches_the_lists_filters(api, system_presets, query):
    make_preset(name="Mine vLLM", runtime="vllm", category="performance")
    make_preset(name="Mine anywhere", runtime="")

    listed = [row["name"] for row in api.get(f"/api/presets/?{query}").json()]
    response = api.get(f"/api/presets/export?{query}")

    assert response.status_code == 200
    assert exported_names(response) == listed
    assert listed


def test_the_bundle_export_refuses_a_bad_filter(api, system_presets):
    response = api.get("/api/presets/export?runtime=tensorrt")

    assert response.status_code == 400
    assert error_paths(response) == ["runtime"]


def test_the_bundle_export_by_ids_keeps_their_order(api, system_presets):
    order = ["Low Latency", "Balanced", "Memory Efficient"]
    ids = ",".join(str(system_presets[name].pk) for name in order)

    response = api.get(f"/api/presets/export?ids={ids}")

    assert response.status_code == 200
    assert exported_names(response) == order


def test_the_bundle_export_by_ids_ignores_the_filters(api, system_presets):
    response = api.get(f"/api/presets/export?ids={system_presets['Balanced'].pk}&category=memory")

    assert exported_names(response) == ["Balanced"]


def test_unknown_ids_in_the_bundle_export_answer_404_naming_them(api, system_presets):
    response = api.get(f"/api/presets/export?ids={system_presets['Balanced'].pk},998,999")

    assert response.status_code == 404
    assert "998" in response.json()["detail"]
    assert "999" in response.json()["detail"]


@pytest.mark.parametrize(
    "ids",
    ["abc", "1,x", "1.5", "-1", ",", "1;2", "99999999999999999999"],
    ids=["text", "one-bad", "float", "negative", "only-comma", "semicolon", "huge"],
)
def test_bad_ids_in_the_bundle_export_answer_400(api, system_presets, ids):
    response = api.get(f"/api/presets/export?ids={ids}")

    assert response.status_code == 400
    assert error_paths(response) == ["ids"]


# Import: what is accepted


def test_import_of_an_uploaded_file_answers_201_with_the_preset(api, user):
    response = import_file(api, document(name="From a file", runtime="vllm", metadata={"tags": ["a"]}))

    assert response.status_code == 201
    body = response.json()
    assert set(body) == PRESET_FIELDS
    assert body["name"] == "From a file"
    assert body["runtime"] == "vllm"
    assert body["metadata"] == {"tags": ["a"]}
    assert body["is_system"] is False
    preset = ParameterPreset.objects.get(pk=body["id"])
    assert preset.parameters == {"tp-size": [1, 2]}
    assert preset.created_by == user


def test_import_of_a_json_body_answers_201_with_the_preset(api):
    response = import_body(api, document(name="From the body"))

    assert response.status_code == 201
    assert response.json()["name"] == "From the body"
    assert ParameterPreset.objects.filter(name="From the body").exists()


def test_import_of_a_bundle_answers_201_with_the_list(api):
    response = import_file(
        api,
        bundle(
            {"name": "First", "parameters": {"tp-size": [1]}},
            {"name": "Second", "parameters": {"tp-size": [2]}, "runtime": "sglang"},
        ),
    )

    assert response.status_code == 201
    body = response.json()
    assert [preset["name"] for preset in body] == ["First", "Second"]
    assert all(set(preset) == PRESET_FIELDS for preset in body)
    assert ParameterPreset.objects.count() == 2


def test_import_of_a_bundle_as_the_json_body(api):
    response = import_body(api, bundle({"name": "Only", "parameters": {"tp-size": [1]}}))

    assert response.status_code == 201
    assert [preset["name"] for preset in response.json()] == ["Only"]


@pytest.mark.parametrize("as_file", [True, False], ids=["file", "body"])
def test_an_imported_preset_is_never_a_system_preset(api, as_file):
    content = document(name="Pretender", is_system=True)

    response = import_file(api, content) if as_file else import_body(api, content)

    assert response.status_code == 201
    assert response.json()["is_system"] is False
    assert ParameterPreset.objects.get(name="Pretender").is_system is False


def test_a_bundle_entry_claiming_to_be_system_is_a_user_preset(api):
    response = import_file(api, bundle({"name": "Pretender", "parameters": {"a": [1]}, "is_system": True}))

    assert response.status_code == 201
    assert ParameterPreset.objects.get(name="Pretender").is_system is False


def test_a_version_1_x_document_is_read(api):
    response = import_file(api, {**document(), "version": "1.3"})

    assert response.status_code == 201


def test_a_file_of_exactly_1_mib_is_accepted(api):
    text = json.dumps(document(name="Padded"))
    padded = text[:-1] + " " * (MiB - len(text)) + "}"
    assert len(padded.encode()) == MiB

    response = import_file(api, padded)

    assert response.status_code == 201


# Import: name clashes


def test_a_taken_name_answers_409_and_creates_nothing(api, system_presets):
    response = import_file(api, document(name="balanced "))

    assert response.status_code == 409
    assert '"Balanced"' in response.json()["detail"]
    assert error_paths(response) == ["preset.name"]
    assert ParameterPreset.objects.count() == len(system_presets)


def test_on_conflict_fail_is_the_default(api, system_presets):
    assert import_file(api, document(name="Balanced"), "fail").status_code == 409
    assert ParameterPreset.objects.count() == len(system_presets)


def test_a_bundle_with_one_taken_name_creates_none_of_its_presets(api, system_presets):
    response = import_file(
        api,
        bundle({"name": "Fresh", "parameters": {"a": [1]}}, {"name": "Low Latency", "parameters": {"a": [1]}}),
    )

    assert response.status_code == 409
    assert error_paths(response) == ["presets[1].name"]
    assert not ParameterPreset.objects.filter(name="Fresh").exists()
    assert ParameterPreset.objects.count() == len(system_presets)


def test_rename_adds_imported_then_numbers(api, system_presets):
    names = [import_file(api, document(name="Balanced"), "rename").json()["name"] for _ in range(3)]

    assert names == ["Balanced (imported)", "Balanced (imported 2)", "Balanced (imported 3)"]
    balanced = ParameterPreset.objects.get(name="Balanced")
    assert balanced.is_system is True
    assert balanced.parameters == system_presets["Balanced"].parameters


def test_rename_in_a_bundle_renames_only_the_clashing_presets(api, system_presets):
    response = import_file(
        api,
        bundle({"name": "Fresh", "parameters": {"a": [1]}}, {"name": "Low Latency", "parameters": {"a": [1]}}),
        "rename",
    )

    assert response.status_code == 201
    assert [preset["name"] for preset in response.json()] == ["Fresh", "Low Latency (imported)"]


def test_replace_overwrites_the_users_own_preset_in_place(api, user):
    mine = make_preset(name="Mine", description="Old", parameters={"tp-size": [1]}, created_by=user)

    response = import_file(
        api,
        document(name="mine", description="New", runtime="vllm", parameters={"tp-size": [8]}, metadata={"v": 2}),
        "replace",
    )

    assert response.status_code == 201
    assert response.json()["id"] == mine.pk
    mine.refresh_from_db()
    assert mine.description == "New"
    assert mine.runtime == "vllm"
    assert mine.parameters == {"tp-size": [8]}
    assert mine.metadata == {"v": 2}
    assert ParameterPreset.objects.count() == 1


def test_replace_by_staff_overwrites_another_users_preset(staff_user, user):
    theirs = make_preset(name="Ada's", description="Old", created_by=user)
    client = APIClient()
    client.force_login(staff_user)

    response = import_file(client, document(name="Ada's", description="New"), "replace")

    assert response.status_code == 201
    assert response.json()["id"] == theirs.pk
    theirs.refresh_from_db()
    assert theirs.description == "New"


def test_replace_of_another_users_preset_answers_403(api, other_user):
    theirs = make_preset(name="Grace's", description="Theirs", created_by=other_user)

    response = import_file(api, document(name="Grace's", description="Mine now"), "replace")

    assert response.status_code == 403
    theirs.refresh_from_db()
    assert theirs.description == "Theirs"
    assert ParameterPreset.objects.count() == 1


@pytest.mark.parametrize("actor", ["user", "staff_user", "superuser"], ids=["user", "staff", "superuser"])
def test_replace_never_touches_a_system_preset(request, system_presets, actor):
    client = APIClient()
    client.force_login(request.getfixturevalue(actor))
    before = system_presets["Balanced"]

    response = import_file(client, document(name="Balanced", parameters={"tp-size": [64]}), "replace")

    assert response.status_code == 403
    after = ParameterPreset.objects.get(pk=before.pk)
    assert after.parameters == before.parameters
    assert after.is_system is True
    assert ParameterPreset.objects.count() == len(system_presets)


def test_replace_in_a_bundle_touching_a_system_preset_imports_nothing(api, system_presets):
    response = import_file(
        api,
        bundle({"name": "Fresh", "parameters": {"a": [1]}}, {"name": "Balanced", "parameters": {"a": [1]}}),
        "replace",
    )

    assert response.status_code == 403
    assert not ParameterPreset.objects.filter(name="Fresh").exists()


def test_replace_without_a_clash_simply_creates(api):
    response = import_file(api, document(name="New one"), "replace")

    assert response.status_code == 201
    assert ParameterPreset.objects.filter(name="New one").exists()


@pytest.mark.parametrize("on_conflict", ["bogus", "RENAME", ""], ids=["unknown", "upper-case", "empty"])
def test_an_unknown_on_conflict_answers_400(api, on_conflict):
    response = api.post(f"{IMPORT}?on_conflict={on_conflict}", {"file": upload(document())}, format="multipart")

    if on_conflict == "":
        assert response.status_code in (201, 400)
        return
    assert response.status_code == 400
    assert error_paths(response) == ["on_conflict"]
    assert not ParameterPreset.objects.exists()


# Import: invalid documents


@pytest.mark.parametrize("as_file", [True, False], ids=["file", "body"])
@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"version": "1.0",,}', id="double-comma"),
        pytest.param('{\n  "version": "1.0"\n  "preset": {}\n}', id="missing-comma-line-3"),
        pytest.param("not json", id="text"),
        pytest.param('{"version": "1.0"', id="truncated"),
    ],
)
def test_a_file_that_is_not_json_answers_400_with_line_and_column(api, text, as_file):
    response = import_file(api, text) if as_file else api.post(IMPORT, text, content_type="application/json")

    assert response.status_code == 400
    assert "line" in response.json()["detail"]
    assert "column" in response.json()["detail"]


def test_the_line_of_the_json_error_is_the_right_one(api):
    response = import_file(api, '{\n  "version": "1.0"\n  "preset": {}\n}')

    assert "line 3" in response.json()["detail"]


INVALID_DOCUMENTS = [
    pytest.param({"preset": {"name": "X", "parameters": {"a": [1]}}}, ["version"], id="no-version"),
    pytest.param({**document(), "version": "2.0"}, ["version"], id="version-2"),
    pytest.param({**document(), "version": None}, ["version"], id="version-null"),
    pytest.param({**document(), "version": True}, ["version"], id="version-boolean"),
    pytest.param({"version": "1.0"}, [""], id="no-preset"),
    pytest.param({"version": "1.0", "preset": "X"}, ["preset"], id="preset-string"),
    pytest.param({**document(), "presets": []}, ["presets"], id="preset-and-presets"),
    pytest.param({"version": "1.0", "presets": {}}, ["presets"], id="presets-object"),
    pytest.param({"version": "1.0", "presets": []}, ["presets"], id="presets-empty"),
    pytest.param({"version": "1.0", "preset": {"parameters": {"a": [1]}}}, ["preset.name"], id="no-name"),
    pytest.param({"version": "1.0", "preset": {"name": "X"}}, ["preset.parameters"], id="no-parameters"),
    pytest.param(document(name=""), ["preset.name"], id="blank-name"),
    pytest.param(document(parameters=[1, 2]), ["preset.parameters"], id="parameters-list"),
    pytest.param(document(parameters={"tp-size": [None]}), ["preset.parameters.tp-size[0]"], id="null-value"),
    pytest.param(document(parameters={"tp-size": [1, {"a": 1}]}), ["preset.parameters.tp-size[1]"], id="object"),
    pytest.param(document(parameters={"tp-size": []}), ["preset.parameters.tp-size"], id="empty-values"),
    pytest.param(document(runtime="tensorrt"), ["preset.runtime"], id="runtime"),
    pytest.param(document(metadata="notes"), ["preset.metadata"], id="metadata"),
    pytest.param(
        bundle({"name": "A", "parameters": {"a": [1]}}, {"parameters": {"a": [1]}}), ["presets[1].name"], id="bundle"
    ),
    pytest.param(bundle({"name": "A", "parameters": {"a": [1]}}, "B"), ["presets[1]"], id="bundle-entry-not-an-object"),
    pytest.param(
        bundle({"name": "A", "parameters": {"a": [1]}}, {"name": "a ", "parameters": {"a": [1]}}),
        ["presets[1].name"],
        id="bundle-repeats-a-name",
    ),
    pytest.param([document()], [""], id="array"),
]


@pytest.mark.parametrize(("content", "paths"), INVALID_DOCUMENTS)
def test_an_invalid_document_answers_400_with_json_paths(api, system_presets, content, paths):
    response = import_file(api, json.dumps(content))

    assert response.status_code == 400
    assert error_paths(response) == paths
    assert ParameterPreset.objects.count() == len(system_presets)


@pytest.mark.parametrize(("content", "paths"), INVALID_DOCUMENTS)
def test_an_invalid_json_body_answers_400_with_json_paths(api, content, paths):
    response = api.post(IMPORT, json.dumps(content), content_type="application/json")

    assert response.status_code == 400
    assert error_paths(response) == paths
    assert not ParameterPreset.objects.exists()


def test_every_problem_of_a_document_is_listed(api):
    content = {"version": "2.0", "preset": {"parameters": {"tp-size": [None, 1, None], "Bad": [1]}}}

    response = import_file(api, content)

    assert response.status_code == 400
    assert sorted(error_paths(response)) == sorted(
        [
            "version",
            "preset.name",
            "preset.parameters.tp-size[0]",
            "preset.parameters.tp-size[2]",
            "preset.parameters.Bad",
        ]
    )


def test_every_problem_of_a_bundle_is_listed(api):
    content = bundle(
        {"name": "Good", "parameters": {"a": [1]}},
        {"parameters": {"a": [None]}},
        {"name": "Also bad", "parameters": {}},
    )

    response = import_file(api, content)

    assert response.status_code == 400
    assert error_paths(response) == ["presets[1].name", "presets[1].parameters.a[0]", "presets[2].parameters"]


def test_a_bundle_with_one_bad_preset_creates_nothing(api, system_presets):
    content = bundle(
        {"name": "Good one", "parameters": {"a": [1]}},
        {"name": "Good two", "parameters": {"a": [2]}},
        {"name": "Bad", "parameters": {"a": [None]}},
    )

    response = import_file(api, content)

    assert response.status_code == 400
    assert ParameterPreset.objects.count() == len(system_presets)


def test_a_multipart_request_without_a_file_answers_400(api):
    response = api.post(IMPORT, {"document": json.dumps(document())}, format="multipart")

    assert response.status_code == 400
    assert error_paths(response) == ["file"]


def test_a_file_that_is_not_utf8_answers_400(api):
    response = import_file(api, b'{"version": "1.0", "preset": {"name": "\xff\xfe"}}')

    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_file_over_1_mib_answers_413(api):
    text = json.dumps(document(description="x" * MiB))

    response = import_file(api, text)

    assert response.status_code == 413
    assert response.json()["detail"]
    assert not ParameterPreset.objects.exists()


def test_a_json_body_over_1_mib_answers_413(api):
    response = import_body(api, document(description="x" * MiB))

    assert response.status_code == 413
    assert not ParameterPreset.objects.exists()


def test_a_file_of_10_mb_answers_413(api):
    response = import_file(api, json.dumps(document(name="x" * 10_000_000)))

    assert response.status_code == 413


# Round trips


def test_an_exported_preset_imports_back_identical(api, user):
    original = make_preset(
        name="Round trip",
        description="Goes out and back",
        category="custom",
        runtime="vllm",
        parameters={"tp-size": [1, 2], "enable-prefix-caching": [True, False], "block-size": [16], "gpu-util": [0.9]},
        metadata={"author": "ada", "tags": ["a", "b"], "nested": {"depth": [1, {"two": None}]}},
        created_by=user,
    )
    exported = api.get(f"/api/presets/{original.pk}/export").content

    response = import_file(api, exported, "rename")

    assert response.status_code == 201
    copy = ParameterPreset.objects.get(pk=response.json()["id"])
    assert copy.name == "Round trip (imported)"
    assert copy.parameters == original.parameters
    assert json.dumps(copy.parameters) == json.dumps(original.parameters)
    assert copy.runtime == "vllm"
    assert copy.metadata == original.metadata
    assert copy.description == original.description
    assert copy.category == original.category
    assert copy.is_system is False


def test_an_any_engine_preset_stays_any_engine_through_a_round_trip(api, user):
    original = make_preset(name="Anywhere", runtime="", created_by=user)
    exported = api.get(f"/api/presets/{original.pk}/export").content

    response = import_file(api, exported, "rename")

    assert response.json()["runtime"] is None
    assert ParameterPreset.objects.get(pk=response.json()["id"]).runtime == ""


def test_an_exported_system_preset_imports_back_as_a_user_preset(api, system_presets):
    exported = api.get(f"/api/presets/{system_presets['High Throughput'].pk}/export").content

    response = import_file(api, exported, "rename")

    assert response.status_code == 201
    copy = ParameterPreset.objects.get(pk=response.json()["id"])
    original = system_presets["High Throughput"]
    assert copy.is_system is False
    assert (copy.parameters, copy.runtime, copy.metadata) == (original.parameters, original.runtime, original.metadata)


def test_a_bundle_export_imports_back_with_every_preset_renamed(api, system_presets):
    exported = api.get("/api/presets/export").content

    response = import_file(api, exported, "rename")

    assert response.status_code == 201
    assert [preset["name"] for preset in response.json()] == [
        f"{name} (imported)" for name in sorted(system_preset_names())
    ]
    assert "High Throughput (vLLM) (imported)" in [preset["name"] for preset in response.json()]
    for preset in response.json():
        original = system_presets[preset["name"].removesuffix(" (imported)")]
        assert preset["parameters"] == original.parameters
        assert preset["runtime"] == original.runtime
        assert preset["metadata"] == original.metadata


def test_an_unchanged_export_imported_with_fail_answers_409(api, system_presets):
    exported = api.get(f"/api/presets/{system_presets['Balanced'].pk}/export").content

    assert import_file(api, exported).status_code == 409


@pytest.mark.parametrize("runtime", [{}, [], 0, False], ids=["object", "list", "zero", "false"])
def test_an_import_with_a_runtime_that_is_not_text_answers_400(api, runtime):
    response = import_body(api, document(runtime=runtime))

    assert response.status_code == 400
    assert error_paths(response) == ["preset.runtime"]
    assert not ParameterPreset.objects.filter(name="Imported").exists()
