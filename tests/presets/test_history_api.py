"""The presets API's history and trash: versions, restore, diff, change notes, the trash and its restore."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from presets.models import (
    SYSTEM_READ_ONLY,
    ImmutableRevision,
    ParameterPreset,
    PresetRevision,
    RevisionEvent,
)
from presets.seeding import seed_system_presets
from tests.factories import make_preset

pytestmark = pytest.mark.django_db

LIST = "/api/presets/"
TRASH = "/api/presets/trash"
VERSION_FIELDS = {"version", "event", "note", "created_by", "author_in_file", "created_at", "current", "content"}
CONTENT_FIELDS = {"name", "description", "category", "runtime", "parameters", "metadata"}
TRASH_FIELDS = {"id", "name", "deleted_at", "deleted_by", "purge_after", "version"}


def detail_url(preset: ParameterPreset | int | str) -> str:
    return f"/api/presets/{getattr(preset, 'pk', preset)}"


def error_paths(response) -> list[str]:
    return [error["path"] for error in response.json().get("errors", [])]


def assert_error_shape(response) -> None:
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"detail", "errors"}
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def own_preset(user) -> ParameterPreset:
    return make_preset(
        name="My grid",
        description="Two GPUs at most",
        runtime="vllm",
        parameters={"tp-size": [1, 2]},
        created_by=user,
    )


@pytest.fixture
def three_versions(api) -> ParameterPreset:
    """Created and patched twice through the API, a note each time: versions 1, 2 and 3."""
    created = api.post(
        LIST,
        {"name": "Latency", "parameters": {"tp-size": [1, 2]}, "change_note": "  First try  "},
        format="json",
    )
    assert created.status_code == 201
    url = detail_url(created.json()["id"])
    assert (
        api.patch(url, {"parameters": {"tp-size": [2, 4]}, "change_note": "Bigger"}, format="json").status_code == 200
    )
    second = api.patch(
        url,
        {"name": "Latency v2", "parameters": {"tp-size": [2, 4], "max-num-seqs": [64]}, "change_note": "Seqs"},
        format="json",
    )
    assert second.status_code == 200, second.json()
    return ParameterPreset.objects.get(pk=created.json()["id"])


@pytest.fixture
def system_preset() -> ParameterPreset:
    seed_system_presets()
    return ParameterPreset.objects.system().first()


# Version numbering and change notes


def test_a_create_and_two_patches_give_versions_one_to_three_with_their_notes(api, three_versions):
    response = api.get(f"{detail_url(three_versions)}/versions")

    assert response.status_code == 200
    versions = response.json()
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert [v["note"] for v in versions] == ["Seqs", "Bigger", "First try"]
    assert [v["event"] for v in versions] == ["edited", "edited", "created"]
    assert [v["current"] for v in versions] == [True, False, False]
    assert {v["created_by"] for v in versions} == {"ada"}
    assert all(set(v) == VERSION_FIELDS for v in versions)
    assert all(set(v["content"]) == CONTENT_FIELDS for v in versions)
    assert versions[0]["content"]["parameters"] == {"tp-size": [2, 4], "max-num-seqs": [64]}
    assert versions[2]["content"]["name"] == "Latency"
    assert versions[0]["created_at"].endswith("Z")


def test_the_preset_shows_its_current_version(api, three_versions):
    one = api.get(detail_url(three_versions)).json()
    rows = api.get(LIST).json()

    assert one["version"] == 3
    assert [row["version"] for row in rows if row["id"] == three_versions.pk] == [3]
    assert all(isinstance(row["version"], int) for row in rows)


def test_create_answers_version_one(api):
    response = api.post(LIST, {"name": "Fresh", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201
    assert response.json()["version"] == 1


def test_a_patch_that_changes_nothing_adds_no_version(api, own_preset):
    response = api.patch(
        detail_url(own_preset), {"description": own_preset.description, "change_note": "Nothing"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["version"] == 1
    assert own_preset.revisions.count() == 1


def test_the_etag_follows_the_version(api, own_preset):
    before = api.get(detail_url(own_preset))["ETag"]

    patched = api.patch(detail_url(own_preset), {"parameters": {"tp-size": [8]}}, format="json")

    assert patched.json()["version"] == 2
    assert patched["ETag"] != before
    assert api.get(detail_url(own_preset))["ETag"] == patched["ETag"]


def test_put_writes_its_change_note_on_the_new_version(api, own_preset):
    body = {"name": "My grid", "parameters": {"tp-size": [4]}, "change_note": "Four GPUs"}

    response = api.put(detail_url(own_preset), body, format="json")

    assert response.status_code == 200
    assert own_preset.revisions.get(version=2).note == "Four GPUs"


def test_a_null_change_note_means_no_note(api, own_preset):
    response = api.patch(detail_url(own_preset), {"parameters": {"tp-size": [4]}, "change_note": None}, format="json")

    assert response.status_code == 200
    assert own_preset.revisions.get(version=2).note == ""


BAD_NOTES = [
    pytest.param(42, "expected a string, got a number", id="number"),
    pytest.param(["why"], "expected a string, got a list", id="list"),
    pytest.param({"text": "why"}, "expected a string, got an object", id="object"),
    pytest.param("x" * 501, "at most 500 characters are allowed, got 501", id="too-long"),
    pytest.param("a\x00b", "text contains a NUL or an unpaired surrogate character", id="nul"),
]


@pytest.mark.parametrize(("note", "message"), BAD_NOTES)
@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_a_bad_change_note_answers_400_at_its_path_and_changes_nothing(api, own_preset, method, note, message):
    body = {"name": "Noted", "parameters": {"tp-size": [8]}, "change_note": note}
    url = LIST if method == "post" else detail_url(own_preset)

    response = getattr(api, method)(url, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "change_note", "message": message}]
    assert ParameterPreset.objects.count() == 1
    assert PresetRevision.objects.count() == 1


def test_a_note_of_500_characters_after_trimming_is_accepted(api, own_preset):
    note = "  " + "x" * 500 + "  "

    response = api.patch(detail_url(own_preset), {"parameters": {"tp-size": [8]}, "change_note": note}, format="json")

    assert response.status_code == 200
    assert own_preset.revisions.get(version=2).note == "x" * 500


def test_a_bad_change_note_is_listed_with_the_other_problems(api):
    response = api.post(LIST, {"name": "", "parameters": {}, "change_note": 1}, format="json")

    assert response.status_code == 400
    assert error_paths(response) == ["name", "parameters", "change_note"]


# Revisions are immutable


def test_a_revision_cannot_be_saved_again(own_preset):
    revision = own_preset.revisions.get()
    revision.note = "rewritten"

    with pytest.raises(ImmutableRevision):
        revision.save()

    assert own_preset.revisions.get().note == ""


def test_revisions_cannot_be_updated_or_deleted_in_bulk_or_one_by_one(own_preset):
    with pytest.raises(ImmutableRevision):
        PresetRevision.objects.filter(preset=own_preset).update(note="rewritten")
    with pytest.raises(ImmutableRevision):
        PresetRevision.objects.filter(preset=own_preset).delete()
    with pytest.raises(ImmutableRevision):
        own_preset.revisions.get().delete()

    assert own_preset.revisions.count() == 1


# Versions: list and one


def test_one_version_answers_with_its_content(api, three_versions):
    response = api.get(f"{detail_url(three_versions)}/versions/2")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == VERSION_FIELDS
    assert body["version"] == 2
    assert body["note"] == "Bigger"
    assert body["current"] is False
    assert body["content"]["parameters"] == {"tp-size": [2, 4]}


@pytest.mark.parametrize("raw", ["4", "0", "-1", "abc", "1.5", "²", "99999999999999999999", "2147483648"])
def test_a_version_that_is_not_there_answers_404_naming_it(api, three_versions, raw):
    response = api.get(f"{detail_url(three_versions)}/versions/{raw}")

    assert response.status_code == 404
    assert_error_shape(response)
    assert f"has no version {raw}" in response.json()["detail"]
    assert "its versions are 1 to 3" in response.json()["detail"]


@pytest.mark.parametrize("suffix", ["/versions", "/versions/1", "/diff?from=1"])
def test_the_versions_of_an_unknown_preset_answer_404(api, suffix):
    response = api.get(f"/api/presets/999{suffix}")

    assert response.status_code == 404
    assert response.json()["detail"] == "Preset 999 not found"


def test_the_versions_of_a_preset_in_the_trash_answer_404(api, own_preset, user):
    own_preset.trash(by=user)

    assert api.get(f"{detail_url(own_preset)}/versions").status_code == 404


def test_any_user_reads_the_versions_of_another_users_preset(own_preset, other_user):
    response = client_for(other_user).get(f"{detail_url(own_preset)}/versions")

    assert response.status_code == 200
    assert [v["created_by"] for v in response.json()] == ["ada"]


# Restore a version


def restore_url(preset: ParameterPreset, version: int | str) -> str:
    return f"{detail_url(preset)}/versions/{version}/restore"


def test_restoring_a_version_makes_its_content_current_as_a_new_version(api, three_versions):
    response = api.post(restore_url(three_versions, 1))

    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 4
    assert body["name"] == "Latency"
    assert body["parameters"] == {"tp-size": [1, 2]}
    assert response["ETag"]
    latest = three_versions.revisions.get(version=4)
    assert latest.event == RevisionEvent.RESTORED
    assert latest.note == "Restored version 1."
    assert latest.content == three_versions.revisions.get(version=1).content
    assert three_versions.revisions.count() == 4


def test_restoring_keeps_the_change_note_given(api, three_versions):
    response = api.post(restore_url(three_versions, 2), {"change_note": " Back to two "}, format="json")

    assert response.status_code == 200
    assert three_versions.revisions.get(version=4).note == "Back to two"


def test_restoring_the_current_version_still_records_one(api, three_versions):
    response = api.post(restore_url(three_versions, 3), {}, format="json")

    assert response.status_code == 200
    assert response.json()["version"] == 4


def test_another_user_may_not_restore_a_version(three_versions, other_user):
    response = client_for(other_user).post(restore_url(three_versions, 1))

    assert response.status_code == 403
    assert response.json()["detail"] == "Only the preset's creator or staff can change it."
    assert three_versions.revisions.count() == 3


def test_staff_may_restore_anyones_version(three_versions, staff_user):
    response = client_for(staff_user).post(restore_url(three_versions, 1))

    assert response.status_code == 200
    assert three_versions.revisions.get(version=4).created_by == staff_user


def test_a_system_preset_version_is_never_restored(api, system_preset, superuser):
    for client in (api, client_for(superuser)):
        response = client.post(restore_url(system_preset, 1))

        assert response.status_code == 403
        assert response.json()["detail"] == SYSTEM_READ_ONLY


def test_restoring_anonymously_answers_401(three_versions):
    response = APIClient().post(restore_url(three_versions, 1))

    assert response.status_code == 401


@pytest.mark.parametrize("raw", ["9", "0", "x"])
def test_restoring_a_version_that_is_not_there_answers_404(api, three_versions, raw):
    response = api.post(restore_url(three_versions, raw))

    assert response.status_code == 404
    assert f"has no version {raw}" in response.json()["detail"]
    assert three_versions.revisions.count() == 3


def test_restoring_a_name_another_preset_took_answers_409(api, three_versions):
    make_preset(name="latency")

    response = api.post(restore_url(three_versions, 1))

    assert response.status_code == 409
    assert response.json()["detail"].startswith("Another preset is named “Latency” now")
    assert error_paths(response) == ["name"]
    assert three_versions.revisions.count() == 3


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"change_note": 5}, "change_note", id="note-type"),
        pytest.param({"change_note": "x" * 501}, "change_note", id="note-length"),
        pytest.param([1], "", id="not-an-object"),
    ],
)
def test_restoring_with_a_bad_body_answers_400(api, three_versions, body, path):
    response = api.post(restore_url(three_versions, 1), body, format="json")

    assert response.status_code == 400
    assert error_paths(response) == [path]
    assert three_versions.revisions.count() == 3


def test_restoring_honours_if_match(api, three_versions):
    etag = api.get(detail_url(three_versions))["ETag"]

    stale = api.post(restore_url(three_versions, 1), HTTP_IF_MATCH='"stale"')
    fresh = api.post(restore_url(three_versions, 1), HTTP_IF_MATCH=etag)

    assert stale.status_code == 412
    assert fresh.status_code == 200
    assert three_versions.revisions.count() == 4


def test_restoring_parameters_the_engine_now_refuses_answers_409(api, user):
    preset = make_preset(name="Old", runtime="vllm", parameters={"tp-size": [1]}, created_by=user)
    # Written past the engine check, as an older catalogue would have allowed it.
    PresetRevision.objects.create(
        preset=preset,
        version=2,
        content={**preset.content(), "parameters": {"gpu-memory-utilization": [1.5]}},
        created_by=user,
    )

    response = api.post(restore_url(preset, 2))

    assert response.status_code == 409
    assert response.json()["errors"] == [
        {"path": "parameters.gpu-memory-utilization[0]", "message": "1.5 is outside (0, 1]"}
    ]
    assert preset.revisions.count() == 2


# Diff


def test_the_diff_lists_what_changed_between_two_versions(api, three_versions):
    response = api.get(f"{detail_url(three_versions)}/diff?from=1&to=3")

    assert response.status_code == 200
    assert response.json() == {
        "from": 1,
        "to": 3,
        "summary": "1 flag added, 1 changed; name changed",
        "parameters": {
            "added": {"max-num-seqs": [64]},
            "removed": {},
            "changed": [{"flag": "tp-size", "added": [4], "removed": [1], "reordered": False}],
        },
        "fields": [{"field": "name", "old": "Latency", "new": "Latency v2"}],
        "flags_reordered": False,
    }


def test_the_diff_goes_to_the_current_version_when_to_is_omitted(api, three_versions):
    response = api.get(f"{detail_url(three_versions)}/diff?from=2")

    assert response.status_code == 200
    assert (response.json()["from"], response.json()["to"]) == (2, 3)
    assert response.json()["summary"] == "1 flag added; name changed"


def test_a_diff_backwards_and_of_a_version_with_itself(api, three_versions):
    backwards = api.get(f"{detail_url(three_versions)}/diff?from=3&to=1").json()
    same = api.get(f"{detail_url(three_versions)}/diff?from=2&to=2").json()

    assert backwards["parameters"]["removed"] == {"max-num-seqs": [64]}
    assert same["summary"] == "no change"


@pytest.mark.parametrize(
    ("query", "paths", "message"),
    [
        pytest.param("", ["from"], "this parameter is required: a version number, e.g. from=1", id="no-from"),
        pytest.param("?to=2", ["from"], "this parameter is required: a version number, e.g. from=1", id="only-to"),
        pytest.param("?from=x", ["from"], "expected a version number (a whole number from 1), got 'x'", id="from-x"),
        pytest.param("?from=0", ["from"], "expected a version number (a whole number from 1), got '0'", id="zero"),
        pytest.param("?from=1&to=-2", ["to"], "expected a version number (a whole number from 1), got '-2'", id="neg"),
        pytest.param("?from=a&to=b", ["from", "to"], None, id="both"),
    ],
)
def test_a_bad_diff_query_answers_400_naming_the_parameter(api, three_versions, query, paths, message):
    response = api.get(f"{detail_url(three_versions)}/diff{query}")

    assert response.status_code == 400
    assert_error_shape(response)
    assert error_paths(response) == paths
    if message:
        assert response.json()["errors"][0]["message"] == message


def test_a_diff_with_an_unknown_version_answers_404_naming_it(api, three_versions):
    response = api.get(f"{detail_url(three_versions)}/diff?from=1&to=7")

    assert response.status_code == 404
    assert response.json()["detail"] == f"Preset {three_versions.pk} has no version 7; its versions are 1 to 3."
    assert response.json()["errors"] == [{"path": "to", "message": "no version 7"}]


# DELETE moves to the trash


def test_delete_answers_204_then_the_preset_is_gone_but_in_the_trash(api, own_preset):
    response = api.delete(detail_url(own_preset))

    assert response.status_code == 204
    assert api.get(detail_url(own_preset)).status_code == 404
    assert own_preset.pk not in [row["id"] for row in api.get(LIST).json()]
    assert [row["id"] for row in api.get(TRASH).json()] == [own_preset.pk]
    assert ParameterPreset.everything.filter(pk=own_preset.pk).exists()


def test_a_deleted_presets_name_is_free_again(api, own_preset):
    api.delete(detail_url(own_preset))

    response = api.post(LIST, {"name": "My grid", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201


# The trash


def test_the_trash_lists_only_the_users_own_presets_with_the_documented_fields(api, user, other_user, own_preset):
    theirs = make_preset(name="Theirs", created_by=other_user)
    own_preset.trash(by=user)
    theirs.trash(by=other_user)

    response = api.get(TRASH)

    assert response.status_code == 200
    rows = response.json()
    assert [row["id"] for row in rows] == [own_preset.pk]
    row = rows[0]
    assert set(row) == TRASH_FIELDS
    assert row["name"] == "My grid"
    assert row["deleted_by"] == "ada"
    assert row["version"] == 1
    assert row["deleted_at"].endswith("Z")
    assert row["purge_after"] > row["deleted_at"]


def test_staff_see_the_whole_trash_newest_first(user, other_user, staff_user, own_preset):
    theirs = make_preset(name="Theirs", created_by=other_user)
    own_preset.trash(by=user)
    theirs.trash(by=staff_user)

    rows = client_for(staff_user).get(TRASH).json()

    assert [(row["name"], row["deleted_by"]) for row in rows] == [("Theirs", "linus"), ("My grid", "ada")]


def test_the_trash_is_empty_when_nothing_was_deleted(api, own_preset):
    assert api.get(TRASH).json() == []


def test_the_trash_answers_401_anonymously(db):
    assert APIClient().get(TRASH).status_code == 401


def untrash_url(preset: ParameterPreset | int | str) -> str:
    return f"{TRASH}/{getattr(preset, 'pk', preset)}/restore"


def test_restoring_from_the_trash_brings_the_preset_back(api, user, own_preset):
    own_preset.trash(by=user)

    response = api.post(untrash_url(own_preset))

    assert response.status_code == 200
    assert response.json()["name"] == "My grid"
    assert response.json()["id"] == own_preset.pk
    assert response["ETag"]
    assert api.get(detail_url(own_preset)).status_code == 200
    assert api.get(TRASH).json() == []


def test_restoring_from_the_trash_under_a_new_name(api, user, own_preset):
    own_preset.trash(by=user)

    response = api.post(untrash_url(own_preset), {"name": "  Second life "}, format="json")

    assert response.status_code == 200
    assert response.json()["name"] == "Second life"
    assert response.json()["version"] == 2
    assert own_preset.revisions.get(version=2).note == "Restored from the trash as “Second life”."


def test_restoring_from_the_trash_when_the_name_was_taken_answers_409_asking_for_a_name(api, user, own_preset):
    own_preset.trash(by=user)
    make_preset(name="my grid")

    response = api.post(untrash_url(own_preset))

    assert response.status_code == 409
    assert "“My grid”" in response.json()["detail"]
    assert '{"name": "…"}' in response.json()["detail"]
    assert response.json()["errors"] == [{"path": "name", "message": '"My grid" is taken; send another name'}]
    assert ParameterPreset.everything.get(pk=own_preset.pk).in_trash


def test_restoring_from_the_trash_under_a_taken_name_answers_409_naming_it(api, user, own_preset):
    own_preset.trash(by=user)
    make_preset(name="Busy")

    response = api.post(untrash_url(own_preset), {"name": "busy"}, format="json")

    assert response.status_code == 409
    assert "“busy”" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        pytest.param({"name": ""}, "name", "a name is required", id="empty"),
        pytest.param({"name": 3}, "name", "expected a string, got a number", id="number"),
        pytest.param({"name": "x" * 256}, "name", "at most 255 characters are allowed, got 256", id="long"),
        pytest.param({"name": "a\nb"}, "name", "control characters are not allowed in a name", id="control"),
        pytest.param(["x"], "", 'expected an object like {"name": "…"}, got a list', id="list"),
    ],
)
def test_restoring_from_the_trash_with_a_bad_name_answers_400(api, user, own_preset, body, path, message):
    own_preset.trash(by=user)

    response = api.post(untrash_url(own_preset), body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": path, "message": message}]
    assert ParameterPreset.everything.get(pk=own_preset.pk).in_trash


@pytest.mark.parametrize("raw", ["live", "999", "abc", "0"])
def test_restoring_what_is_not_in_the_trash_answers_404(api, own_preset, raw):
    target = own_preset.pk if raw == "live" else raw

    response = api.post(untrash_url(target))

    assert response.status_code == 404
    assert response.json()["detail"] == f"Preset {target} is not in the trash"


def test_another_user_may_not_restore_from_the_trash(own_preset, user, other_user):
    own_preset.trash(by=user)

    response = client_for(other_user).post(untrash_url(own_preset))

    assert response.status_code == 403
    assert ParameterPreset.everything.get(pk=own_preset.pk).in_trash


def test_staff_may_restore_anyones_preset_from_the_trash(own_preset, user, staff_user):
    own_preset.trash(by=user)

    response = client_for(staff_user).post(untrash_url(own_preset))

    assert response.status_code == 200


def test_restoring_from_the_trash_anonymously_answers_401(own_preset, user):
    own_preset.trash(by=user)

    assert APIClient().post(untrash_url(own_preset)).status_code == 401


# Routing: every new path with and without its slash, and "trash" never read as an id


@pytest.mark.parametrize("slash", ["", "/"], ids=["without-slash", "with-slash"])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("get", "/api/presets/{id}/versions", 200, id="versions"),
        pytest.param("get", "/api/presets/{id}/versions/1", 200, id="version"),
        pytest.param("post", "/api/presets/{id}/versions/1/restore", 200, id="restore"),
        pytest.param("get", "/api/presets/{id}/diff", 200, id="diff"),
        pytest.param("get", "/api/presets/trash", 200, id="trash"),
        pytest.param("post", "/api/presets/trash/{trashed}/restore", 200, id="untrash"),
    ],
)
def test_every_new_path_answers_with_and_without_a_trailing_slash(api, user, own_preset, method, path, status, slash):
    trashed = make_preset(name="Binned", created_by=user)
    trashed.trash(by=user)
    url = path.format(id=own_preset.pk, trashed=trashed.pk) + slash
    query = "?from=1" if "diff" in path else ""

    response = getattr(api, method)(url + query)

    assert response.status_code == status, response.content


@pytest.mark.parametrize("slash", ["", "/"], ids=["without-slash", "with-slash"])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_trash_is_never_taken_for_a_preset_id(api, method, slash):
    response = getattr(api, method)(TRASH + slash, {"name": "x"}, format="json")

    assert response.status_code == 405
    assert_error_shape(response)


def test_errors_of_the_new_endpoints_have_the_api_shape(api, user, own_preset, system_preset):
    own_preset.trash(by=user)
    responses = [
        api.get(f"{detail_url(system_preset)}/versions/x"),
        api.post(restore_url(system_preset, 1)),
        api.get(f"{detail_url(system_preset)}/diff"),
        api.post(untrash_url(own_preset), {"name": ""}, format="json"),
        api.post(untrash_url(999)),
    ]

    assert [response.status_code for response in responses] == [404, 403, 400, 400, 404]
    for response in responses:
        assert response["Content-Type"].startswith("application/json")
        assert_error_shape(response)


# The schema


@pytest.fixture
def schema(tmp_path) -> dict:
    import yaml

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


NEW_PATHS = {
    "/api/presets/{id}/versions/": "get",
    "/api/presets/{id}/versions/{version}/": "get",
    "/api/presets/{id}/versions/{version}/restore/": "post",
    "/api/presets/{id}/diff/": "get",
    "/api/presets/trash/": "get",
    "/api/presets/trash/{id}/restore/": "post",
}


@pytest.mark.parametrize(("path", "method"), NEW_PATHS.items(), ids=list(NEW_PATHS))
def test_the_schema_documents_every_new_endpoint_with_a_summary(schema, path, method):
    operation = schema["paths"][path][method]

    assert operation["summary"]
    assert {"200", "401"} <= set(operation["responses"])


def test_the_schema_documents_the_diff_parameters_and_version_and_change_note(schema):
    diff = {p["name"]: p for p in schema["paths"]["/api/presets/{id}/diff/"]["get"]["parameters"]}
    versions = schema["paths"]["/api/presets/{id}/versions/"]["get"]
    components = schema["components"]["schemas"]

    assert diff["from"]["required"] is True
    assert "current version if omitted" in diff["to"]["description"]
    assert [p["name"] for p in versions.get("parameters", [])] == ["id"]  # no list filters here
    assert "version" in components["Preset"]["properties"]
    assert "change_note" in components["PresetRequest"]["properties"]
    assert "change_note" not in components["Preset"]["properties"]
    assert {"from", "to", "summary", "parameters", "fields"} <= set(components["PresetDiff"]["properties"])


@pytest.mark.parametrize("path", ["/api/presets/{id}/export/", "/api/presets/export/"])
def test_the_schema_documents_the_history_flag_of_exports(schema, path):
    assert "history" in {p["name"] for p in schema["paths"][path]["get"]["parameters"]}


def test_an_any_engine_version_every_engine_now_refuses_is_not_restored(api, user):
    # Version 1 was saved before any-engine presets were checked against every engine.
    preset = ParameterPreset(name="Old", created_by=user, parameters={"mem-fraction-static": [9]})
    preset.save(by=user)
    preset.parameters = {"mem-fraction-static": [0.8]}
    preset.save(by=user)

    response = api.post(restore_url(preset, 1), {}, format="json")

    assert response.status_code == 409
    assert response.json()["detail"] == "Every engine with these flags now refuses version 1's parameters."
    assert [error["path"] for error in response.json()["errors"]] == ["parameters.mem-fraction-static[0]"]
    assert preset.revisions.count() == 2
