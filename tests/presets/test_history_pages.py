"""The history and trash pages: versions newest first, the diff of two versions (whole page
and htmx fragment), one version, restoring a version, the trash and restoring from it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from presets.models import TRASH_DAYS, ParameterPreset, PresetRevision
from presets.seeding import seed_system_presets
from tests.factories import make_preset
from tests.html import Element, accessibility_problems, parse

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
TRASH = "/presets/trash/"

V1 = {
    "name": "Mine",
    "description": "",
    "category": "custom",
    "runtime": "",
    "parameters": {"tp-size": [1, 2], "schedule-policy": ["fcfs"]},
    "metadata": {},
}


def history_url(preset: ParameterPreset) -> str:
    return f"/presets/{preset.pk}/history/"


def version_url(preset: ParameterPreset, version: int) -> str:
    return f"/presets/{preset.pk}/history/{version}/"


def restore_url(preset: ParameterPreset, version: int) -> str:
    return f"/presets/{preset.pk}/history/{version}/restore/"


def untrash_url(preset: ParameterPreset) -> str:
    return f"/presets/trash/{preset.pk}/restore/"


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


def history_rows(response) -> list[list[str]]:
    """The versions table as text: version, what, who, when, note (the actions cell left out)."""
    table = page(response).find("table", class_="history-table")
    return [
        [cell.text for cell in row.iter() if cell.tag in {"th", "td"}][:5] for row in table.find("tbody").find_all("tr")
    ]


def diff_area(response) -> Element:
    return page(response).by_id("diff")


def diff_table(diff: Element, kind: str) -> dict[str, list[str]]:
    """A diff table (added, removed, changed, fields) as row header → the other cells' text."""
    table = diff.find("table", class_=f"diff-{kind}")
    if table is None:
        return {}
    return {
        row.find("th").text: [cell.text for cell in row.find_all("td")] for row in table.find("tbody").find_all("tr")
    }


def edit_via_page(client, preset: ParameterPreset, **changes: object) -> None:
    """Open the edit form and save it with ``changes`` (a change_note among them), as a browser would."""
    form = page(client.get(f"/presets/{preset.pk}/edit/"))
    preset.refresh_from_db()
    data = {
        "name": preset.name,
        "description": preset.description,
        "category": preset.category,
        "runtime": preset.runtime,
        "parameters": json.dumps(preset.parameters),
        "metadata": json.dumps(preset.metadata),
        "version": form.find("input", name="version").attrs["value"],
        "change_note": "",
    }
    for field, value in changes.items():
        data[field] = value if isinstance(value, str) else json.dumps(value)
    response = client.post(f"/presets/{preset.pk}/edit/", data)
    assert response.status_code == 302, response.content.decode()
    client.get(response["Location"])  # shows, and so clears, the "Saved" message
    preset.refresh_from_db()


def contents(preset: ParameterPreset) -> dict[int, dict]:
    return {revision.version: revision.content for revision in preset.revisions.all()}


@pytest.fixture
def edited(signed_in) -> ParameterPreset:
    """Created on the create page, then edited twice with notes: versions 1 to 3."""
    response = signed_in.post(
        "/presets/new/",
        {**V1, "parameters": json.dumps(V1["parameters"]), "metadata": "{}", "change_note": "First try"},
    )
    assert response.status_code == 302
    preset = ParameterPreset.objects.get(name="Mine")
    edit_via_page(
        signed_in,
        preset,
        parameters={"tp-size": [1, 2, 4], "schedule-policy": ["fcfs"], "max-running-requests": [64]},
        change_note="Try 4 GPUs and a request cap",
    )
    edit_via_page(
        signed_in,
        preset,
        description="Tuned on H100",
        runtime="sglang",
        parameters={"tp-size": [2, 4], "max-running-requests": [64]},
        metadata={"author": "ada"},
        change_note="1 GPU never wins",
    )
    assert preset.current_version == 3
    return preset


