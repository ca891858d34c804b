"""The Tasks pages through the test client: the New/Edit form and its preset selector without
JavaScript first (every button is a plain POST with an ``action``), then the htmx fragments;
then the list, detail, duplicate, delete and "save grid as preset" pages."""

from __future__ import annotations

import json

import pytest
from django.core.cache import caches
from django.http import QueryDict

from presets.forms import format_grid
from presets.models import ParameterPreset
from tasks.forms import PresetSelection
from tasks.models import Task, TaskStatus
from tests.factories import make_preset, make_task, system_preset_names
from tests.html import Element, accessibility_problems, parse

pytestmark = pytest.mark.django_db

NEW = "/tasks/new/"
LIST = "/tasks/"
HTMX = {"HX-Request": "true"}

UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT = {
    "tp-size": [1, 2, 4],
    "mem-fraction-static": [0.7, 0.75, 0.9],
    "schedule-policy": ["fcfs"],
    "enable-mixed-chunk": [True],
    "chunked-prefill-size": [2048],
}
HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS = {
    "tp-size": [1],
    "mem-fraction-static": [0.7, 0.75],
    "schedule-policy": ["fcfs"],
    "enable-mixed-chunk": [True],
    "chunked-prefill-size": [2048],
}


def edit_url(task: Task) -> str:
    return f"/tasks/{task.pk}/edit/"


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


def row_errors(response, field: str) -> list[str]:
    """The errors shown inside a field's row of the form."""
    return [item.text for item in page(response).by_id(f"row-{field}").find_all("li")]


def chips(response) -> list[str]:
    """The selected presets' names, in merge order, as the chips show them."""
    selector = page(response).by_id("preset-selector")
    names = [chip.find("span", class_="chip-name").text for chip in selector.find_all("li", class_="chip")]
    return [name.split(". ", 1)[1] for name in names]


def chip_ids(response) -> list[str]:
    """The hidden ``presets`` inputs the chips post back, in order."""
    return [field.attrs["value"] for field in page(response).by_id("preset-selector").find_all("input", name="presets")]


def checked_strategy(response) -> str:
    radios = page(response).by_id("preset-selector").find_all("input", name="merge_strategy")
    return next(radio.attrs["value"] for radio in radios if "checked" in radio.attrs)


def use_presets_ticked(response) -> bool:
    return "checked" in page(response).by_id("id_use_presets").attrs


def merge_preview(response) -> Element:
    return page(response).by_id("merge-preview")


def preview_values(response) -> dict[str, list[str]]:
    """The merge preview's table: each flag and the values it will try, as shown."""
    table = merge_preview(response).find("table")
    rows = {}
    for row in table.find("tbody").find_all("tr"):
        flag = row.find("th").text.removeprefix("--")
        rows[flag] = [value.children[0].strip() for value in row.find_all("span", class_="value")]
    return rows


def combinations_line(response) -> Element:
    return merge_preview(response).find("p", class_="combinations")


def conflicts(response) -> list[str]:
    return [item.text for item in merge_preview(response).find_all("li", class_="conflict")]


def editor_text(response) -> str:
    """The parameters textarea's text exactly (the newline Django puts after the tag is not content)."""
    return page(response).find("textarea", name="parameters").raw_text.removeprefix("\n")


def form_data(**overrides) -> dict:
    """Everything the New form posts when "Create task" is pressed, with a grid typed by hand."""
    data = {
        "selector_present": "1",
        "preset_search": "",
        "merge_strategy": "union",
        "name": "Llama sweep",
        "description": "",
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "runtime": "sglang",
        "engine_version": "",
        "gpus": "1",
        "parameters": '{"tp-size": [1, 2]}',
        "optimization_strategy": "grid",
        "objective": "maximize_throughput",
        "max_experiments": "",
        "experiment_timeout": "900",
        "concurrency_levels": "1, 8, 32",
        "input_tokens": "512",
        "output_tokens": "256",
        "requests_per_level": "100",
        "max_seconds_per_level": "120",
        "slo_ttft_p90_ms": "",
        "slo_tpot_p90_ms": "",
        "slo_e2e_p99_s": "",
        "slo_min_success_rate": "",
        "action": "save",
    }
    data.update(overrides)
    return data


def with_presets(presets: list[ParameterPreset], action: str, strategy: str = "union", **overrides) -> dict:
    """The form posted with the selector on, these chips in this order, and the button pressed."""
    ids = [str(preset.pk) for preset in presets]
    return form_data(use_presets="on", presets=ids, merge_strategy=strategy, action=action, **overrides)


def assert_is_fragment(response, element_id: str) -> Element:
    assert response.status_code == 200
    document = page(response)
    top = [child for child in document.children if isinstance(child, Element)]
    assert [element.attrs.get("id") for element in top] == [element_id]
    assert document.find("html") is None
    assert document.find("h1") is None
    return top[0]


@pytest.fixture
def high(system_presets) -> ParameterPreset:
    return system_presets["High Throughput"]


@pytest.fixture
def memory(system_presets) -> ParameterPreset:
    return system_presets["Memory Efficient"]


@pytest.fixture
def latency(system_presets) -> ParameterPreset:
    return system_presets["Low Latency"]


@pytest.fixture
def built_from_presets(user, high, memory) -> Task:
    """A task the user built from High Throughput then Memory Efficient, last wins, grid untouched."""
    return make_task(
        name="Llama sweep",
        description="Before",
        created_by=user,
        parameters=HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
        applied_presets=[{"id": high.pk, "name": high.name}, {"id": memory.pk, "name": memory.name}],
        merge_strategy="last_wins",
    )


# The New form, opened


def test_the_new_form_shows_its_sections_the_preset_selector_and_the_use_presets_checkbox(signed_in, system_presets):
    response = signed_in.get(NEW)

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "New task"
    legends = [legend.text for legend in document.by_id("task-form").find_all("legend")]
    assert legends == [
        "Task",
        "Model and engine",
        "Parameter presets",
        "Merge strategy",
        "Parameter grid",
        "Optimisation",
        "Benchmark",
        "Service-level objectives (optional)",
    ]
    checkbox = document.by_id("id_use_presets")
    assert checkbox.attrs["type"] == "checkbox"
    assert checkbox.parent.tag == "label"
    assert checkbox.parent.text == "Use parameter presets"
    assert not use_presets_ticked(response)
    selector = document.by_id("preset-selector")
    adds = [button.attrs["value"] for button in selector.find_all("button", name="action")]
    assert sorted(value for value in adds if value.startswith("add:")) == sorted(
        f"add:{preset.pk}" for preset in system_presets.values()
    )
    assert chips(response) == []
    assert checked_strategy(response) == "union"
    assert merge_preview(response).find("table") is None
    assert editor_text(response) == ""


