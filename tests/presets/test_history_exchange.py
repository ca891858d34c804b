"""Exporting presets with their history, and importing such a document back: versions, paths, all or nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from presets.exchange import parse_history
from presets.models import ParameterPreset, PresetRevision, RevisionEvent
from tests.factories import make_preset

pytestmark = pytest.mark.django_db

IMPORT = "/api/presets/import"
ENTRY_FIELDS = {"version", "event", "note", "created_by", "created_at", "content"}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def edited(user, other_user) -> ParameterPreset:
    """Three versions: created by ada, edited by grace, then by ada with a note."""
    preset = make_preset(name="Latency", parameters={"tp-size": [1, 2]}, created_by=user)
    preset.parameters = {"tp-size": [2, 4]}
    preset.save(by=other_user, note="Bigger")
    preset.name = "Low latency"
    preset.parameters = {"tp-size": [2, 4], "max-num-seqs": [64]}
    preset.save(by=user, note="Fewer sequences")
    return preset


def entry(version: int, **overrides) -> dict:
    """One valid history entry."""
    return {
        "version": version,
        "event": "edited",
        "note": "",
        "created_by": None,
        "created_at": "2025-01-31T12:00:00Z",
        "content": {"name": "Old", "parameters": {"tp-size": [version]}},
        **overrides,
    }


def document(history: object, **preset) -> dict:
    return {
        "version": "1.0",
        "preset": {"name": "Imported", "parameters": {"tp-size": [2]}, "history": history, **preset},
    }


def revisions(preset: ParameterPreset) -> list[tuple]:
    """Each version as a reader sees it: its author is the one who made it, or for an imported
    version the one its file named."""
    return [
        (r.version, r.event, r.note, author(r), r.created_at, r.content) for r in preset.revisions.order_by("version")
    ]


def author(revision) -> str | None:
    if revision.author_in_file:
        return revision.author_in_file
    return revision.created_by.get_username() if revision.created_by else None


# Export


def test_export_with_history_lists_every_version_oldest_first(api, edited):
    response = api.get(f"/api/presets/{edited.pk}/export?history=true")

    assert response.status_code == 200
    preset = json.loads(response.content)["preset"]
    assert preset["name"] == "Low latency"
    history = preset["history"]
    assert [e["version"] for e in history] == [1, 2, 3]
    assert all(set(e) == ENTRY_FIELDS for e in history)
    assert [e["event"] for e in history] == ["created", "edited", "edited"]
    assert [e["note"] for e in history] == ["", "Bigger", "Fewer sequences"]
    assert [e["created_by"] for e in history] == ["ada", "grace", "ada"]
    assert history[0]["content"] == {
        "name": "Latency",
        "description": "",
        "category": "custom",
        "runtime": None,
        "parameters": {"tp-size": [1, 2]},
        "metadata": {},
    }
    assert datetime.fromisoformat(history[2]["created_at"]) == edited.revisions.get(version=3).created_at


@pytest.mark.parametrize("query", ["", "?history=false", "?history=0"])
def test_export_without_history_is_the_plain_document(api, edited, query):
    preset = json.loads(api.get(f"/api/presets/{edited.pk}/export{query}").content)["preset"]

    assert "history" not in preset


@pytest.mark.parametrize("url", ["/api/presets/{id}/export", "/api/presets/export"])
def test_a_history_flag_that_is_not_true_or_false_answers_400(api, edited, url):
    response = api.get(url.format(id=edited.pk) + "?history=yes")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "history", "message": "expected true or false, got 'yes'"}]


def test_a_bundle_export_with_history_gives_each_preset_its_own(api, user, edited):
    other = make_preset(name="Other", created_by=user)

    response = api.get(f"/api/presets/export?ids={other.pk},{edited.pk}&history=true")

    presets = json.loads(response.content)["presets"]
    assert [p["name"] for p in presets] == ["Other", "Low latency"]
    assert [[e["version"] for e in p["history"]] for p in presets] == [[1], [1, 2, 3]]


def test_a_bundle_export_with_history_reads_all_versions_in_one_more_query(api, user, django_assert_max_num_queries):
    for number in range(5):
        preset = make_preset(name=f"Many {number}", created_by=user)
        preset.parameters = {"tp-size": [number + 10]}
        preset.save(by=user)

    with django_assert_max_num_queries(10) as plain:
        api.get("/api/presets/export")
    with django_assert_max_num_queries(10) as with_history:
        response = api.get("/api/presets/export?history=true")

    assert len(with_history.captured_queries) == len(plain.captured_queries) + 1
    assert [len(p["history"]) for p in json.loads(response.content)["presets"]] == [2] * 5


# Round trip


def test_an_exported_history_imports_back_with_the_same_versions_notes_and_content(api, user, edited):
    exported = json.loads(api.get(f"/api/presets/{edited.pk}/export?history=true").content)
    before = revisions(edited)
    ParameterPreset.everything.filter(pk=edited.pk).get().delete()

    response = api.post(IMPORT, exported, format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["version"] == 3
    imported = ParameterPreset.objects.get(pk=response.json()["id"])
    assert imported.current_version == 3
    assert {k: v for k, v in exported["preset"].items() if k != "history"} == {**imported.content(), "runtime": None}
    assert revisions(imported) == before
    assert imported.created_by == user


def test_versions_read_back_through_the_api_after_a_round_trip(api, edited):
    exported = json.loads(api.get(f"/api/presets/{edited.pk}/export?history=true").content)
    listed_before = api.get(f"/api/presets/{edited.pk}/versions").json()
    edited.trash(by=None)

    new_id = api.post(IMPORT, exported, format="json").json()["id"]

    listed = api.get(f"/api/presets/{new_id}/versions").json()
    # The same versions, each now credited to the importer (ada), the file's author kept beside.
    assert [{**v, "created_by": None, "author_in_file": ""} for v in listed] == [
        {**v, "created_by": None} for v in listed_before
    ]
    assert [(v["created_by"], v["author_in_file"]) for v in listed] == [("ada", v["created_by"]) for v in listed_before]


def test_a_bundle_with_histories_imports_every_preset_with_its_versions(api, user, edited):
    second = make_preset(name="Second", created_by=user)
    exported = json.loads(api.get(f"/api/presets/export?ids={edited.pk},{second.pk}&history=true").content)
    ParameterPreset.everything.filter(pk__in=[edited.pk, second.pk]).delete()

    response = api.post(IMPORT, exported, format="json")

    assert response.status_code == 201
    assert [row["version"] for row in response.json()] == [3, 1]
    assert PresetRevision.objects.count() == 4


def test_an_imported_history_is_credited_to_the_importer_with_the_files_authors_kept_as_text(api, user, other_user):
    # grace is a local user: a file naming her must not credit her with versions she never made.
    history = [entry(1, created_by="grace", event="created"), entry(2, created_by="nobody"), entry(3, created_by=None)]

    response = api.post(IMPORT, document(history, parameters={"tp-size": [2]}, name="Old"), format="json")

    preset = ParameterPreset.objects.get(pk=response.json()["id"])
    stored = preset.revisions.filter(version__lte=3).order_by("version")
    assert [r.created_by for r in stored] == [user, user, user]
    assert [r.author_in_file for r in stored] == ["grace", "nobody", ""]
    listed = [v for v in api.get(f"/api/presets/{preset.pk}/versions").json() if v["version"] <= 3]
    authors = [(v["created_by"], v["author_in_file"]) for v in listed]
    assert authors == [("ada", ""), ("ada", "nobody"), ("ada", "grace")]


def test_the_history_page_shows_who_imported_a_version_and_who_the_file_named(api, user, other_user, client):
    history = [entry(1, created_by="grace", event="created")]
    preset_id = api.post(IMPORT, document(history, name="Old"), format="json").json()["id"]
    client.force_login(user)

    row = client.get(f"/presets/{preset_id}/history/").content.decode()

    assert 'ada <span class="muted">(by grace in the imported file)</span>' in row


def test_the_files_version_numbers_and_times_are_kept_even_with_gaps(api):
    history = [entry(2, event="created"), entry(7, created_at="2025-02-01T08:30:00+02:00", note="Seven")]

    response = api.post(IMPORT, document(history, name="Old", parameters={"tp-size": [7]}), format="json")

    preset = ParameterPreset.objects.get(pk=response.json()["id"])
    assert [(r.version, r.note) for r in preset.revisions.order_by("version")] == [(2, ""), (7, "Seven")]
    assert preset.revisions.get(version=7).created_at == datetime(2025, 2, 1, 6, 30, tzinfo=UTC)
    assert preset.current_version == 7


def test_a_time_without_an_offset_is_read_as_utc_and_a_missing_one_is_the_import_time(api):
    history = [entry(1, created_at="2025-01-31T12:00:00"), entry(2, created_at=None)]
    started = datetime.now(UTC)

    response = api.post(IMPORT, document(history, name="Old"), format="json")

    preset = ParameterPreset.objects.get(pk=response.json()["id"])
    assert preset.revisions.get(version=1).created_at == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert preset.revisions.get(version=2).created_at >= started


@pytest.mark.parametrize(
    ("moment", "kept"),
    [
        pytest.param("9999-12-31T23:59:59-14:00", None, id="past-the-last-moment-in-utc"),
        pytest.param("0001-01-01T00:00:00+14:00", None, id="before-the-first-moment-in-utc"),
        pytest.param("9999-12-31T09:59:59-14:00", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), id="the-last-one"),
        pytest.param("0001-01-01T14:00:00+14:00", datetime(1, 1, 1, tzinfo=UTC), id="the-first-one"),
    ],
)
def test_a_time_at_the_edge_of_the_calendar_is_kept_or_refused_at_its_path(api, moment, kept):
    history = [entry(1, created_at=moment)]

    response = api.post(IMPORT, document(history, name="Edge"), format="json")

    if kept is None:
        assert response.status_code == 400
        assert [error["path"] for error in response.json()["errors"]] == ["preset.history[0].created_at"]
        assert not ParameterPreset.objects.filter(name="Edge").exists()
    else:
        assert response.status_code == 201, response.json()
        preset = ParameterPreset.objects.get(pk=response.json()["id"])
        assert preset.revisions.get(version=1).created_at == kept


def test_events_default_to_created_then_edited(api):
    history = [{"version": 1, "content": {"name": "Old", "parameters": {"tp-size": [1]}}}, {**entry(2), "event": None}]

    response = api.post(IMPORT, document(history, name="Old"), format="json")

    preset = ParameterPreset.objects.get(pk=response.json()["id"])
    assert [r.event for r in preset.revisions.order_by("version")] == ["created", "edited"]


def test_a_preset_that_differs_from_its_last_version_gets_one_more_imported_version(api, user):
    history = [entry(1, event="created"), entry(2)]

    response = api.post(IMPORT, document(history, name="New name", parameters={"tp-size": [9]}), format="json")

    assert response.json()["version"] == 3
    preset = ParameterPreset.objects.get(pk=response.json()["id"])
    latest = preset.revisions.get(version=3)
    assert latest.event == RevisionEvent.IMPORTED
    assert latest.created_by == user
    assert latest.content["parameters"] == {"tp-size": [9]}
    assert latest.note == "Imported; the file's preset differs from its version 2."


def test_a_history_imported_under_a_new_name_gets_one_more_version_with_that_name(api, user, edited):
    exported = json.loads(api.get(f"/api/presets/{edited.pk}/export?history=true").content)

    response = api.post(f"{IMPORT}?on_conflict=rename", exported, format="json")

    assert response.status_code == 201
    assert response.json()["name"] == "Low latency (imported)"
    assert response.json()["version"] == 4
    copy = ParameterPreset.objects.get(pk=response.json()["id"])
    assert revisions(copy)[:3] == revisions(edited)
    assert copy.revisions.get(version=4).event == RevisionEvent.IMPORTED
    assert edited.revisions.count() == 3


def test_replacing_keeps_the_existing_history_and_adds_one_imported_version(api, user, edited):
    history = [entry(1, event="created"), entry(2), entry(3), entry(4), entry(5)]
    body = document(history, name="low LATENCY", parameters={"tp-size": [16]})

    response = api.post(f"{IMPORT}?on_conflict=replace", body, format="json")

    assert response.status_code == 201
    assert response.json()["id"] == edited.pk
    assert response.json()["version"] == 4
    latest = edited.revisions.get(version=4)
    assert latest.event == RevisionEvent.IMPORTED
    assert latest.note == "Replaced by an import; the history in the file was not merged."
    assert edited.revisions.count() == 4


def test_a_page_import_restores_the_history_too(user, edited):
    client = client_for(user)
    exported = client.get(f"/api/presets/{edited.pk}/export?history=true").content
    edited.trash(by=user)
    upload = SimpleUploadedFile("preset.json", exported, content_type="application/json")

    response = client.post("/presets/import/", {"file": upload, "on_conflict": "fail"})

    assert response.status_code == 302
    imported = ParameterPreset.objects.get(name="Low latency")
    assert imported.current_version == 3
    assert [r.note for r in imported.revisions.order_by("version")] == ["", "Bigger", "Fewer sequences"]


# Invalid histories: every problem at its path, nothing written

CONTENT = {"name": "Old", "parameters": {"tp-size": [1]}}

INVALID = [
    pytest.param({"x": 1}, "preset.history", "expected a list of versions, oldest first, got an object", id="object"),
    pytest.param("v1", "preset.history", "expected a list of versions, oldest first, got a string", id="string"),
    pytest.param(
        [entry(1), 2],
        "preset.history[1]",
        'expected an object with "version" and "content", got a number',
        id="entry-not-an-object",
    ),
    pytest.param(
        [{"content": CONTENT}],
        "preset.history[0].version",
        "this field is required: a whole number from 1",
        id="version-missing",
    ),
    *[
        pytest.param(
            [entry(1), entry(value)],
            "preset.history[1].version",
            f"expected a whole number from 1, got {json.dumps(value)}",
            id=f"version-{label}",
        )
        for label, value in [("zero", 0), ("negative", -3), ("text", "2"), ("bool", True), ("float", 2.0)]
    ],
    pytest.param(
        [entry(1), entry(2**31)],
        "preset.history[1].version",
        "expected a whole number from 1, got 2147483648",
        id="version-beyond-32-bits",
    ),
    pytest.param(
        [entry(1), entry(3), entry(3)],
        "preset.history[2].version",
        "expected a number above 3 (versions increase, oldest first), got 3",
        id="version-repeated",
    ),
    pytest.param(
        [entry(5), entry(2)],
        "preset.history[1].version",
        "expected a number above 5 (versions increase, oldest first), got 2",
        id="version-decreasing",
    ),
    pytest.param(
        [entry(1), entry(2), entry(3, content={"name": "Old", "parameters": {"tp-size": [None]}})],
        "preset.history[2].content.parameters.tp-size[0]",
        "null is not allowed",
        id="content-value",
    ),
    pytest.param(
        [entry(1, content={"parameters": {"tp-size": [1]}})],
        "preset.history[0].content.name",
        "this field is required",
        id="content-name-missing",
    ),
    pytest.param(
        [{"version": 1}],
        "preset.history[0].content",
        "this field is required: the preset as it was in this version",
        id="content-missing",
    ),
    pytest.param(
        [entry(1, content=[1])], "preset.history[0].content", "expected an object, got a list", id="content-not-object"
    ),
    pytest.param(
        [entry(1, note="x" * 501)],
        "preset.history[0].note",
        "at most 500 characters are allowed, got 501",
        id="note-too-long",
    ),
    pytest.param([entry(1, note=7)], "preset.history[0].note", "expected a string, got a number", id="note-type"),
    pytest.param(
        [entry(1, created_at="yesterday")],
        "preset.history[0].created_at",
        'expected an ISO 8601 date and time like 2025-01-31T12:00:00Z, got "yesterday"',
        id="created-at-text",
    ),
    pytest.param(
        [entry(1, created_at="2025-13-01T00:00:00Z")],
        "preset.history[0].created_at",
        'expected an ISO 8601 date and time like 2025-01-31T12:00:00Z, got "2025-13-01T00:00:00Z"',
        id="created-at-no-such-month",
    ),
    pytest.param(
        [entry(1, created_at=1700000000)],
        "preset.history[0].created_at",
        "expected an ISO 8601 date and time like 2025-01-31T12:00:00Z, got a number",
        id="created-at-number",
    ),
    pytest.param(
        [entry(1, event="deleted")],
        "preset.history[0].event",
        'expected one of created, edited, restored, imported, seeded, got "deleted"',
        id="event-unknown",
    ),
    pytest.param(
        [entry(1, created_by=5)],
        "preset.history[0].created_by",
        "expected a username or null, got a number",
        id="created-by-type",
    ),
    pytest.param(
        [entry(1, created_by="a\x00b")],
        "preset.history[0].created_by",
        "expected a username (at most 150 printable characters)",
        id="created-by-nul",
    ),
]


@pytest.mark.parametrize(("history", "path", "message"), INVALID)
def test_an_invalid_history_answers_400_at_its_exact_path_and_imports_nothing(api, history, path, message):
    response = api.post(IMPORT, document(history), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": path, "message": message}]
    assert not ParameterPreset.everything.exists()
    assert not PresetRevision.objects.exists()


def test_every_problem_of_a_history_is_listed_at_once(api):
    history = [entry(1, note=1), entry(1, created_at="x"), "y"]

    response = api.post(IMPORT, document(history), format="json")

    assert [error["path"] for error in response.json()["errors"]] == [
        "preset.history[0].note",
        "preset.history[1].version",
        "preset.history[1].created_at",
        "preset.history[2]",
    ]


def test_a_bundle_names_the_preset_of_the_bad_history_and_imports_none(api):
    good = {"name": "Good", "parameters": {"tp-size": [1]}, "history": [entry(1)]}
    bad = {"name": "Bad", "parameters": {"tp-size": [1]}, "history": [{"version": "one", "content": CONTENT}]}

    response = api.post(IMPORT, {"version": "1.0", "presets": [good, bad]}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["presets[1].history[0].version"]
    assert not ParameterPreset.everything.exists()
    assert not PresetRevision.objects.exists()


def test_a_name_clash_late_in_a_bundle_leaves_no_history_behind(api, user):
    make_preset(name="Taken", created_by=user)
    first = {"name": "First", "parameters": {"tp-size": [1]}, "history": [entry(1), entry(2)]}
    second = {"name": "Taken", "parameters": {"tp-size": [1]}, "history": [entry(1)]}

    response = api.post(IMPORT, {"version": "1.0", "presets": [first, second]}, format="json")

    assert response.status_code == 409
    assert list(ParameterPreset.everything.values_list("name", flat=True)) == ["Taken"]
    assert PresetRevision.objects.count() == 1


def test_a_replace_refused_late_in_a_bundle_leaves_no_history_behind(api, other_user):
    make_preset(name="Grace's", created_by=other_user)
    first = {"name": "First", "parameters": {"tp-size": [1]}, "history": [entry(1)]}
    second = {"name": "Grace's", "parameters": {"tp-size": [4]}}

    response = api.post(f"{IMPORT}?on_conflict=replace", {"version": "1.0", "presets": [first, second]}, format="json")

    assert response.status_code == 403
    assert not ParameterPreset.objects.filter(name="First").exists()
    assert PresetRevision.objects.count() == 1


def test_a_null_or_empty_history_imports_like_a_plain_document(api):
    for name, history in (("A", None), ("B", [])):
        response = api.post(IMPORT, document(history, name=name), format="json")

        assert response.status_code == 201
        assert response.json()["version"] == 1


# parse_history on its own: no database


def test_parse_history_normalises_each_entry():
    entries, problems = parse_history(
        [entry(1, note="  Why  ", content={"name": " Old ", "parameters": {"--tp_size": 1}})]
    )

    assert problems == []
    assert entries == [
        {
            "version": 1,
            "event": "edited",
            "note": "Why",
            "created_by": None,
            "created_at": datetime(2025, 1, 31, 12, tzinfo=UTC),
            "content": {
                "name": "Old",
                "description": "",
                "category": "",
                "runtime": "",
                "parameters": {"tp-size": [1]},
                "metadata": {},
            },
        }
    ]