@pytest.fixture
def system_preset() -> ParameterPreset:
    """A system preset at version 2: seeded, then changed by a later release."""
    definition = {"name": "Shipped", "category": "general", "parameters": {"tp-size": [1]}}
    seed_system_presets([definition])
    seed_system_presets([{**definition, "parameters": {"tp-size": [1, 2]}}])
    preset = ParameterPreset.objects.get(name="Shipped")
    assert preset.current_version == 2
    return preset


# The history page


def test_history_lists_every_version_newest_first_with_what_who_and_note(signed_in, edited):
    response = signed_in.get(history_url(edited))

    assert response.status_code == 200
    rows = history_rows(response)
    assert [row[0] for row in rows] == ["v3 Current", "v2", "v1"]
    assert [row[1] for row in rows] == ["Edited", "Edited", "Created"]
    assert [row[2] for row in rows] == ["ada", "ada", "ada"]
    assert [row[4] for row in rows] == ["1 GPU never wins", "Try 4 GPUs and a request cap", "First try"]
    assert all(page(response).find("tr", id=f"version-{n}").find("time") is not None for n in (1, 2, 3))
    assert page(response).by_id("version-3").attrs["class"] == "current-version"


def test_detail_page_links_to_the_history_with_the_current_version(signed_in, edited):
    links = page(signed_in.get(f"/presets/{edited.pk}/")).find("div", class_="actions").find_all("a")

    history = [link for link in links if link.attrs["href"] == history_url(edited)]
    assert [link.text for link in history] == ["History (v3)"]


def test_each_row_links_to_its_version_and_to_the_diff_with_the_previous_one(signed_in, edited):
    document = page(signed_in.get(history_url(edited)))

    def links(version: int) -> dict[str, str]:
        cell = document.by_id(f"version-{version}").find("td", class_="row-actions")
        return {
            link.text.split(" (")[0].removesuffix(f" version {version}"): link.attrs["href"]
            for link in cell.find_all("a")
        }

    assert links(3) == {
        "View": version_url(edited, 3),
        "Compare with previous": f"{history_url(edited)}?from=2&to=3#diff",
    }
    assert links(1) == {"View": version_url(edited, 1)}


def test_the_author_of_a_version_made_by_no_one_known_shows_as_unknown_and_a_release_as_system(
    signed_in, system_preset, user
):
    preset = make_preset(name="Made by a script", created_by=None)

    assert [row[2] for row in history_rows(signed_in.get(history_url(preset)))] == ["unknown"]
    rows = history_rows(signed_in.get(history_url(system_preset)))
    assert [(row[1], row[2]) for row in rows] == [("System update", "system"), ("System update", "system")]


def test_history_compares_the_latest_version_with_the_one_before_by_default(signed_in, edited):
    response = signed_in.get(history_url(edited))

    diff = diff_area(response)
    assert diff.find("p", class_="diff-summary").text == (
        "From version 2 to version 3: 1 flag removed, 1 changed; description, runtime and metadata changed."
    )
    form = page(response).by_id("compare")
    assert form.find("select", name="from").find("option", selected="").attrs["value"] == "2"
    assert form.find("select", name="to").find("option", selected="").attrs["value"] == "3"


def test_the_diff_of_the_first_and_latest_versions_shows_every_change(signed_in, edited):
    response = signed_in.get(history_url(edited), {"from": "1", "to": "3"})

    assert response.status_code == 200
    diff = diff_area(response)
    assert diff_table(diff, "added") == {"--max-running-requests": ["64"]}
    assert diff_table(diff, "removed") == {"--schedule-policy": ["fcfs"]}
    assert diff_table(diff, "changed") == {"--tp-size": ["4", "1"]}
    fields = diff_table(diff, "fields")
    assert fields["Description"] == ["(empty)", "Tuned on H100"]
    assert fields["Runtime"] == ["any engine", "SGLang"]
    assert [json.loads(text) for text in fields["Metadata"]] == [{}, {"author": "ada"}]
    assert set(fields) == {"Description", "Runtime", "Metadata"}
    headers = diff.find("table", class_="diff-changed").find("thead").find_all("th")
    assert [header.text for header in headers] == ["Flag", "Values added", "Values removed"]
    # The whole page around it: the compare form shows the versions chosen.
    form = page(response).by_id("compare")
    assert form.find("select", name="from").find("option", selected="").attrs["value"] == "1"