def test_the_new_form_starts_from_the_model_defaults(signed_in):
    document = page(signed_in.get(NEW))

    values = {name: document.find("input", name=name).attrs.get("value") for name in ("gpus", "concurrency_levels")}
    assert values == {"gpus": "1", "concurrency_levels": "1, 8, 32"}
    assert document.find("input", name="experiment_timeout").attrs["value"] == "900"
    assert document.find("input", name="input_tokens").attrs["value"] == "512"
    assert document.find("input", name="output_tokens").attrs["value"] == "256"


def test_the_new_form_needs_a_signed_in_user(client):
    response = client.get(NEW)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/tasks/new/"


def test_a_link_with_presets_and_a_strategy_opens_the_form_with_that_selection_and_its_preview(signed_in, high, memory):
    response = signed_in.get(f"{NEW}?presets={high.pk},{memory.pk}&strategy=last_wins")

    assert response.status_code == 200
    assert use_presets_ticked(response)
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert chip_ids(response) == [str(high.pk), str(memory.pk)]
    assert checked_strategy(response) == "last_wins"
    assert combinations_line(response).text == "2 combinations"
    assert preview_values(response)["tp-size"] == ["1"]
    assert preview_values(response)["mem-fraction-static"] == ["0.7", "0.75"]
    assert json.loads(editor_text(response)) == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    runtime = page(response).find("select", name="runtime").find("option", value="sglang")
    assert "selected" in runtime.attrs


def test_a_link_with_the_form_field_name_merge_strategy_works_too(signed_in, system_presets, high):
    balanced = system_presets["Balanced"]

    response = signed_in.get(f"{NEW}?presets={balanced.pk},{high.pk}&merge_strategy=intersection")

    assert chips(response) == ["Balanced", "High Throughput"]
    assert checked_strategy(response) == "intersection"
    assert preview_values(response) == {"tp-size": ["2"], "schedule-policy": ["fcfs"]}


def test_an_intersection_that_leaves_nothing_says_so_and_fills_no_grid(signed_in, high, memory):
    response = signed_in.get(f"{NEW}?presets={memory.pk},{high.pk}&strategy=intersection")

    assert "The merge leaves no parameter." in merge_preview(response).text
    assert combinations_line(response).text == "0 combinations"
    assert editor_text(response) == ""


def test_a_link_naming_no_strategy_merges_by_union(signed_in, high, memory):
    response = signed_in.get(f"{NEW}?presets={high.pk},{memory.pk}")

    assert checked_strategy(response) == "union"
    # One GPU by default: tp-size 2 and 4 cannot run, and the preview says so.
    assert combinations_line(response).text == "9 combinations, 6 skipped"


def test_a_link_with_bad_ids_or_strategy_says_so_and_keeps_the_rest(signed_in, high):
    response = signed_in.get(f"{NEW}?presets=abc,{high.pk},999&strategy=best")

    assert response.status_code == 200
    problems = [
        item.text for item in page(response).by_id("preset-selector").find("ul", class_="errorlist").find_all("li")
    ]
    assert problems == [
        "“abc” is not a preset id.",
        "Unknown merge strategy; using union.",
        "Preset 999 no longer exists and was left out.",
    ]
    assert chips(response) == ["High Throughput"]
    assert checked_strategy(response) == "union"


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


@pytest.mark.parametrize("strategy", ["union", "intersection", "last_wins"])
def test_with_htmx_a_new_strategy_answers_only_the_merge_preview(signed_in, high, memory, strategy):
    whole = signed_in.post(NEW, with_presets([high, memory], "refresh", strategy=strategy))

    response = signed_in.post(NEW, with_presets([high, memory], "preview", strategy=strategy), headers=HTMX)

    fragment = assert_is_fragment(response, "merge-preview")
    assert fragment.find("ul", class_="preset-options") is None
    assert fragment.find("li", class_="chip") is None
    assert merge_preview(response).text == merge_preview(whole).text
    assert merge_preview(response).text  # the merge, or why there is none


@pytest.mark.parametrize("action", [None, "save", "apply"])
def test_a_request_for_the_preview_fragment_gets_it_whatever_its_action(signed_in, high, memory, action):
    data = with_presets([high, memory], action or "", strategy="last_wins")
    if action is None:
        del data["action"]

    response = signed_in.post(NEW, data, headers={**HTMX, "HX-Target": "merge-preview"})

    assert_is_fragment(response, "merge-preview")
    assert preview_values(response)["tp-size"] == ["1"]
    assert not Task.objects.exists()


def test_with_htmx_the_preview_fragment_says_a_missing_preset_was_left_out(signed_in, high):
    gone = make_preset(name="Gone soon", parameters={"tp-size": [8]}).pk
    ParameterPreset.everything.filter(pk=gone).delete()
    data = form_data(use_presets="on", presets=[str(high.pk), str(gone)], action="preview")

    response = signed_in.post(NEW, data, headers=HTMX)

    fragment = assert_is_fragment(response, "merge-preview")
    assert [item.text for item in fragment.find("ul", class_="errorlist").find_all("li")] == [
        f"Preset {gone} no longer exists and was left out."
    ]
    assert preview_values(response)["tp-size"] == ["2", "4"]


# The preview fragment is kept under a digest of its inputs (tasks.views._merge_preview): asking
# again must never show what the presets held before, nor another form's buttons.


def test_a_preview_is_kept_under_its_digest_and_answered_again_alike(signed_in, high, memory):
    data = with_presets([high, memory], "preview", strategy="last_wins")
    query = QueryDict(mutable=True)
    for key, value in data.items():
        query.setlist(key, value if isinstance(value, list) else [value])
    key = PresetSelection.from_data(query, post_to=NEW).preview_key()

    first = signed_in.post(NEW, data, headers=HTMX)
    again = signed_in.post(NEW, data, headers=HTMX)

    assert caches["previews"].get(key) == first.content.decode()
    assert again.content == first.content
    assert preview_values(again)["tp-size"] == ["1"]


