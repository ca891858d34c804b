"""The merge preview's own view (tasks:preview), what the strategy radios ask for: a GET of the
selector's fields and the engine and GPUs, answered with the ``#merge-preview`` fragment alone,
always 200, problems shown in it, and nothing written."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tests.factories import make_preset, make_task
from tests.tasks.pages.helpers import (
    HTMX,
    NEW,
    assert_is_fragment,
    combinations_line,
    edit_url,
    merge_preview,
    page,
    preview_values,
    with_presets,
)

pytestmark = pytest.mark.django_db

PREVIEW = "/tasks/preview/"


def preview_query(presets: list[ParameterPreset], strategy: str = "union", **extra: str) -> dict:
    """What a strategy radio sends (hx-get, hx-include): the selector's fields, engine and GPUs."""
    return {
        "selector_present": "1",
        "use_presets": "on",
        "presets": [str(preset.pk) for preset in presets],
        "preset_search": "",
        "merge_strategy": strategy,
        "runtime": "sglang",
        "gpus": "1",
        **extra,
    }


def test_a_preview_answers_the_merge_preview_alone(signed_in, high, memory):
    response = signed_in.get(PREVIEW, preview_query([high, memory], "last_wins"), headers=HTMX)

    fragment = assert_is_fragment(response, "merge-preview")
    assert fragment.find("ul", class_="preset-options") is None
    assert fragment.find("li", class_="chip") is None
    assert preview_values(response)["tp-size"] == ["1"]
    assert combinations_line(response).text == "2 combinations"


@pytest.mark.parametrize("strategy", ["union", "intersection", "last_wins"])
def test_a_preview_shows_what_the_whole_form_shows_for_the_same_selection(signed_in, high, memory, strategy):
    whole = signed_in.post(NEW, with_presets([high, memory], "refresh", strategy=strategy))

    response = signed_in.get(PREVIEW, preview_query([high, memory], strategy), headers=HTMX)

    assert merge_preview(response).text == merge_preview(whole).text
    assert merge_preview(response).text  # the merge, or why there is none


def test_a_preview_writes_nothing(signed_in, user, high, memory, django_assert_num_queries):
    presets_before = list(ParameterPreset.objects.values_list("pk", "updated_at", "current_version"))

    # The session and the user, the presets to merge, the selected ones for the chips: reads only.
    with django_assert_num_queries(3) as queries:
        signed_in.get(PREVIEW, preview_query([high, memory]), headers=HTMX)

    assert not any(query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for query in queries)
    assert not Task.objects.exists()
    assert list(ParameterPreset.objects.values_list("pk", "updated_at", "current_version")) == presets_before


def test_a_preview_counts_the_gpus_sent(signed_in, high, memory):
    one = signed_in.get(PREVIEW, preview_query([high, memory]), headers=HTMX)
    eight = signed_in.get(PREVIEW, preview_query([high, memory], gpus="8"), headers=HTMX)

    assert combinations_line(one).text == "9 combinations, 6 skipped"
    assert combinations_line(eight).text == "9 combinations"


def test_a_preview_with_every_preset_removed_invites_adding_some(signed_in, built_from_presets):
    response = signed_in.get(PREVIEW, preview_query([]), headers=HTMX)

    assert_is_fragment(response, "merge-preview")
    assert merge_preview(response).text == "Add presets to see their merge."


def test_a_missing_preset_is_said_to_be_left_out_and_the_rest_merged(signed_in, high):
    gone = make_preset(name="Gone soon", parameters={"tp-size": [8]}).pk
    ParameterPreset.everything.filter(pk=gone).delete()

    response = signed_in.get(PREVIEW, {**preview_query([high]), "presets": [str(high.pk), str(gone)]}, headers=HTMX)

    fragment = assert_is_fragment(response, "merge-preview")
    assert [item.text for item in fragment.find("ul", class_="errorlist").find_all("li")] == [
        f"Preset {gone} no longer exists and was left out."
    ]
    assert preview_values(response)["tp-size"] == ["2", "4"]


def test_bad_ids_and_an_unknown_strategy_are_shown_in_the_fragment_with_200(signed_in, high):
    query = {**preview_query([high], "best"), "presets": ["abc", str(high.pk), "0", str(high.pk)]}

    response = signed_in.get(PREVIEW, query, headers=HTMX)

    fragment = assert_is_fragment(response, "merge-preview")
    assert [item.text for item in fragment.find("ul", class_="errorlist").find_all("li")] == [
        "“abc” is not a preset id.",
        "“0” is not a preset id.",
        "Unknown merge strategy; using union.",
    ]
    assert preview_values(response)["tp-size"] == ["2", "4"]