def test_the_compare_form_works_without_javascript_and_swaps_only_the_diff_with_htmx(signed_in, edited):
    form = page(signed_in.get(history_url(edited))).by_id("compare")

    assert form.attrs["method"] == "get"
    assert form.attrs["action"] == history_url(edited)
    assert form.attrs["hx-get"] == history_url(edited)
    assert form.attrs["hx-target"] == "#diff"
    assert form.attrs["hx-push-url"] == "true"
    assert [select.attrs["name"] for select in form.find_all("select")] == ["from", "to"]
    options = [option.attrs["value"] for option in form.find("select", name="to").find_all("option")]
    assert options == ["3", "2", "1"]


def test_an_htmx_compare_answers_with_only_the_diff_fragment(signed_in, edited):
    response = signed_in.get(history_url(edited), {"from": "1", "to": "2"}, headers=HTMX)

    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    document = page(response)
    assert [element.tag for element in document.children if isinstance(element, Element)] == ["section"]
    assert document.find("section").attrs["id"] == "diff"
    assert document.find("h1") is None
    assert diff_table(document, "added") == {"--max-running-requests": ["64"]}
    assert diff_table(document, "changed") == {"--tp-size": ["4", "—"]}


BAD_VERSIONS = [
    ({"from": "abc", "to": "3"}, ["“abc” is not a version number; it has versions 1 to 3."]),
    ({"from": "1", "to": "9"}, ["This preset has no version 9; it has versions 1 to 3."]),
    ({"from": "0", "to": "3"}, ["This preset has no version 0; it has versions 1 to 3."]),
    ({"from": "-1", "to": "3"}, ["“-1” is not a version number; it has versions 1 to 3."]),
    ({"from": "1.5", "to": "3"}, ["“1.5” is not a version number; it has versions 1 to 3."]),
    ({"from": "1_0", "to": "3"}, ["“1_0” is not a version number; it has versions 1 to 3."]),
    ({"from": "9" * 5000, "to": "3"}, [f"This preset has no version {'9' * 40}; it has versions 1 to 3."]),
    (
        {"from": "x", "to": "y"},
        [
            "“x” is not a version number; it has versions 1 to 3.",
            "“y” is not a version number; it has versions 1 to 3.",
        ],
    ),
]


@pytest.mark.parametrize(
    ("query", "problems"),
    BAD_VERSIONS,
    ids=["word", "unknown", "zero", "negative", "decimal", "underscore", "thousands-of-digits", "both"],
)
@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
def test_a_bad_version_to_compare_is_explained_in_the_diff_area(signed_in, edited, query, problems, headers):
    response = signed_in.get(history_url(edited), query, headers=headers)

    assert response.status_code == 200
    box = diff_area(response).find("div", class_="error-summary")
    assert box.attrs["role"] == "alert"
    assert [item.text for item in box.find_all("li")] == problems
    assert diff_area(response).find("table") is None


def test_empty_versions_to_compare_mean_the_defaults(signed_in, edited):
    response = signed_in.get(history_url(edited), {"from": "", "to": ""})

    assert diff_area(response).find("p", class_="diff-summary").text.startswith("From version 2 to version 3:")


def test_a_version_compared_with_itself_is_identical(signed_in, edited):
    diff = diff_area(signed_in.get(history_url(edited), {"from": "2", "to": "2"}))

    assert diff.find("p", class_="identical").text == (
        "Version 2 compared with itself is identical; choose two different versions."
    )
    assert diff.find("table") is None