def test_a_preview_after_a_preset_is_edited_shows_the_edit(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1, 2]}, created_by=user)
    other = make_preset(name="Other", parameters={"schedule-policy": ["lpm"]})
    data = with_presets([mine, other], "preview")
    before = signed_in.post(NEW, data, headers=HTMX)

    mine.parameters = {"tp-size": [4]}
    mine.save(by=user)
    after = signed_in.post(NEW, data, headers=HTMX)

    assert preview_values(before)["tp-size"] == ["1", "2"]
    assert preview_values(after)["tp-size"] == ["4"]


def test_a_preview_after_a_preset_is_renamed_credits_the_new_name(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)
    other = make_preset(name="Other", parameters={"tp-size": [2]})
    data = with_presets([mine, other], "preview")
    signed_in.post(NEW, data, headers=HTMX)

    mine.name = "Renamed"
    mine.save(by=user)
    after = signed_in.post(NEW, data, headers=HTMX)

    assert "Renamed" in merge_preview(after).text
    assert "Mine" not in merge_preview(after).text


def test_a_preview_after_a_preset_is_trashed_says_it_was_left_out(signed_in, user, high):
    mine = make_preset(name="Mine", parameters={"tp-size": [8]}, created_by=user)
    data = with_presets([high, mine], "preview")
    signed_in.post(NEW, data, headers=HTMX)

    mine.trash(by=user)
    after = signed_in.post(NEW, data, headers=HTMX)

    assert f"Preset {mine.pk} no longer exists and was left out." in merge_preview(after).text
    assert "8" not in preview_values(after)["tp-size"]


def test_the_same_preview_on_another_form_applies_to_that_form(signed_in, user, high, memory):
    task = make_task(created_by=user)
    data = with_presets([high, memory], "preview")

    new_form = signed_in.post(NEW, data, headers=HTMX)
    edit_form = signed_in.post(edit_url(task), data, headers=HTMX)

    def apply_target(response) -> str:
        return merge_preview(response).find("button", value="apply").attrs["hx-post"]

    assert (apply_target(new_form), apply_target(edit_form)) == (NEW, edit_url(task))


@pytest.mark.parametrize(
    "change",
    [{"runtime": "vllm"}, {"gpus": "8"}, {"merge_strategy": "last_wins"}],
    ids=["engine", "gpus", "strategy"],
)
def test_a_preview_with_another_engine_gpus_or_strategy_is_made_again(signed_in, high, memory, change):
    data = with_presets([high, memory], "preview", runtime="sglang", gpus="1")
    fresh = {**data, **change}
    signed_in.post(NEW, data, headers=HTMX)

    caches["previews"].clear()
    expected = signed_in.post(NEW, fresh, headers=HTMX)
    caches["previews"].clear()
    signed_in.post(NEW, data, headers=HTMX)
    answered = signed_in.post(NEW, fresh, headers=HTMX)

    assert answered.content == expected.content


def test_the_preview_fragment_carries_nothing_of_the_user(signed_in, user, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "preview"), headers=HTMX)

    # Kept and shared between users (tasks.views._merge_preview): no token, nonce or name in it.
    assert "csrfmiddlewaretoken" not in response.content.decode()
    assert "nonce" not in response.content.decode()
    assert user.username not in response.content.decode()


def test_without_javascript_the_preview_action_renders_the_whole_page(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "preview", strategy="last_wins"))

    assert response.status_code == 200
    assert page(response).find("textarea", name="parameters") is not None
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert preview_values(response)["tp-size"] == ["1"]


def test_the_strategy_radios_get_only_the_merge_preview_with_the_selector_engine_and_gpus(signed_in, high, memory):
    document = page(signed_in.post(NEW, with_presets([high, memory], "refresh")))

    radios = document.by_id("preset-selector").find_all("input", name="merge_strategy")
    assert {radio.attrs["value"] for radio in radios} == {"union", "intersection", "last_wins"}
    for radio in radios:
        assert (radio.attrs["hx-get"], radio.attrs["hx-target"]) == (NEW, "#merge-preview")
        assert radio.attrs["hx-include"] == "closest fieldset.section, #id_runtime, #id_gpus"
        assert json.loads(radio.attrs["hx-vals"]) == {"action": "preview"}
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
        "action": "preview",
        **extra,
    }


def test_a_preview_get_answers_the_merge_preview_alone(signed_in, high, memory):
    response = signed_in.get(NEW, preview_query([high, memory], "last_wins"), headers=HTMX)

    assert_is_fragment(response, "merge-preview")
    assert preview_values(response)["tp-size"] == ["1"]
    assert not Task.objects.exists()


def test_a_preview_get_counts_the_gpus_sent(signed_in, high, memory):
    one = signed_in.get(NEW, preview_query([high, memory]), headers=HTMX)
    eight = signed_in.get(NEW, preview_query([high, memory], gpus="8"), headers=HTMX)

    assert combinations_line(one).text == "9 combinations, 6 skipped"
    assert combinations_line(eight).text == "9 combinations"


def test_a_preview_get_on_the_edit_page_with_every_preset_removed_shows_none(signed_in, built_from_presets):
    response = signed_in.get(edit_url(built_from_presets), preview_query([]), headers=HTMX)

    assert_is_fragment(response, "merge-preview")
    assert merge_preview(response).text == "Add presets to see their merge."


def test_a_preview_get_without_htmx_is_the_whole_form(signed_in, high, memory):
    response = signed_in.get(NEW, preview_query([high, memory], "last_wins"))

    assert response.status_code == 200
    assert page(response).find("textarea", name="parameters") is not None


def test_a_preview_get_from_a_signed_out_browser_goes_to_the_login_page(client, high, memory):
    response = client.get(NEW, preview_query([high, memory]), headers={**HTMX, "HX-Current-URL": NEW})

    assert response.headers["HX-Redirect"].startswith("/login/?next=")


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


# Save


def test_saving_after_apply_creates_the_task_with_the_grid_and_where_it_came_from(signed_in, user, high, memory):
    applied = editor_text(signed_in.post(NEW, with_presets([high, memory], "apply")))

    response = signed_in.post(NEW, with_presets([high, memory], "save", parameters=applied))

    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{task.pk}/"
    assert task.name == "Llama sweep"
    assert task.parameters == UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT
    assert task.applied_presets == [
        {"id": high.pk, "name": "High Throughput"},
        {"id": memory.pk, "name": "Memory Efficient"},
    ]
    assert task.merge_strategy == "union"
    assert task.parameters_edited is False
    assert task.created_by == user
    assert task.status == TaskStatus.DRAFT
    assert flashed(signed_in.get(response["Location"])) == ["Created task “Llama sweep”."]


