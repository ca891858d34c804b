"""What the task page tests read from a page: chips, the merge preview, the editor, a form's data."""

from __future__ import annotations

from presets.models import ParameterPreset
from tasks.models import Task
from tests.html import Element, parse

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
        "skip_after_oom": "on",
        "baseline": "on",
        "finalists": "3",
        "repeats": "2",
        "load_mode": "concurrency",
        "concurrency_levels": "1, 8, 32",
        "request_rates": "1, 4, 16",
        "input_tokens": "512",
        "input_tokens_max": "",
        "output_tokens": "256",
        "output_tokens_max": "",
        "shared_prefix": "0",
        "requests_per_level": "100",
        "warmup_requests": "4",
        "max_seconds_per_level": "120",
        "early_stop": "on",
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