def test_an_older_version_may_be_compared_against_a_newer_one_backwards(signed_in, edited):
    diff = diff_area(signed_in.get(history_url(edited), {"from": "3", "to": "1"}))

    assert diff_table(diff, "added") == {"--schedule-policy": ["fcfs"]}
    assert diff_table(diff, "removed") == {"--max-running-requests": ["64"]}


def test_values_or_flags_only_in_another_order_are_shown_as_reordered(signed_in, user):
    preset = make_preset(name="Order", parameters={"tp-size": [1, 2], "schedule-policy": ["fcfs"]}, created_by=user)
    edit_via_page(signed_in, preset, parameters={"schedule-policy": ["fcfs"], "tp-size": [2, 1]})

    diff = diff_area(signed_in.get(history_url(preset)))

    assert diff_table(diff, "changed") == {"--tp-size": ["Same values, order changed"]}
    assert diff.find("p", class_="flags-reordered").text == "The flags appear in another order."


def test_the_history_of_a_preset_with_one_version_has_nothing_to_compare(signed_in, user):
    preset = make_preset(name="Fresh", created_by=user)

    response = signed_in.get(history_url(preset))

    assert response.status_code == 200
    assert [row[0] for row in history_rows(response)] == ["v1 Current"]
    assert page(response).find("form", id="compare") is None
    assert (
        diff_area(response).find("p").text == "Version 1 is the first version: there is nothing before it to compare."
    )


def test_the_history_of_an_unknown_or_trashed_preset_is_404(signed_in, edited, user):
    edited.trash(by=user)

    assert signed_in.get(history_url(edited)).status_code == 404
    assert signed_in.get(version_url(edited, 1)).status_code == 404
    assert signed_in.get("/presets/987654/history/").status_code == 404