def test_saving_records_the_presets_in_the_order_chosen_and_the_strategy(signed_in, high, memory):
    applied = editor_text(signed_in.post(NEW, with_presets([memory, high], "apply", strategy="last_wins")))

    signed_in.post(NEW, with_presets([memory, high], "save", strategy="last_wins", parameters=applied))

    task = Task.objects.get()
    assert [entry["name"] for entry in task.applied_presets] == ["Memory Efficient", "High Throughput"]
    assert task.merge_strategy == "last_wins"
    assert task.parameters["tp-size"] == [2, 4]
    assert task.parameters_edited is False


def test_a_grid_changed_after_apply_is_saved_as_typed_and_marked_edited(signed_in, high, memory):
    applied = editor_text(signed_in.post(NEW, with_presets([high, memory], "apply")))
    edited = applied.replace("[1, 2, 4]", "[2]")

    signed_in.post(NEW, with_presets([high, memory], "save", parameters=edited))

    task = Task.objects.get()
    assert task.parameters == {**UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT, "tp-size": [2]}
    assert [entry["id"] for entry in task.applied_presets] == [high.pk, memory.pk]
    assert task.parameters_edited is True


def test_a_grid_typed_by_hand_without_presets_saves_with_no_provenance(signed_in, user):
    response = signed_in.post(NEW, form_data(parameters='{"--tp_size": [1, 2], "schedule-policy": ["lpm"]}'))

    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{task.pk}/"
    assert task.parameters == {"tp-size": [1, 2], "schedule-policy": ["lpm"]}
    assert task.applied_presets == []
    assert task.merge_strategy == ""
    assert task.parameters_edited is False
    assert task.created_by == user


def test_chips_left_behind_with_use_presets_unticked_are_not_recorded(signed_in, high, memory):
    data = with_presets([high, memory], "save", parameters='{"tp-size": [8]}')
    del data["use_presets"]

    signed_in.post(NEW, data)

    task = Task.objects.get()
    assert task.parameters == {"tp-size": [8]}
    assert (task.applied_presets, task.merge_strategy, task.parameters_edited) == ([], "", False)


def test_saving_stores_every_field_of_the_form(signed_in):
    data = form_data(
        name="Everything",
        description="All fields",
        model="Qwen/Qwen2.5-7B",
        runtime="vllm",
        engine_version="v0.6.0",
        gpus="2",
        parameters='{"tensor-parallel-size": [1, 2]}',
        optimization_strategy="random",
        objective="minimize_ttft",
        max_experiments="5",
        experiment_timeout="600",
        concurrency_levels="64, 1, 8, 8",
        input_tokens="1024",
        output_tokens="128",
        requests_per_level="50",
        max_seconds_per_level="60",
        slo_ttft_p90_ms="250",
        slo_tpot_p90_ms="40.5",
        slo_e2e_p99_s="12",
        slo_min_success_rate="0.99",
    )

    signed_in.post(NEW, data)

    task = Task.objects.get()
    assert (task.name, task.description, task.model, task.runtime, task.engine_version, task.gpus) == (
        "Everything",
        "All fields",
        "Qwen/Qwen2.5-7B",
        "vllm",
        "v0.6.0",
        2,
    )
    assert (task.optimization_strategy, task.objective, task.max_experiments, task.experiment_timeout) == (
        "random",
        "minimize_ttft",
        5,
        600,
    )
    assert task.concurrency_levels == [1, 8, 64]
    assert (task.input_tokens, task.output_tokens, task.requests_per_level, task.max_seconds_per_level) == (
        1024,
        128,
        50,
        60,
    )
    assert (task.slo_ttft_p90_ms, task.slo_tpot_p90_ms, task.slo_e2e_p99_s, task.slo_min_success_rate) == (
        250.0,
        40.5,
        12.0,
        0.99,
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"name": "  "}, "name", "This field is required.", id="name-required"),
        pytest.param({"model": ""}, "model", "This field is required.", id="model-required"),
        pytest.param({"runtime": ""}, "runtime", "This field is required.", id="runtime-required"),
        pytest.param(
            {"parameters": '{"tp-size": [1,'},
            "parameters",
            "Not valid JSON: Expecting value (line 1, column 16).",
            id="parameters-bad-json",
        ),
        pytest.param(
            {"parameters": '{\n  "tp-size": [1, 2],\n  "mem": [0.8,]\n}'},
            "parameters",
            "Not valid JSON: Expecting value (line 3, column 15).",
            id="parameters-bad-json-line-3",
        ),
        pytest.param(
            {"parameters": ""},
            "parameters",
            'Give at least one parameter, e.g. {"tp-size": [1, 2]}.',
            id="parameters-empty",
        ),
        pytest.param(
            {"parameters": '{"tp-size": [1, null]}'},
            "parameters",
            "tp-size[1]: null is not allowed",
            id="parameters-null-value",
        ),
        pytest.param(
            {"concurrency_levels": "1, x"},
            "concurrency_levels",
            "Give whole numbers separated by commas, e.g. 1, 8, 32.",
            id="concurrency-not-numbers",
        ),
        pytest.param(
            {"optimization_strategy": "random"},
            "max_experiments",
            "Required for random and bayesian search: how many experiments to run.",
            id="random-needs-max-experiments",
        ),
        pytest.param(
            {"optimization_strategy": "bayesian"},
            "max_experiments",
            "Required for random and bayesian search: how many experiments to run.",
            id="bayesian-needs-max-experiments",
        ),
        pytest.param(
            {"slo_min_success_rate": "1.5"},
            "slo_min_success_rate",
            "Ensure this value is less than or equal to 1.0.",
            id="success-rate-over-one",
        ),
        pytest.param({"gpus": "0"}, "gpus", "Ensure this value is greater than or equal to 1.", id="zero-gpus"),
    ],
)
def test_a_refused_save_answers_422_and_names_the_field(signed_in, overrides, field, message):
    response = signed_in.post(NEW, form_data(**overrides))

    assert response.status_code == 422
    assert row_errors(response, field) == [message]
    assert page(response).find("div", class_="error-summary").find("p").text == "Please correct the error below."
    assert Task.objects.count() == 0


def test_a_task_name_is_refused_when_another_task_has_it_in_any_case(signed_in):
    make_task(name="Llama sweep")

    response = signed_in.post(NEW, form_data(name=" LLAMA SWEEP "))

    assert response.status_code == 422
    assert row_errors(response, "name") == ['A task named "Llama sweep" already exists.']
    assert Task.objects.count() == 1


