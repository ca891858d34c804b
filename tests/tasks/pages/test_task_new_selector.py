"""The New task page's preset selector: without JavaScript every button posts the whole form; with
htmx the same posts answer with fragments; Apply puts the merge in the editor."""

from __future__ import annotations

import json

import pytest

from presets.forms import format_grid
from presets.models import ParameterPreset
from tasks.models import Task
from tests.factories import make_preset, system_preset_names
from tests.tasks.pages.helpers import (
    HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
    HTMX,
    NEW,
    UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT,
    assert_is_fragment,
    checked_strategy,
    chip_ids,
    chips,
    combinations_line,
    conflicts,
    editor_text,
    merge_preview,
    page,
    preview_values,
    use_presets_ticked,
    with_presets,
)

pytestmark = pytest.mark.django_db


# The selector without JavaScript: every button posts the whole form


def test_adding_presets_makes_chips_in_the_order_they_were_added(signed_in, high, memory):
    first = signed_in.post(NEW, with_presets([], f"add:{high.pk}"))
    second = signed_in.post(NEW, with_presets([high], f"add:{memory.pk}"))

    assert first.status_code == 200
    assert chips(first) == ["High Throughput"]
    assert chip_ids(second) == [str(high.pk), str(memory.pk)]
    assert chips(second) == ["High Throughput", "Memory Efficient"]
    assert use_presets_ticked(second)
    assert Task.objects.count() == 0


def test_an_added_preset_can_not_be_added_twice(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], f"add:{high.pk}"))

    assert chips(response) == ["High Throughput", "Memory Efficient"]
    add_high = page(response).by_id("preset-selector").find("button", value=f"add:{high.pk}")
    assert "disabled" in add_high.attrs


@pytest.mark.parametrize(
    ("action", "order"),
    [
        pytest.param("left:memory", ["Memory Efficient", "High Throughput", "Low Latency"], id="memory-left"),
        pytest.param("right:memory", ["High Throughput", "Low Latency", "Memory Efficient"], id="memory-right"),
        pytest.param("left:high", ["High Throughput", "Memory Efficient", "Low Latency"], id="first-left-stays"),
        pytest.param("right:latency", ["High Throughput", "Memory Efficient", "Low Latency"], id="last-right-stays"),
        pytest.param("remove:memory", ["High Throughput", "Low Latency"], id="remove-middle"),
        pytest.param("refresh", ["High Throughput", "Memory Efficient", "Low Latency"], id="refresh"),
    ],
)
def test_chip_buttons_reorder_and_remove_presets(signed_in, high, memory, latency, action, order):
    by_name = {"high": high, "memory": memory, "latency": latency}
    verb, _, name = action.partition(":")
    action = f"{verb}:{by_name[name].pk}" if name else verb

    response = signed_in.post(NEW, with_presets([high, memory, latency], action))

    assert response.status_code == 200
    assert chips(response) == order
    assert chip_ids(response) == [str(ParameterPreset.objects.get(name=name).pk) for name in order]


def test_the_first_chip_cannot_move_earlier_nor_the_last_later(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "refresh"))

    selector = page(response).by_id("preset-selector")
    assert "disabled" in selector.find("button", value=f"left:{high.pk}").attrs
    assert "disabled" not in selector.find("button", value=f"right:{high.pk}").attrs
    assert "disabled" not in selector.find("button", value=f"left:{memory.pk}").attrs
    assert "disabled" in selector.find("button", value=f"right:{memory.pk}").attrs


def test_the_union_preview_shows_every_value_and_warns_about_the_disjoint_flags(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "refresh", strategy="union"))

    assert preview_values(response) == {
        "tp-size": ["1", "2", "4"],
        "mem-fraction-static": ["0.7", "0.75", "0.9"],
        "schedule-policy": ["fcfs"],
        "enable-mixed-chunk": ["true"],
        "chunked-prefill-size": ["2048"],
    }
    assert (
        "⚠ mem-fraction-static: High Throughput wants 0.9; Memory Efficient wants 0.7, 0.75 — union will try all three"
        in conflicts(response)
    )
    assert "⚠ tp-size: High Throughput wants 2, 4; Memory Efficient wants 1 — union will try all three" in conflicts(
        response
    )
    assert combinations_line(response).text == "9 combinations, 6 skipped"


def test_the_preview_says_which_preset_each_value_came_from(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "refresh"))

    row = next(
        row for row in merge_preview(response).find("tbody").find_all("tr") if row.find("th").text == "--tp-size"
    )
    assert [value.text for value in row.find_all("span", class_="value")] == [
        "1 Memory Efficient",
        "2 High Throughput",
        "4 High Throughput",
    ]