def test_the_history_page_runs_the_same_queries_however_many_versions(signed_in, user):
    preset = make_preset(name="Busy", created_by=user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert signed_in.get(history_url(preset)).status_code == 200
        return len(captured)

    preset.parameters = {"tp-size": [2]}
    preset.save(by=user)
    few = queries()
    for size in range(3, 15):
        preset.parameters = {"tp-size": [size]}
        preset.save(by=user)

    assert queries() == few


# One version


def test_a_version_page_shows_that_versions_content_who_when_and_note(signed_in, edited):
    response = signed_in.get(version_url(edited, 1))

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "“Mine”, version 1"
    facts = document.find("dl", class_="facts")
    shown = dict(zip([dt.text for dt in facts.find_all("dt")], [dd.text for dd in facts.find_all("dd")], strict=True))
    assert shown["What"] == "Created"
    assert shown["Who"] == "ada"
    assert shown["Note"] == "First try"
    assert shown["Runtime"] == "any engine"
    assert shown["Combinations"] == "2"
    assert facts.find("time") is not None
    rows = document.find("table", class_="grid-table").find("tbody").find_all("tr")
    grid = {row.find("th").text: [value.text for value in row.find_all("span")] for row in rows}
    assert grid == {"--tp-size": ["1", "2"], "--schedule-policy": ["fcfs"]}


def test_an_old_version_offers_restore_and_a_diff_with_the_current_one(signed_in, edited):
    document = page(signed_in.get(version_url(edited, 1)))

    actions = document.find("div", class_="actions")
    assert actions.find("form").attrs["action"] == restore_url(edited, 1)
    assert actions.find("form").find("button").text == "Restore this version"
    compare = [link for link in actions.find_all("a") if link.text == "Compare with the current version"]
    assert compare[0].attrs["href"] == f"{history_url(edited)}?from=1&to=3#diff"


def test_the_current_version_offers_no_restore(signed_in, edited):
    document = page(signed_in.get(version_url(edited, 3)))

    assert "Current" in document.find("h1").text
    assert document.find("div", class_="actions").find("form") is None
    assert document.find("p", class_="note").text.startswith("This is the current version")


def test_another_users_preset_and_a_system_preset_offer_no_restore(signed_in, other_user, system_preset):
    others = make_preset(name="Theirs", parameters={"tp-size": [1]}, created_by=other_user)
    others.parameters = {"tp-size": [2]}
    others.save(by=other_user)

    for url in (version_url(others, 1), version_url(system_preset, 1)):
        response = signed_in.get(url)
        assert response.status_code == 200
        assert page(response).find("div", class_="actions").find("form") is None
    assert (
        "System presets are read-only."
        in page(signed_in.get(version_url(system_preset, 1))).find("p", class_="note").text
    )


@pytest.mark.parametrize("version", [0, 4, 99])
def test_an_unknown_version_is_404(signed_in, edited, version):
    assert signed_in.get(version_url(edited, version)).status_code == 404


# Restoring a version


def test_restore_adds_the_old_content_as_a_new_version_and_keeps_every_version(signed_in, edited, user):
    before = contents(edited)

    response = signed_in.post(restore_url(edited, 1))

    assert response.status_code == 302
    assert response["Location"] == history_url(edited)
    edited.refresh_from_db()
    assert edited.current_version == 4
    assert edited.content() == before[1]
    after = contents(edited)
    assert {version: after[version] for version in (1, 2, 3)} == before
    assert after[4] == before[1]
    latest = edited.revisions.get(version=4)
    assert (latest.event, latest.created_by, latest.note) == ("restored", user, "Restored version 1.")
    followed = signed_in.get(response["Location"])
    assert flashed(followed) == ["Restored version 1 of “Mine” as version 4."]
    assert [row[0] for row in history_rows(followed)] == ["v4 Current", "v3", "v2", "v1"]
    assert history_rows(followed)[0][1] == "Restored"
    assert diff_area(signed_in.get(history_url(edited), {"from": "1", "to": "4"})).find(
        "p", class_="identical"
    ).text == ("Versions 1 and 4 are identical.")


def test_staff_may_restore_a_version_of_another_users_preset(client, staff_user, edited):
    client.force_login(staff_user)

    assert client.post(restore_url(edited, 2)).status_code == 302

    edited.refresh_from_db()
    assert edited.current_version == 4
    assert edited.revisions.get(version=4).created_by == staff_user


def test_restore_by_another_user_is_forbidden_and_changes_nothing(client, other_user, edited):
    client.force_login(other_user)
    before = contents(edited)

    response = client.post(restore_url(edited, 1))

    assert response.status_code == 403
    assert contents(edited) == before


@pytest.mark.parametrize("who", ["user", "staff_user"])
def test_restoring_a_version_of_a_system_preset_is_forbidden(client, system_preset, request, who):
    client.force_login(request.getfixturevalue(who))

    response = client.post(restore_url(system_preset, 1))

    assert response.status_code == 403
    system_preset.refresh_from_db()
    assert system_preset.current_version == 2
    assert system_preset.parameters == {"tp-size": [1, 2]}


def test_restore_into_a_name_another_preset_has_now_is_refused_and_changes_nothing(signed_in, edited, other_user):
    edit_via_page(signed_in, edited, name="Renamed")
    make_preset(name="mine", created_by=other_user)  # took the old name, in another case
    before = contents(edited)

    response = signed_in.post(restore_url(edited, 1))

    assert response.status_code == 302
    assert response["Location"] == version_url(edited, 1)
    assert flashed(signed_in.get(response["Location"])) == [
        "Version 1 was not restored: another preset is named “Mine” now. Rename that preset first, then restore again."
    ]
    assert contents(edited) == before
    edited.refresh_from_db()
    assert (edited.name, edited.current_version) == ("Renamed", 4)


def test_restoring_the_current_version_records_nothing(signed_in, edited):
    response = signed_in.post(restore_url(edited, 3))

    assert response.status_code == 302
    assert flashed(signed_in.get(response["Location"])) == [
        "Version 3 is already the current version; nothing was restored."
    ]
    assert edited.revisions.count() == 3


def test_restore_refuses_get_and_unknown_versions(signed_in, edited):
    assert signed_in.get(restore_url(edited, 1)).status_code == 405
    assert signed_in.post(restore_url(edited, 9)).status_code == 404
    assert signed_in.post("/presets/987654/history/1/restore/").status_code == 404
    assert edited.revisions.count() == 3


# The change note


def test_the_edit_form_asks_for_a_change_note_just_above_the_save_button(signed_in, edited):
    form = page(signed_in.get(f"/presets/{edited.pk}/edit/")).find("form", class_="preset-form")

    rows = form.find_all("div", class_="form-row")
    assert rows[-1].attrs["id"] == "row-change_note"
    assert rows[-1].find("label").text == "Change note:"
    assert rows[-1].find("p", class_="help").text == "Why you changed it; shown in the history. At most 500 characters."
    note = rows[-1].find("input", name="change_note")
    assert (note.attrs["maxlength"], note.attrs.get("value", "")) == ("500", "")
    assert "required" not in note.attrs


def test_a_change_note_over_500_characters_is_refused_in_its_row(signed_in, edited):
    form = page(signed_in.get(f"/presets/{edited.pk}/edit/"))
    data = {
        "name": "Mine",
        "parameters": '{"tp-size": [8]}',
        "metadata": "{}",
        "category": "custom",
        "runtime": "",
        "version": form.find("input", name="version").attrs["value"],
        "change_note": "x" * 501,
    }

    response = signed_in.post(f"/presets/{edited.pk}/edit/", data)

    assert response.status_code == 422
    errors = [item.text for item in page(response).by_id("row-change_note").find_all("li")]
    assert errors == ["Ensure this value has at most 500 characters (it has 501)."]
    assert edited.revisions.count() == 3


def test_a_change_note_is_kept_on_the_version_the_edit_made_and_shown_in_the_history(signed_in, edited):
    edit_via_page(signed_in, edited, parameters={"tp-size": [8]}, change_note="  Only the big box now  ")

    assert edited.revisions.get(version=4).note == "Only the big box now"
    assert history_rows(signed_in.get(history_url(edited)))[0][4] == "Only the big box now"


# The trash


def test_the_list_page_links_to_the_trash(signed_in):
    links = page(signed_in.get("/presets/")).find("div", class_="page-header").find_all("a")

    assert [link.attrs["href"] for link in links if link.text == "Trash"] == [TRASH]


def test_the_trash_lists_the_users_own_deleted_presets_newest_deletion_first(signed_in, user, other_user):
    older = make_preset(name="Old", created_by=user)
    newer = make_preset(name="New", created_by=user)
    make_preset(name="Still here", created_by=user)
    make_preset(name="Theirs", created_by=other_user).trash(by=other_user)
    older.trash(by=user)
    newer.trash(by=user)
    ParameterPreset.everything.filter(pk=older.pk).update(deleted_at=timezone.now() - timedelta(days=2))
    older.refresh_from_db()

    response = signed_in.get(TRASH)

    assert response.status_code == 200
    rows = page(response).find("table", class_="trash-table").find("tbody").find_all("tr")
    assert [row.find("th").text for row in rows] == ["New (v1)", "Old (v1)"]
    cells = [cell.text for cell in rows[1].find_all("td")]
    assert cells[0] == "ada"
    assert cells[1] == older.deleted_at.strftime("%Y-%m-%d %H:%M")
    assert cells[2] == (older.deleted_at + timedelta(days=TRASH_DAYS)).strftime("%Y-%m-%d")
    assert rows[1].find_all("time")[1].attrs["datetime"] == older.purge_after.isoformat()
    assert rows[1].find("form").attrs["action"] == untrash_url(older)
    assert rows[1].find("form").find("input", name="name") is None


def test_staff_see_every_deleted_preset_and_who_made_it(client, staff_user, user, other_user):
    make_preset(name="Ada's", created_by=user).trash(by=user)
    make_preset(name="Grace's", created_by=other_user).trash(by=staff_user)
    client.force_login(staff_user)

    rows = page(client.get(TRASH)).find("table", class_="trash-table").find("tbody").find_all("tr")

    shown = {row.find("th").text: [cell.text for cell in row.find_all("td")[:2]] for row in rows}
    assert shown == {"Grace's (v1)": ["grace", "linus"], "Ada's (v1)": ["ada", "ada"]}


def test_an_empty_trash_says_so(signed_in):
    assert page(signed_in.get(TRASH)).find("p", class_="empty").text == "The trash is empty."


def test_delete_then_restore_from_the_trash_brings_the_preset_back_with_its_history(signed_in, edited):
    assert signed_in.post(f"/presets/{edited.pk}/delete/").status_code == 302
    assert signed_in.get(history_url(edited)).status_code == 404

    response = signed_in.post(untrash_url(edited))

    assert response.status_code == 302
    assert response["Location"] == f"/presets/{edited.pk}/"
    assert flashed(signed_in.get(response["Location"])) == ["Restored “Mine” from the trash."]
    edited.refresh_from_db()
    assert not edited.in_trash
    assert ParameterPreset.objects.get(name="Mine") == edited
    assert [row[0] for row in history_rows(signed_in.get(history_url(edited)))] == ["v3 Current", "v2", "v1"]
    assert page(signed_in.get(TRASH)).find("table", class_="trash-table") is None


def test_the_name_of_a_deleted_preset_is_free_for_a_new_one(signed_in, edited):
    signed_in.post(f"/presets/{edited.pk}/delete/")

    response = signed_in.post("/presets/new/", {"name": "mine", "parameters": '{"tp-size": [1]}', "metadata": "{}"})

    assert response.status_code == 302
    assert ParameterPreset.objects.get().name == "mine"
    assert ParameterPreset.everything.count() == 2


def test_restoring_into_a_name_taken_meanwhile_asks_for_a_new_one_then_restores_under_it(signed_in, edited, user):
    signed_in.post(f"/presets/{edited.pk}/delete/")
    make_preset(name="Mine", created_by=user)

    refused = signed_in.post(untrash_url(edited))

    assert refused.status_code == 422
    assert (
        page(refused).find("div", class_="error-summary").text == "“Mine” was not restored: choose a new name for it."
    )
    row = page(refused).by_id(f"trashed-{edited.pk}")
    form = row.find("form", class_="rename-form")
    assert form.attrs["action"] == untrash_url(edited)
    assert [item.text for item in form.find_all("li")] == ["Another preset is named “Mine” now; choose a new name."]
    assert form.find("input", name="name").attrs["value"] == "Mine (restored)"  # a free name, suggested
    assert ParameterPreset.everything.get(pk=edited.pk).in_trash

    taken_again = signed_in.post(untrash_url(edited), {"name": " MINE "})
    assert taken_again.status_code == 422
    assert [item.text for item in page(taken_again).by_id(f"trashed-{edited.pk}").find_all("li")] == [
        "Another preset is named “MINE” now; choose a new name."
    ]

    restored = signed_in.post(untrash_url(edited), {"name": "  Mine, restored "})

    assert restored.status_code == 302
    assert flashed(signed_in.get(restored["Location"])) == ["Restored “Mine, restored” from the trash."]
    edited.refresh_from_db()
    assert (edited.name, edited.in_trash, edited.current_version) == ("Mine, restored", False, 4)
    assert edited.revisions.get(version=4).note == "Restored from the trash as “Mine, restored”."


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "A name is required."),
        ("   ", "A name is required."),
        ("x" * 256, "At most 255 characters are allowed, got 256."),
        ("tab\there", "Control characters are not allowed in a name."),
    ],
    ids=["empty", "blank", "too-long", "control-character"],
)
def test_an_invalid_new_name_is_refused_in_the_row_and_restores_nothing(signed_in, edited, user, name, error):
    edited.trash(by=user)

    response = signed_in.post(untrash_url(edited), {"name": name})

    assert response.status_code == 422
    form = page(response).by_id(f"trashed-{edited.pk}").find("form", class_="rename-form")
    assert [item.text for item in form.find_all("li")] == [error]
    assert form.find("input", name="name").attrs["value"] == name
    assert ParameterPreset.everything.get(pk=edited.pk).in_trash