def test_a_refused_save_keeps_the_selection_its_order_the_strategy_and_the_editor_text(signed_in, high, memory):
    typed = '{\n  "tp-size": [1, 2],\n  "mem-fraction-static": [0.8]\n}'

    response = signed_in.post(
        NEW, with_presets([memory, high], "save", strategy="last_wins", parameters=typed, name="", gpus="0")
    )

    assert response.status_code == 422
    assert use_presets_ticked(response)
    assert chips(response) == ["Memory Efficient", "High Throughput"]
    assert chip_ids(response) == [str(memory.pk), str(high.pk)]
    assert checked_strategy(response) == "last_wins"
    assert editor_text(response) == typed
    assert page(response).find("input", name="model").attrs["value"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert row_errors(response, "name") == ["This field is required."]
    assert row_errors(response, "gpus") == ["Ensure this value is greater than or equal to 1."]
    assert page(response).find("div", class_="error-summary").find("p").text == "Please correct the errors below."
    assert Task.objects.count() == 0


def test_a_refused_save_keeps_bad_json_exactly_as_typed(signed_in):
    typed = '{"tp-size": [1, 2'

    response = signed_in.post(NEW, form_data(parameters=typed))

    assert response.status_code == 422
    assert editor_text(response) == typed


# Edit


def test_the_edit_form_shows_the_stored_selection_strategy_and_grid(signed_in, built_from_presets):
    response = signed_in.get(edit_url(built_from_presets))

    assert response.status_code == 200
    assert page(response).find("h1").text == "Edit “Llama sweep”"
    assert use_presets_ticked(response)
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert checked_strategy(response) == "last_wins"
    assert editor_text(response) == format_grid(HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS)
    assert page(response).find("input", name="name").attrs["value"] == "Llama sweep"
    assert page(response).find("textarea", name="description").raw_text.strip() == "Before"


def test_the_edit_form_of_a_hand_typed_task_has_presets_switched_off(signed_in, user):
    task = make_task(created_by=user, parameters={"tp-size": [1, 2]})

    response = signed_in.get(edit_url(task))

    assert not use_presets_ticked(response)
    assert chips(response) == []
    assert json.loads(editor_text(response)) == {"tp-size": [1, 2]}


def test_the_edit_form_leaves_out_a_deleted_preset_and_says_so(signed_in, built_from_presets, memory):
    memory_id = memory.pk
    ParameterPreset.objects.filter(pk=memory_id).delete()

    response = signed_in.get(edit_url(built_from_presets))

    assert response.status_code == 200
    assert chips(response) == ["High Throughput"]
    problems = page(response).by_id("preset-selector").find("ul", class_="errorlist").find_all("li")
    assert [problem.text for problem in problems] == [f"Preset {memory_id} no longer exists and was left out."]
    assert json.loads(editor_text(response)) == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS


def test_saving_the_edit_form_changes_the_task(signed_in, user, built_from_presets, high, memory):
    data = with_presets(
        [high, memory],
        "save",
        strategy="last_wins",
        name="Llama sweep v2",
        description="After",
        gpus="2",
        parameters=format_grid(HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS),
    )

    response = signed_in.post(edit_url(built_from_presets), data)

    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{built_from_presets.pk}/"
    built_from_presets.refresh_from_db()
    assert (built_from_presets.name, built_from_presets.description, built_from_presets.gpus) == (
        "Llama sweep v2",
        "After",
        2,
    )
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert [entry["id"] for entry in built_from_presets.applied_presets] == [high.pk, memory.pk]
    assert built_from_presets.merge_strategy == "last_wins"
    assert built_from_presets.parameters_edited is False
    assert built_from_presets.created_by == user
    assert Task.objects.count() == 1
    assert flashed(signed_in.get(response["Location"])) == ["Saved task “Llama sweep v2”."]


def test_an_edit_may_switch_the_presets_off_and_keep_a_hand_typed_grid(signed_in, built_from_presets):
    data = form_data(name="Llama sweep", parameters='{"tp-size": [8]}')

    signed_in.post(edit_url(built_from_presets), data)

    built_from_presets.refresh_from_db()
    assert built_from_presets.parameters == {"tp-size": [8]}
    assert (built_from_presets.applied_presets, built_from_presets.merge_strategy) == ([], "")
    assert built_from_presets.parameters_edited is False


def test_an_edit_keeps_its_own_name_in_another_case(signed_in, built_from_presets):
    response = signed_in.post(edit_url(built_from_presets), form_data(name="LLAMA SWEEP"))

    assert response.status_code == 302
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "LLAMA SWEEP"


def test_a_refused_edit_answers_422_and_changes_nothing(signed_in, built_from_presets, high, memory):
    response = signed_in.post(
        edit_url(built_from_presets), with_presets([memory, high], "save", name="", parameters="{")
    )

    assert response.status_code == 422
    assert chips(response) == ["Memory Efficient", "High Throughput"]
    assert editor_text(response) == "{"
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS


def test_saving_an_edit_keeps_the_snapshot_of_a_preset_deleted_since(signed_in, user, high):
    gone = make_preset(name="Gone", parameters={"max-running-requests": [64]}, created_by=user)
    gone_id = gone.pk
    task = make_task(
        name="Llama sweep",
        created_by=user,
        parameters={**high.parameters, "max-running-requests": [64]},
        applied_presets=[{"id": high.pk, "name": "High Throughput"}, {"id": gone_id, "name": "Gone"}],
        merge_strategy="union",
    )
    gone.delete()
    opened = signed_in.get(edit_url(task))
    data = with_presets([high], "save", name="Llama sweep", description="Only this changed")
    data["parameters"] = editor_text(opened)
    assert chip_ids(opened) == data["presets"]

    response = signed_in.post(edit_url(task), data)

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.description == "Only this changed"
    assert task.parameters == {**high.parameters, "max-running-requests": [64]}
    assert task.applied_presets == [{"id": high.pk, "name": "High Throughput"}, {"id": gone_id, "name": "Gone"}]
    assert task.parameters_edited is False


def test_selector_actions_on_the_edit_form_answer_the_edit_form(signed_in, built_from_presets, high, memory):
    url = edit_url(built_from_presets)

    full = signed_in.post(url, with_presets([high, memory], f"remove:{high.pk}", name="Typed"))
    fragment = signed_in.post(url, with_presets([high, memory], f"left:{memory.pk}"), headers=HTMX)

    assert page(full).find("h1").text == "Edit “Llama sweep”"
    assert page(full).find("input", name="name").attrs["value"] == "Typed"
    assert chips(full) == ["Memory Efficient"]
    assert_is_fragment(fragment, "preset-selector")
    assert chips(fragment) == ["Memory Efficient", "High Throughput"]
    assert page(fragment).by_id("preset-selector").find("button", value="apply") is not None
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"


def test_a_preview_for_a_task_started_meanwhile_sends_the_window_to_the_task(signed_in, built_from_presets, high):
    Task.objects.filter(pk=built_from_presets.pk).update(status=TaskStatus.RUNNING)

    response = signed_in.get(edit_url(built_from_presets), preview_query([high]), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/tasks/{built_from_presets.pk}/"
    assert flashed(signed_in.get(response["HX-Redirect"])) == ["“Llama sweep” is running; it cannot be edited now."]


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_queued_or_running_task_cannot_be_edited(signed_in, built_from_presets, status, method):
    Task.objects.filter(pk=built_from_presets.pk).update(status=status)

    response = getattr(signed_in, method)(edit_url(built_from_presets), form_data(name="Changed"))

    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{built_from_presets.pk}/"
    assert flashed(signed_in.get(response["Location"])) == [
        f"“Llama sweep” is {status.label.lower()}; it cannot be edited now."
    ]
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"
    assert built_from_presets.status == status


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_task_cannot_be_edited(client, other_user, built_from_presets, method):
    client.force_login(other_user)

    response = getattr(client, method)(edit_url(built_from_presets), form_data(name="Changed"))

    assert response.status_code == 403
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"


def test_staff_may_edit_anyones_task(client, staff_user, user, built_from_presets):
    client.force_login(staff_user)

    response = client.post(edit_url(built_from_presets), form_data(name="Staff fix", parameters='{"tp-size": [1]}'))

    assert response.status_code == 302
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Staff fix"
    assert built_from_presets.created_by == user


def test_editing_a_missing_task_is_404(signed_in):
    assert signed_in.get("/tasks/999/edit/").status_code == 404


# The list


@pytest.fixture
def three_tasks(user) -> dict[str, Task]:
    tasks = {
        "llama": make_task(name="Llama sweep", model="meta-llama/Llama-3.1-8B-Instruct", created_by=user),
        "qwen": make_task(
            name="Qwen latency", model="Qwen/Qwen2.5-7B", runtime="vllm", status=TaskStatus.RUNNING, created_by=user
        ),
        "mistral": make_task(
            name="Mistral", model="mistralai/Mistral-7B", description="Runs over night", status=TaskStatus.COMPLETED
        ),
    }
    return tasks


def listed(response) -> list[str]:
    table = page(response).by_id("task-table").find("table")
    if table is None:
        return []
    return [row.find("td").find("a").text for row in table.find("tbody").find_all("tr")]


def test_the_list_shows_every_task_newest_first_with_links(signed_in, three_tasks):
    response = signed_in.get(LIST)

    assert response.status_code == 200
    assert listed(response) == ["Mistral", "Qwen latency", "Llama sweep"]
    table = page(response).by_id("task-table")
    assert table.find("p").text == "3 tasks"
    assert table.find("a", href=f"/tasks/{three_tasks['qwen'].pk}/").text == "Qwen latency"
    assert page(response).find("a", href=NEW).text == "New task"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        pytest.param("status=running", ["Qwen latency"], id="status"),
        pytest.param("runtime=sglang", ["Mistral", "Llama sweep"], id="runtime"),
        pytest.param("search=qwen", ["Qwen latency"], id="search-name-or-model"),
        pytest.param("search=meta-llama", ["Llama sweep"], id="search-model"),
        pytest.param("search=NIGHT", ["Mistral"], id="search-description"),
        pytest.param("runtime=sglang&status=completed", ["Mistral"], id="runtime-and-status"),
        pytest.param("status=failed", [], id="nothing-matches"),
        pytest.param("status=bogus", [], id="unknown-status"),
    ],
)
def test_the_list_filters_by_status_runtime_and_search(signed_in, three_tasks, query, names):
    response = signed_in.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert listed(response) == names


