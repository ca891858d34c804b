"""The New task page: the form opened (from a link too) and saved; a refused save keeps what was typed."""

from __future__ import annotations

import json

import pytest

from tasks.models import Task
from tasks.states import TaskStatus
from tests.factories import make_task
from tests.tasks.pages.helpers import (
    HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
    HTMX,
    NEW,
    UNION_OF_HIGH_THROUGHPUT_AND_MEMORY_EFFICIENT,
    checked_strategy,
    chip_ids,
    chips,
    combinations_line,
    editor_text,
    flashed,
    form_data,
    merge_preview,
    page,
    preview_values,
    row_errors,
    use_presets_ticked,
    with_presets,
)

pytestmark = pytest.mark.django_db


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
        "Search",
        "Trust",
        "Workload",
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


def editor_rows(response) -> int:
    return int(page(response).find("textarea", name="parameters").attrs["rows"])


def test_a_blank_new_form_shows_no_error_before_anything_is_typed_and_a_small_editor(signed_in):
    response = signed_in.get(NEW)

    preview = page(response).by_id("parameters-preview")
    assert preview.text == "Type a grid or apply presets: it is checked as you type."
    assert preview.find("ul", class_="errorlist") is None
    assert editor_rows(response) == 4


def test_the_editor_is_as_tall_as_the_grid_it_opens_with(signed_in, high, memory):
    response = signed_in.get(f"{NEW}?presets={high.pk},{memory.pk}")

    assert len(editor_text(response).splitlines()) == 7  # five flags between the braces
    assert editor_rows(response) == 8


def test_a_long_grid_scrolls_inside_an_editor_of_at_most_30_rows(signed_in):
    grid = json.dumps({f"flag-{number}": [number] for number in range(50)}, indent=2)

    response = signed_in.post(NEW, form_data(parameters=grid, name=""))

    assert response.status_code == 422
    assert editor_rows(response) == 30


def test_a_grid_sent_blank_is_an_error_in_its_row_and_in_the_check(signed_in):
    response = signed_in.post(NEW, form_data(parameters=""))

    assert response.status_code == 422
    assert row_errors(response, "parameters") == ['Give at least one parameter, e.g. {"tp-size": [1, 2]}.']
    assert "Not valid yet" in page(response).by_id("parameters-preview").text


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


def applied_fields(response) -> dict[str, list[str]]:
    """The hidden fields beside the editor saying what its grid was applied from, as a browser posts them."""
    fields: dict[str, list[str]] = {}
    for field in page(response).by_id("parameters-editor").find_all("input", type="hidden"):
        fields.setdefault(field.attrs["name"], []).append(field.attrs["value"])
    return fields


def test_the_strategy_recorded_is_the_one_applied_not_the_radio_switched_afterwards(signed_in, high, memory):
    applied = signed_in.post(NEW, with_presets([high, memory], "apply", strategy="last_wins"), headers=HTMX)
    hidden = applied_fields(applied)
    assert hidden == {"applied_strategy": ["last_wins"], "applied_presets": [str(high.pk), str(memory.pk)]}

    data = with_presets([high, memory], "save", strategy="union", parameters=editor_text(applied))
    signed_in.post(NEW, {**data, **hidden})

    task = Task.objects.get()
    assert task.merge_strategy == "last_wins"
    assert task.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert task.parameters_edited is False


def test_the_presets_recorded_are_those_applied_not_a_chip_added_afterwards(signed_in, high, memory, latency):
    applied = signed_in.post(NEW, with_presets([high, memory], "apply"))  # without JavaScript: the whole page

    data = with_presets([high, memory, latency], "save", parameters=editor_text(applied))
    signed_in.post(NEW, {**data, **applied_fields(applied)})

    task = Task.objects.get()
    assert [entry["id"] for entry in task.applied_presets] == [high.pk, memory.pk]
    assert task.merge_strategy == "union"
    assert task.parameters_edited is False


def test_a_grid_opened_from_a_link_records_the_link_s_presets_and_strategy(signed_in, high, memory):
    opened = signed_in.get(f"{NEW}?presets={high.pk},{memory.pk}&strategy=last_wins")

    data = with_presets([high, memory], "save", strategy="intersection", parameters=editor_text(opened))
    signed_in.post(NEW, {**data, **applied_fields(opened)})

    task = Task.objects.get()
    assert task.merge_strategy == "last_wins"
    assert task.parameters_edited is False


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


# The page and the API create through one method (Task.objects.create_from_presets)


def test_the_page_and_the_api_make_the_same_task_of_the_same_presets_and_edit(signed_in, api, high, memory):
    edited = {**HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS, "tp-size": [8]}
    signed_in.post(
        NEW, with_presets([high, memory], "save", strategy="last_wins", name="Page", parameters=json.dumps(edited))
    )
    api.post(
        "/api/tasks/",
        {
            "name": "API",
            "model": "meta-llama/Llama-3.1-8B-Instruct",
            "runtime": "sglang",
            "presets": [high.pk, memory.pk],
            "merge_strategy": "last_wins",
            "parameters": {"tp-size": [8]},
        },
        format="json",
    )

    made = {task.name: task for task in Task.objects.all()}
    assert set(made) == {"Page", "API"}
    skip = {"id", "name", "name_key", "created_at", "updated_at"}
    fields = [field.attname for field in Task._meta.concrete_fields if field.attname not in skip]
    assert {field: getattr(made["Page"], field) for field in fields} == {
        field: getattr(made["API"], field) for field in fields
    }
    assert made["Page"].parameters == edited
    assert made["Page"].parameters_edited is True
    assert made["Page"].preset_versions == {str(high.pk): 1, str(memory.pk): 1}