def test_more_presets_than_a_merge_takes_are_said_and_the_first_ones_kept(signed_in, user):
    presets = [make_preset(name=f"P{number}", parameters={"tp-size": [number]}) for number in range(1, 52)]

    response = signed_in.get(PREVIEW, preview_query(presets), headers=HTMX)

    problems = merge_preview(response).find("ul", class_="errorlist").find_all("li")
    assert [item.text for item in problems] == ["At most 50 presets can be merged at once, got 51."]
    assert len(preview_values(response)["tp-size"]) == 50


def test_a_preview_after_a_preset_is_edited_shows_the_edit(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1, 2]}, created_by=user)
    other = make_preset(name="Other", parameters={"schedule-policy": ["lpm"]})
    before = signed_in.get(PREVIEW, preview_query([mine, other]), headers=HTMX)

    mine.parameters = {"tp-size": [4]}
    mine.save(by=user)
    after = signed_in.get(PREVIEW, preview_query([mine, other]), headers=HTMX)

    assert preview_values(before)["tp-size"] == ["1", "2"]
    assert preview_values(after)["tp-size"] == ["4"]


def test_a_preview_after_a_preset_is_renamed_credits_the_new_name(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)
    other = make_preset(name="Other", parameters={"tp-size": [2]})

    mine.name = "Renamed"
    mine.save(by=user)
    after = signed_in.get(PREVIEW, preview_query([mine, other]), headers=HTMX)

    assert "Renamed" in merge_preview(after).text
    assert "Mine" not in merge_preview(after).text


def test_a_preview_after_a_preset_is_trashed_says_it_was_left_out(signed_in, user, high):
    mine = make_preset(name="Mine", parameters={"tp-size": [8]}, created_by=user)

    mine.trash(by=user)
    after = signed_in.get(PREVIEW, preview_query([high, mine]), headers=HTMX)

    assert f"Preset {mine.pk} no longer exists and was left out." in merge_preview(after).text
    assert "8" not in preview_values(after)["tp-size"]


def test_apply_in_the_preview_posts_to_the_form_it_is_shown_in(signed_in, user, high, memory):
    task = make_task(created_by=user)

    def apply_target(shown_in: str) -> str:
        headers = {**HTMX, "HX-Current-URL": f"http://testserver{shown_in}"}
        response = signed_in.get(PREVIEW, preview_query([high, memory]), headers=headers)
        return merge_preview(response).find("button", value="apply").attrs["hx-post"]

    assert apply_target(NEW) == NEW
    assert apply_target(edit_url(task)) == edit_url(task)
    assert apply_target("/presets/") == NEW  # never a page the form is not on
    assert apply_target("//evil.example/tasks/new/") == NEW


def test_a_preview_without_htmx_is_the_fragment_too(signed_in, high, memory):
    response = signed_in.get(PREVIEW, preview_query([high, memory], "last_wins"))

    assert_is_fragment(response, "merge-preview")
    assert merge_preview(response).find("button", value="apply").attrs["hx-post"] == NEW


def test_a_preview_is_a_read(signed_in, high, memory):
    response = signed_in.post(PREVIEW, preview_query([high, memory]))

    assert response.status_code == 405


def test_a_preview_from_a_signed_out_browser_goes_to_the_login_page(client, high, memory):
    response = client.get(PREVIEW, preview_query([high, memory]), headers={**HTMX, "HX-Current-URL": NEW})

    assert response.headers["HX-Redirect"].startswith("/login/?next=")


def test_the_strategy_radios_get_the_preview_with_the_selector_engine_and_gpus(signed_in, high, memory):
    document = page(signed_in.post(NEW, with_presets([high, memory], "refresh")))

    radios = document.by_id("preset-selector").find_all("input", name="merge_strategy")
    assert {radio.attrs["value"] for radio in radios} == {"union", "intersection", "last_wins"}
    for radio in radios:
        assert (radio.attrs["hx-get"], radio.attrs["hx-target"]) == (PREVIEW, "#merge-preview")
        assert radio.attrs["hx-include"] == "closest fieldset.section, #id_runtime, #id_gpus"
        assert radio.attrs["hx-sync"] == "closest fieldset:queue last"
    # What the include finds: the selector's own fieldset holds its switch, chips and search.
    section = next(
        element
        for element in document.by_id("preset-selector").ancestors()
        if element.tag == "fieldset" and "section" in element.attrs.get("class", "").split()
    )
    assert {field.attrs["name"] for field in section.find_all("input")} >= {
        "selector_present",
        "use_presets",
        "presets",
        "preset_search",
        "merge_strategy",
    }
    assert document.by_id("id_runtime").attrs["name"] == "runtime"
    assert document.by_id("id_gpus").attrs["name"] == "gpus"