def test_the_list_filters_keep_their_values_in_the_form(signed_in, three_tasks):
    document = page(signed_in.get(f"{LIST}?status=running&runtime=vllm&search=qwen"))

    assert "selected" in document.by_id("id_status").find("option", value="running").attrs
    assert "selected" in document.by_id("id_runtime").find("option", value="vllm").attrs
    assert document.by_id("id_search").attrs["value"] == "qwen"


def test_with_htmx_the_list_answers_only_the_task_table(signed_in, three_tasks):
    response = signed_in.get(f"{LIST}?status=running", headers=HTMX)

    assert_is_fragment(response, "task-table")
    assert listed(response) == ["Qwen latency"]
    assert "HX-Request" in response["Vary"]


def test_an_htmx_history_restore_gets_the_whole_list_page(signed_in, three_tasks):
    response = signed_in.get(LIST, headers={**HTMX, "HX-History-Restore-Request": "true"})

    assert page(response).find("h1").text == "Tasks"
    assert listed(response) == ["Mistral", "Qwen latency", "Llama sweep"]


def test_the_list_shows_the_experiments_each_task_plans(signed_in):
    make_task(name="Capped", parameters={"tp-size": [1, 2, 4]}, max_experiments=2, gpus=4)

    row = page(signed_in.get(LIST)).by_id("task-table").find("tbody").find("tr")

    assert row.find("td", class_="num").text == "2 of 3"


def test_the_list_pages_by_50_and_keeps_the_filters(signed_in, user):
    for number in range(60):
        make_task(name=f"Draft {number}", created_by=user)

    first = signed_in.get(f"{LIST}?status=draft")
    second = signed_in.get(f"{LIST}?status=draft&page=2")

    assert len(listed(first)) == 50
    assert len(listed(second)) == 10
    nav = page(first).find("nav", class_="pagination")
    assert nav.find("span").text == "Page 1 of 2"
    assert nav.find("a").attrs["href"] == "?status=draft&page=2"


def test_the_list_runs_the_same_few_queries_for_200_tasks(signed_in, user, other_user, django_assert_num_queries):
    for number in range(200):
        make_task(name=f"Task number {number}", created_by=user if number % 2 else other_user, max_experiments=3)

    # session, user, count, one page of tasks
    with django_assert_num_queries(4):
        response = signed_in.get(LIST)

    assert len(listed(response)) == 50