def test_restoring_another_users_preset_from_the_trash_is_forbidden(client, other_user, edited, user):
    edited.trash(by=user)
    client.force_login(other_user)

    assert client.post(untrash_url(edited)).status_code == 403
    assert ParameterPreset.everything.get(pk=edited.pk).in_trash
    assert page(client.get(TRASH)).find("table", class_="trash-table") is None


def test_staff_may_restore_another_users_preset_from_the_trash(client, staff_user, edited, user):
    edited.trash(by=user)
    client.force_login(staff_user)

    assert client.post(untrash_url(edited)).status_code == 302
    assert not ParameterPreset.everything.get(pk=edited.pk).in_trash


def test_restoring_a_preset_not_in_the_trash_is_404_and_get_is_405(signed_in, edited):
    assert signed_in.post(untrash_url(edited)).status_code == 404
    assert signed_in.post("/presets/trash/987654/restore/").status_code == 404
    edited.trash(by=None)
    assert signed_in.get(untrash_url(edited)).status_code == 405
    assert ParameterPreset.everything.get(pk=edited.pk).in_trash


def test_the_trash_page_runs_the_same_queries_however_many_presets_it_holds(signed_in, user):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert signed_in.get(TRASH).status_code == 200
        return len(captured)

    make_preset(name="Gone 0", created_by=user).trash(by=user)
    few = queries()
    for number in range(1, 12):
        make_preset(name=f"Gone {number}", created_by=user).trash(by=user)

    assert queries() == few