def test_last_wins_takes_the_later_preset_and_says_memory_efficient_overrode(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "refresh", strategy="last_wins"))

    assert checked_strategy(response) == "last_wins"
    values = preview_values(response)
    assert values["tp-size"] == ["1"]
    assert values["mem-fraction-static"] == ["0.7", "0.75"]
    assert conflicts(response) == [
        "⚠ tp-size overridden by Memory Efficient (was [2, 4], now [1])",
        "⚠ mem-fraction-static overridden by Memory Efficient (was [0.9], now [0.7, 0.75])",
    ]
    assert combinations_line(response).text == "2 combinations"


def test_moving_a_chip_changes_what_last_wins_keeps(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], f"left:{memory.pk}", strategy="last_wins"))

    assert chips(response) == ["Memory Efficient", "High Throughput"]
    assert preview_values(response)["tp-size"] == ["2", "4"]
    assert preview_values(response)["mem-fraction-static"] == ["0.9"]
    assert "⚠ tp-size overridden by High Throughput (was [1], now [2, 4])" in conflicts(response)


@pytest.mark.parametrize(
    ("values", "combinations", "warned"),
    [
        pytest.param(20, 500, False, id="500-no-warning"),
        pytest.param(21, 525, True, id="525-warned"),
    ],
)
def test_a_merge_of_more_than_500_combinations_is_warned_about(signed_in, values, combinations, warned):
    wide = make_preset(name="Wide", parameters={"max-running-requests": list(range(1, 26))})
    deep = make_preset(name="Deep", parameters={"chunked-prefill-size": list(range(1, values + 1))})

    response = signed_in.post(NEW, with_presets([wide, deep], "refresh"))

    line = combinations_line(response)
    assert line.text.startswith(f"{combinations} combinations")
    assert ("more than 500 experiments" in line.text) is warned
    assert ("too-many" in line.attrs["class"].split()) is warned


def available(response) -> list[str]:
    """The presets the selector offers to add, by name."""
    options = page(response).by_id("preset-selector").find("ul", class_="preset-options")
    return [name.text for name in options.find_all("span", class_="option-name")]


def test_the_selector_finds_presets_by_name(signed_in, system_presets):
    response = signed_in.post(NEW, with_presets([], "refresh", preset_search="THROUGH"))

    assert available(response) == ["High Throughput"]
    assert page(response).by_id("id_preset_search").attrs["value"] == "THROUGH"


def test_the_selector_offers_the_runtimes_presets_and_the_any_engine_ones(signed_in, system_presets):
    make_preset(name="Any engine", runtime="")
    make_preset(name="For vLLM", runtime="vllm", parameters={"tensor-parallel-size": [1]})

    vllm = signed_in.post(NEW, with_presets([], "refresh", runtime="vllm"), headers=HTMX)
    sglang = signed_in.post(NEW, with_presets([], "refresh", runtime="sglang"), headers=HTMX)

    # System presets first, then the users' ones; each by name.
    assert available(vllm) == [*sorted(system_preset_names("vllm")), "Any engine", "For vLLM"]
    assert "Balanced (vLLM)" in available(vllm)
    assert page(vllm).find("h2").text == "Presets for vLLM and any engine"
    assert available(sglang) == ["Balanced", "High Throughput", "Low Latency", "Memory Efficient", "Any engine"]
    assert available(sglang) == [*sorted(system_preset_names("sglang")), "Any engine"]


def test_a_search_that_finds_nothing_says_so(signed_in, system_presets):
    response = signed_in.post(NEW, with_presets([], "refresh", preset_search="nothing like this"))

    assert available(response) == []
    options = page(response).by_id("preset-selector").find("ul", class_="preset-options")
    assert options.text == "No preset fits “nothing like this”."


def test_with_presets_ticked_but_none_chosen_the_preview_invites_adding_some(signed_in, system_presets):
    response = signed_in.post(NEW, with_presets([], "refresh"))

    assert merge_preview(response).text == "Add presets to see their merge."


# Apply: the merge goes into the editor; later selector actions leave the editor alone


def test_apply_copies_the_merged_grid_into_the_parameters_editor(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "apply", parameters=""))

    assert response.status_code == 200
    assert editor_text(response) == format_grid(UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT)
    assert json.loads(editor_text(response)) == UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert page(response).by_id("parameters-preview").find("p").text == "Valid: 9 combinations."
    assert Task.objects.count() == 0


def test_apply_replaces_what_was_in_the_editor(signed_in, high, memory):
    response = signed_in.post(
        NEW, with_presets([high, memory], "apply", strategy="last_wins", parameters='{"tp-size": [8]}')
    )

    assert json.loads(editor_text(response)) == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS


def test_apply_with_nothing_selected_says_so_and_keeps_the_editor(signed_in, system_presets):
    response = signed_in.post(NEW, with_presets([], "apply", parameters='{"tp-size": [8]}'))

    assert response.status_code == 200
    assert editor_text(response) == '{"tp-size": [8]}'
    problems = page(response).by_id("preset-selector").find("ul", class_="errorlist").find_all("li")
    assert [problem.text for problem in problems] == ["Nothing to apply: select presets whose merge has parameters."]


@pytest.mark.parametrize(
    "action",
    ["add:latency", "remove:memory", "left:memory", "right:high", "refresh"],
    ids=["add", "remove", "left", "right", "refresh"],
)
def test_selector_actions_after_apply_leave_a_hand_edited_grid_as_typed(
    signed_in, high, memory, latency, system_presets, action
):
    applied = editor_text(signed_in.post(NEW, with_presets([high, memory], "apply")))
    edited = applied.replace("[0.7, 0.75, 0.9]", "[0.8]") + "\n"
    assert edited != applied
    by_name = {"high": high, "memory": memory, "latency": latency}
    verb, _, name = action.partition(":")
    action = f"{verb}:{by_name[name].pk}" if name else verb

    response = signed_in.post(NEW, with_presets([high, memory], action, parameters=edited))

    assert response.status_code == 200
    assert editor_text(response) == edited


def test_selector_actions_keep_the_other_fields_as_typed(signed_in, high, memory):
    typed = {"name": "Half typed", "model": "Qwen/Qwen2.5-7B", "gpus": "4", "concurrency_levels": "2, 4"}

    response = signed_in.post(NEW, with_presets([high], f"add:{memory.pk}", **typed))

    document = page(response)
    assert {name: document.find("input", name=name).attrs["value"] for name in typed} == typed


# htmx: the same posts answer with fragments


@pytest.mark.parametrize("verb", ["add", "remove", "left", "right", "refresh"])
def test_with_htmx_a_selector_action_answers_only_the_selector(signed_in, high, memory, latency, verb):
    action = {"add": f"add:{latency.pk}", "refresh": "refresh"}.get(verb, f"{verb}:{memory.pk}")
    expected = {
        "add": ["High Throughput", "Memory Efficient", "Low Latency"],
        "remove": ["High Throughput"],
        "left": ["Memory Efficient", "High Throughput"],
        "right": ["High Throughput", "Memory Efficient"],
        "refresh": ["High Throughput", "Memory Efficient"],
    }[verb]

    response = signed_in.post(NEW, with_presets([high, memory], action), headers=HTMX)

    fragment = assert_is_fragment(response, "preset-selector")
    assert fragment.find("textarea") is None
    assert chips(response) == expected
    assert merge_preview(response).find("table") is not None


def test_with_htmx_the_selector_fragment_carries_the_strategy_and_its_preview(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "refresh", strategy="last_wins"), headers=HTMX)

    assert_is_fragment(response, "preset-selector")
    assert checked_strategy(response) == "last_wins"
    assert preview_values(response)["tp-size"] == ["1"]
    assert combinations_line(response).text == "2 combinations"


def test_without_javascript_the_preview_action_renders_the_whole_page(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "preview", strategy="last_wins"))

    assert response.status_code == 200
    assert page(response).find("textarea", name="parameters") is not None
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert preview_values(response)["tp-size"] == ["1"]


def test_with_htmx_apply_answers_only_the_parameters_editor(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "apply", parameters=""), headers=HTMX)

    fragment = assert_is_fragment(response, "parameters-editor")
    assert fragment.find("input", name="presets") is None
    assert editor_text(response) == format_grid(UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT)
    assert page(response).by_id("parameters-preview").find("p").text == "Valid: 9 combinations."


def test_with_htmx_apply_with_nothing_selected_keeps_the_editor(signed_in, system_presets):
    response = signed_in.post(NEW, with_presets([], "apply", parameters='{"tp-size": [8]}'), headers=HTMX)

    assert_is_fragment(response, "parameters-editor")
    assert editor_text(response) == '{"tp-size": [8]}'


def test_the_selector_buttons_target_the_fragments_the_view_answers_with(signed_in, high, memory):
    document = page(signed_in.post(NEW, with_presets([high, memory], "refresh")))

    selector = document.by_id("preset-selector")
    for button in selector.find_all("button", name="action"):
        if button.attrs["value"] == "refresh":
            continue
        target = "#parameters-editor" if button.attrs["value"] == "apply" else "#preset-selector"
        assert (button.attrs["hx-post"], button.attrs["hx-target"]) == (NEW, target), button