def test_the_list_needs_a_signed_in_user(client):
    response = client.get(LIST)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/tasks/"


# The detail page


def facts(response) -> dict[str, str]:
    found = {}
    for block in page(response).find_all("dl", class_="facts"):
        terms = block.find_all("dt")
        values = block.find_all("dd")
        found.update({term.text: value.text for term, value in zip(terms, values, strict=True)})
    return found


def test_the_detail_page_shows_the_configuration(signed_in, user):
    task = make_task(
        name="Everything",
        description="All fields",
        model="Qwen/Qwen2.5-7B",
        runtime="vllm",
        engine_version="v0.6.0",
        gpus=2,
        parameters={"tensor-parallel-size": [1, 2], "max-num-seqs": [64, 128, 256]},
        optimization_strategy="random",
        objective="minimize_ttft",
        max_experiments=4,
        concurrency_levels=[1, 8, 64],
        slo_ttft_p90_ms=250,
        slo_min_success_rate=0.99,
        created_by=user,
    )

    response = signed_in.get(task.get_absolute_url())

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Everything Draft"
    assert document.find("p", class_="lead").text == "All fields"
    shown = facts(response)
    assert shown["Model"] == "Qwen/Qwen2.5-7B"
    assert shown["Runtime"] == "vLLM (v0.6.0)"
    assert shown["GPUs per experiment"] == "2"
    assert shown["Made by"].startswith("ada, ")
    assert shown["Strategy"] == "Random sample"
    assert shown["Objective"] == "Minimise time to first token"
    assert shown["Experiments"] == "4 of 6 combinations (capped)"
    assert shown["Timeout per experiment"] == "900 s"
    assert shown["Concurrency levels"] == "1, 8, 64"
    assert shown["Input / output tokens"] == "512 / 256"
    assert shown["Requests per level"] == "100 (at most 120 s)"
    assert shown["p90 TTFT"] == "≤ 250.0 ms"
    assert shown["p90 TPOT"] == "none"
    assert shown["Success rate"] == "≥ 0.99"


def test_the_detail_page_shows_the_grid_as_a_table(signed_in):
    task = make_task(parameters={"tp-size": [1, 2], "enable-mixed-chunk": [True, False], "schedule-policy": ["lpm"]})

    table = page(signed_in.get(task.get_absolute_url())).find("table", class_="grid-table")

    rows = {
        row.find("th").text: [value.text for value in row.find_all("span", class_="value")]
        for row in table.find("tbody").find_all("tr")
    }
    assert rows == {
        "--tp-size": ["1", "2"],
        "--enable-mixed-chunk": ["true", "false"],
        "--schedule-policy": ["lpm"],
    }


def test_the_detail_page_says_how_many_experiments_a_whole_grid_runs(signed_in):
    task = make_task(parameters={"tp-size": [1, 2, 4], "schedule-policy": ["fcfs", "lpm"]}, gpus=4)

    assert facts(signed_in.get(task.get_absolute_url()))["Experiments"] == "6 (6 combinations)"


def test_the_detail_page_links_the_presets_it_came_from_in_order(signed_in, built_from_presets, high, memory):
    response = signed_in.get(built_from_presets.get_absolute_url())

    provenance = page(response).find("ol", class_="provenance")
    links = [(link.attrs["href"], link.text) for link in provenance.find_all("a")]
    assert links == [(f"/presets/{high.pk}/", "High Throughput"), (f"/presets/{memory.pk}/", "Memory Efficient")]
    assert page(response).find("span", class_="note") is None


def test_the_detail_page_names_the_merge_strategy_in_words(signed_in, built_from_presets):
    response = signed_in.get(built_from_presets.get_absolute_url())

    provenance = page(response).find("ol", class_="provenance")
    assert provenance.parent.find("p").text.startswith("last wins merge of, in this order:")


def test_the_detail_page_marks_a_grid_edited_after_the_presets(signed_in, built_from_presets):
    Task.objects.filter(pk=built_from_presets.pk).update(parameters_edited=True)

    response = signed_in.get(built_from_presets.get_absolute_url())

    assert page(response).find("span", class_="note").text == "then edited by hand"


def test_the_detail_page_marks_a_deleted_preset_and_keeps_the_snapshot_and_grid(
    signed_in, user, built_from_presets, high
):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)
    Task.objects.filter(pk=built_from_presets.pk).update(
        applied_presets=[{"id": high.pk, "name": "High Throughput"}, {"id": mine.pk, "name": "Mine"}]
    )
    mine.delete()

    response = signed_in.get(built_from_presets.get_absolute_url())

    assert response.status_code == 200
    items = page(response).find("ol", class_="provenance").find_all("li")
    assert [item.text for item in items] == ["High Throughput", "Mine (deleted)"]
    assert items[1].find("a") is None
    built_from_presets.refresh_from_db()
    assert [entry["name"] for entry in built_from_presets.applied_presets] == ["High Throughput", "Mine"]
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert "--tp-size" in page(response).find("table", class_="grid-table").text


def test_the_detail_page_shows_a_renamed_presets_new_name(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)
    task = make_task(applied_presets=[{"id": mine.pk, "name": "Mine"}], merge_strategy="union")
    mine.name = "Renamed"
    mine.save()

    item = page(signed_in.get(task.get_absolute_url())).find("ol", class_="provenance").find("li")

    assert item.text == "Mine (now “Renamed”)"


def test_the_detail_page_of_a_hand_typed_grid_says_so(signed_in):
    task = make_task()

    main = page(signed_in.get(task.get_absolute_url())).find("main")

    assert "Typed by hand, without presets." in main.text
    assert main.find("ol", class_="provenance") is None


def actions(response) -> list[str]:
    bar = page(response).find("div", class_="actions")
    return [element.text for element in bar.iter() if element.tag in ("a", "button")]


def test_the_owner_sees_every_action_on_a_draft(signed_in, built_from_presets):
    assert actions(signed_in.get(built_from_presets.get_absolute_url())) == [
        "Edit",
        "Duplicate",
        "Save grid as preset",
        "Delete",
    ]


def test_another_user_may_only_duplicate_or_save_the_grid(client, other_user, built_from_presets):
    client.force_login(other_user)

    assert actions(client.get(built_from_presets.get_absolute_url())) == ["Duplicate", "Save grid as preset"]