# Signed out, and accessibility


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/presets/{pk}/history/"),
        ("get", "/presets/{pk}/history/1/"),
        ("post", "/presets/{pk}/history/1/restore/"),
        ("get", "/presets/trash/"),
        ("post", "/presets/trash/{pk}/restore/"),
    ],
)
def test_signed_out_visitors_are_sent_to_log_in_and_change_nothing(client, user, method, url):
    preset = make_preset(name="Mine", created_by=user)
    preset.parameters = {"tp-size": [4]}
    preset.save(by=user)
    url = url.format(pk=preset.pk)

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"
    assert PresetRevision.objects.filter(preset=preset).count() == 2


@pytest.mark.parametrize(
    ("url", "query"),
    [
        ("history", {}),
        ("history", {"from": "1", "to": "3"}),
        ("history", {"from": "nope"}),
        ("version-old", {}),
        ("version-current", {}),
        ("trash", {}),
        ("edit", {}),
    ],
    ids=["history", "history-diff", "history-bad-version", "old-version", "current-version", "trash", "edit-form"],
)
def test_every_history_page_labels_its_controls_and_has_one_heading(signed_in, edited, user, url, query):
    make_preset(name="Deleted", created_by=user).trash(by=user)
    address = {
        "history": history_url(edited),
        "version-old": version_url(edited, 1),
        "version-current": version_url(edited, 3),
        "trash": TRASH,
        "edit": f"/presets/{edited.pk}/edit/",
    }[url]

    response = signed_in.get(address, query)

    assert response.status_code == 200
    assert accessibility_problems(response.content) == []


def test_the_trash_asking_for_a_new_name_stays_accessible(signed_in, edited, user):
    edited.trash(by=user)

    response = signed_in.post(untrash_url(edited), {"name": ""})

    assert response.status_code == 422
    assert accessibility_problems(response.content) == []