def test_a_running_task_offers_no_edit_or_delete(signed_in, built_from_presets):
    Task.objects.filter(pk=built_from_presets.pk).update(status=TaskStatus.RUNNING)

    assert actions(signed_in.get(built_from_presets.get_absolute_url())) == ["Duplicate", "Save grid as preset"]


def test_a_missing_task_is_404(signed_in):
    assert signed_in.get("/tasks/999/").status_code == 404


# Duplicate


def test_duplicate_creates_a_draft_copy_and_opens_it(signed_in, user, built_from_presets):
    Task.objects.filter(pk=built_from_presets.pk).update(status=TaskStatus.COMPLETED)

    response = signed_in.post(f"/tasks/{built_from_presets.pk}/duplicate/")

    copy = Task.objects.get(name="Llama sweep (copy)")
    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{copy.pk}/"
    assert copy.status == TaskStatus.DRAFT
    assert copy.created_by == user
    assert copy.parameters == built_from_presets.parameters
    assert copy.applied_presets == built_from_presets.applied_presets
    assert copy.merge_strategy == "last_wins"
    assert flashed(signed_in.get(response["Location"])) == ["Created “Llama sweep (copy)”, a draft copy."]
    built_from_presets.refresh_from_db()
    assert built_from_presets.status == TaskStatus.COMPLETED


def test_anyone_signed_in_may_duplicate_a_task_and_owns_the_copy(client, other_user, built_from_presets):
    client.force_login(other_user)

    client.post(f"/tasks/{built_from_presets.pk}/duplicate/")
    client.post(f"/tasks/{built_from_presets.pk}/duplicate/")

    copies = Task.objects.exclude(pk=built_from_presets.pk).order_by("pk")
    assert [(copy.name, copy.created_by) for copy in copies] == [
        ("Llama sweep (copy)", other_user),
        ("Llama sweep (copy 2)", other_user),
    ]


def test_duplicate_is_a_post(signed_in, built_from_presets):
    response = signed_in.get(f"/tasks/{built_from_presets.pk}/duplicate/")

    assert response.status_code == 405
    assert Task.objects.count() == 1


# Delete


def test_delete_asks_for_confirmation_first(signed_in, built_from_presets):
    response = signed_in.get(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Delete “Llama sweep”?"
    assert document.find("main").find("form").attrs["method"] == "post"
    assert Task.objects.filter(pk=built_from_presets.pk).exists()


def test_confirming_deletes_the_task_and_returns_to_the_list(signed_in, built_from_presets):
    response = signed_in.post(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert not Task.objects.filter(pk=built_from_presets.pk).exists()
    assert flashed(signed_in.get(LIST)) == ["Deleted task “Llama sweep”."]


def test_deleting_with_htmx_redirects_the_browser_to_the_list(signed_in, built_from_presets):
    response = signed_in.post(f"/tasks/{built_from_presets.pk}/delete/", headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == LIST
    assert not Task.objects.filter(pk=built_from_presets.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_user_cannot_delete_a_task(client, other_user, built_from_presets, method):
    client.force_login(other_user)

    response = getattr(client, method)(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 403
    assert Task.objects.filter(pk=built_from_presets.pk).exists()


def test_staff_may_delete_anyones_task(client, staff_user, built_from_presets):
    client.force_login(staff_user)

    client.post(f"/tasks/{built_from_presets.pk}/delete/")

    assert not Task.objects.filter(pk=built_from_presets.pk).exists()


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING])
def test_a_queued_or_running_task_is_not_deleted(signed_in, built_from_presets, status):
    Task.objects.filter(pk=built_from_presets.pk).update(status=status)

    response = signed_in.post(f"/tasks/{built_from_presets.pk}/delete/")

    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{built_from_presets.pk}/"
    assert Task.objects.filter(pk=built_from_presets.pk).exists()
    assert flashed(signed_in.get(response["Location"])) == [
        f"“Llama sweep” is {status.label.lower()}; cancel it before deleting."
    ]


# Save grid as preset


def test_save_grid_as_preset_creates_a_user_preset_with_the_grid_and_runtime(signed_in, user, built_from_presets):
    response = signed_in.post(f"/tasks/{built_from_presets.pk}/save-grid/")

    preset = ParameterPreset.objects.get(name="Llama sweep (grid)")
    assert response.status_code == 302
    assert response["Location"] == f"/presets/{preset.pk}/"
    assert preset.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert preset.runtime == "sglang"
    assert preset.is_system is False
    assert preset.created_by == user
    assert flashed(signed_in.get(response["Location"])) == ["Saved the grid as the preset “Llama sweep (grid)”."]


def test_anyone_signed_in_may_save_a_tasks_grid_as_their_preset(client, other_user, built_from_presets):
    client.force_login(other_user)

    client.post(f"/tasks/{built_from_presets.pk}/save-grid/")

    assert ParameterPreset.objects.get(name="Llama sweep (grid)").created_by == other_user


def test_save_grid_is_a_post(signed_in, built_from_presets, system_presets):
    response = signed_in.get(f"/tasks/{built_from_presets.pk}/save-grid/")

    assert response.status_code == 405
    assert ParameterPreset.objects.count() == len(system_presets)


@pytest.mark.parametrize("action", ["duplicate", "delete", "save-grid"])
def test_actions_on_a_missing_task_are_404(signed_in, action):
    assert signed_in.post(f"/tasks/999/{action}/").status_code == 404


@pytest.mark.parametrize("action", ["duplicate", "delete", "save-grid", "edit"])
def test_actions_need_a_signed_in_user(client, built_from_presets, action):
    url = f"/tasks/{built_from_presets.pk}/{action}/"

    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"
    assert Task.objects.count() == 1


# Accessibility smoke check


@pytest.mark.parametrize("url", ["new", "edit", "list", "detail", "delete"])
def test_task_pages_label_every_control_and_have_one_heading(signed_in, built_from_presets, url):
    address = {
        "new": NEW,
        "edit": edit_url(built_from_presets),
        "list": LIST,
        "detail": built_from_presets.get_absolute_url(),
        "delete": f"/tasks/{built_from_presets.pk}/delete/",
    }[url]

    response = signed_in.get(address)

    assert response.status_code == 200
    assert accessibility_problems(response.content) == []


def test_the_form_with_chips_preview_and_errors_stays_accessible(signed_in, high, memory):
    response = signed_in.post(NEW, with_presets([high, memory], "save", name="", parameters="{"))

    assert response.status_code == 422
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert accessibility_problems(response.content) == []
