"""The New task page in headless Chromium: picking, ordering and merging presets, then saving."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Locator, Page, Request, expect

from presets.models import ParameterPreset
from presets.seeding import seed_system_presets
from tasks.models import Task
from tests.factories import make_preset, make_task

if TYPE_CHECKING:
    from tests.browser.conftest import ConsoleErrors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-ada-123"
INVALID_FORM = "the server responded with a status of 422"  # what Chromium logs for a form sent back
MODEL = "meta-llama/Llama-3.1-8B-Instruct"

# Memory Efficient, then High Throughput, merged "last wins": the second one's flags win.
ME_THEN_HT_LAST_WINS = {
    "tp-size": [2, 4],
    "mem-fraction-static": [0.9],
    "chunked-prefill-size": [2048],
    "schedule-policy": ["fcfs"],
    "enable-mixed-chunk": [True],
}
HT_THEN_ME_LAST_WINS = {
    "tp-size": [1],
    "mem-fraction-static": [0.7, 0.75],
    "schedule-policy": ["fcfs"],
    "enable-mixed-chunk": [True],
    "chunked-prefill-size": [2048],
}


def log_in(page: Page, username: str = "ada") -> Any:
    """A new user, logged in through the login form; the page is left on the new task form."""
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    page.goto("/login/?next=/tasks/new/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="New task", exact=True)).to_be_visible()
    return user


def system_presets() -> tuple[ParameterPreset, ParameterPreset]:
    """High Throughput and Memory Efficient, seeded."""
    seed_system_presets()
    return ParameterPreset.objects.get(name="High Throughput"), ParameterPreset.objects.get(name="Memory Efficient")


def chips(page: Page) -> Locator:
    """The selected presets as the chip list shows them: "1. High Throughput", …"""
    return page.locator("ol.chips .chip-name")


def preview_values(page: Page, flag: str) -> Locator:
    """The merge preview's values for ``flag``, each read with its source: "1 Memory Efficient"."""
    rows = page.locator("#merge-preview .grid-table tbody tr")
    return rows.filter(has=page.get_by_role("rowheader", name=f"--{flag}", exact=True)).locator(".value")


def combinations(page: Page) -> Locator:
    return page.locator("#merge-preview .combinations")


def strategy(page: Page, value: str) -> Locator:
    return page.locator(f"input[name=merge_strategy][value={value}]")


def editor_grid(page: Page) -> dict[str, Any]:
    return json.loads(page.locator("#id_parameters").input_value())


def test_building_a_task_from_two_presets_step_by_step(page: Page, artifacts_dir: Path) -> None:
    high_throughput, memory_efficient = system_presets()
    user = log_in(page)
    make_preset(name="vLLM Only Sweep", runtime="vllm", parameters={"max-num-seqs": [128, 256]}, created_by=user)
    make_preset(name="Any Engine Batch", runtime="", parameters={"max-running-requests": [64]}, created_by=user)
    page.reload()
    page.evaluate("() => { window.stillTheSamePage = true }")  # gone if the browser loads a page
    selector, preview = page.locator("#preset-selector"), page.locator("#merge-preview")

    # 1. The selector appears once ticked; a runtime narrows the list to that engine's presets.
    expect(selector).to_be_hidden()
    page.locator("#id_use_presets").check()
    expect(selector).to_be_visible()
    expect(page.get_by_role("button", name="Add vLLM Only Sweep", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Add High Throughput (vLLM)", exact=True)).to_be_visible()
    page.select_option("#id_runtime", "sglang")
    expect(selector.get_by_role("heading", level=2).first).to_have_text("Presets for SGLang and any engine")
    expect(page.get_by_role("button", name="Add vLLM Only Sweep", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Add High Throughput (vLLM)", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Add Any Engine Batch", exact=True)).to_be_visible()
    for name in ("High Throughput", "Memory Efficient", "Low Latency", "Balanced"):
        expect(page.get_by_role("button", name=f"Add {name}", exact=True)).to_be_enabled()
    expect(selector).to_be_visible()

    # 2. One preset: its own grid.
    page.get_by_role("button", name="Add High Throughput", exact=True).click()
    expect(chips(page)).to_have_text(["1. High Throughput"])
    expect(page.get_by_role("button", name="Add High Throughput", exact=True)).to_be_disabled()
    expect(preview_values(page, "tp-size")).to_have_text(["2 High Throughput", "4 High Throughput"])
    expect(preview_values(page, "mem-fraction-static")).to_have_text(["0.9 High Throughput"])
    # One GPU by default: tp-size 2 and 4 cannot run, and the preview says so.
    expect(combinations(page)).to_have_text("2 combinations, 2 skipped")
    expect(preview.locator(".conflict")).to_have_count(0)

    # 3. A second preset: the union, each value tagged with where it came from, and the clash named.
    page.get_by_role("button", name="Add Memory Efficient", exact=True).click()
    expect(chips(page)).to_have_text(["1. High Throughput", "2. Memory Efficient"])
    expect(preview_values(page, "tp-size")).to_have_text(
        ["1 Memory Efficient", "2 High Throughput", "4 High Throughput"]
    )
    expect(preview_values(page, "mem-fraction-static")).to_have_text(
        ["0.7 Memory Efficient", "0.75 Memory Efficient", "0.9 High Throughput"]
    )
    expect(preview_values(page, "tp-size").first.locator(".source")).to_have_text("Memory Efficient")
    expect(preview.locator(".conflicts")).to_contain_text(
        "mem-fraction-static: High Throughput wants 0.9; Memory Efficient wants 0.7, 0.75 — union will try all three"
    )
    expect(combinations(page)).to_have_text("9 combinations, 6 skipped")
    expect(strategy(page, "union")).to_be_checked()
    screenshot = artifacts_dir / "task-new-two-presets-conflict.png"
    started = time.time() - 1  # written by this run, not left over from an earlier one
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0
    assert screenshot.stat().st_mtime >= started
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # 4. Last wins: the later preset's values replace the earlier one's.
    strategy(page, "last_wins").check()
    expect(preview_values(page, "tp-size")).to_have_text(["1 Memory Efficient"])
    expect(preview_values(page, "mem-fraction-static")).to_have_text(["0.7 Memory Efficient", "0.75 Memory Efficient"])
    expect(preview.locator(".conflicts")).to_contain_text("overridden by Memory Efficient")
    expect(combinations(page)).to_have_text("2 combinations")

    # 5. The order is the merge order: moving Memory Efficient first lets High Throughput win.
    page.get_by_role("button", name="Move Memory Efficient earlier", exact=True).click()
    expect(chips(page)).to_have_text(["1. Memory Efficient", "2. High Throughput"])
    expect(preview_values(page, "tp-size")).to_have_text(["2 High Throughput", "4 High Throughput"])
    expect(preview_values(page, "mem-fraction-static")).to_have_text(["0.9 High Throughput"])
    expect(preview.locator(".conflicts")).to_contain_text("overridden by High Throughput")
    expect(preview.locator(".conflicts")).not_to_contain_text("overridden by Memory Efficient")
    expect(strategy(page, "last_wins")).to_be_checked()

    # 6. Apply fills the editor; a hand edit then survives later changes to the presets.
    editor = page.locator("#id_parameters")
    expect(editor).to_have_value("")
    page.get_by_role("button", name="Apply to parameters", exact=True).click()
    expect(editor).to_have_value(re.compile(r'"tp-size": \[2, 4\]'))
    # htmx wires up swapped-in content once it settles (20 ms later): typing before that sends nothing.
    expect(page.locator("#parameters-editor")).not_to_have_class(re.compile(r"htmx-added"))
    assert editor_grid(page) == ME_THEN_HT_LAST_WINS
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 2 combinations.")

    applied_text = editor.input_value()
    edited_text = applied_text.replace('"tp-size": [2, 4]', '"tp-size": [8]')
    assert edited_text != applied_text
    edited = {**ME_THEN_HT_LAST_WINS, "tp-size": [8]}
    editor.fill(edited_text)
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 1 combination.")

    strategy(page, "union").check()
    expect(combinations(page)).to_have_text("9 combinations, 6 skipped")
    expect(preview_values(page, "tp-size")).to_have_text(
        ["1 Memory Efficient", "2 High Throughput", "4 High Throughput"]
    )
    expect(editor).to_have_value(edited_text)
    strategy(page, "last_wins").check()
    expect(preview_values(page, "tp-size")).to_have_text(["2 High Throughput", "4 High Throughput"])
    expect(combinations(page)).to_have_text("2 combinations, 2 skipped")
    expect(editor).to_have_value(edited_text)
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 1 combination.")
    assert page.evaluate("() => window.stillTheSamePage") is True

    # 7. Create: the task keeps the hand-edited grid and where it came from.
    page.fill("#id_name", "Llama SGLang sweep")
    page.fill("#id_model", MODEL)
    page.get_by_role("button", name="Create task", exact=True).click()

    expect(page).to_have_url(re.compile(r"/tasks/\d+/$"))
    expect(page.locator("#messages")).to_contain_text("Created task “Llama SGLang sweep”.")
    task = Task.objects.get(name="Llama SGLang sweep")
    assert urlsplit(page.url).path == task.get_absolute_url()
    assert task.parameters == edited
    assert task.applied_presets == [
        {"id": memory_efficient.pk, "name": "Memory Efficient"},
        {"id": high_throughput.pk, "name": "High Throughput"},
    ]
    assert (task.merge_strategy, task.parameters_edited) == ("last_wins", True)
    assert (task.runtime, task.model, task.created_by) == ("sglang", MODEL, user)
    provenance = page.locator("ol.provenance a")
    expect(provenance).to_have_text(["Memory Efficient", "High Throughput"])
    expect(provenance.first).to_have_attribute("href", memory_efficient.get_absolute_url())
    expect(provenance.last).to_have_attribute("href", high_throughput.get_absolute_url())
    expect(page.locator(".note")).to_have_text("then edited by hand")


def test_a_blank_new_task_page_shows_no_error_and_sizes_the_editor_to_its_grid(page: Page) -> None:
    high_throughput, memory_efficient = system_presets()
    log_in(page)
    editor = page.locator("#id_parameters")

    expect(page.locator("#parameters-preview")).to_have_text("Type a grid or apply presets: it is checked as you type.")
    expect(page.locator(".preview-status.invalid")).to_have_count(0)
    blank = editor.bounding_box()
    assert blank is not None
    assert blank["height"] < 120, blank  # four lines, not an empty 14rem box

    page.goto(f"/tasks/new/?presets={high_throughput.pk},{memory_efficient.pk}")
    filled = editor.bounding_box()
    assert filled is not None
    assert blank["height"] < filled["height"] < 250, filled  # seven lines and one to type on
    assert editor.evaluate("(box) => box.scrollHeight <= box.clientHeight")  # all of it in view


def test_a_link_with_presets_opens_the_form_with_the_merge_already_shown(page: Page) -> None:
    high_throughput, memory_efficient = system_presets()
    log_in(page)
    posts: list[Request] = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else None)

    page.goto(f"/tasks/new/?presets={high_throughput.pk},{memory_efficient.pk}&strategy=last_wins")

    expect(page.locator("#id_use_presets")).to_be_checked()
    expect(page.locator("#preset-selector")).to_be_visible()
    expect(page.locator("#id_runtime")).to_have_value("sglang")
    expect(chips(page)).to_have_text(["1. High Throughput", "2. Memory Efficient"])
    expect(strategy(page, "last_wins")).to_be_checked()
    expect(preview_values(page, "tp-size")).to_have_text(["1 Memory Efficient"])
    expect(combinations(page)).to_have_text("2 combinations")
    assert editor_grid(page) == HT_THEN_ME_LAST_WINS
    assert posts == []


def test_a_form_sent_back_with_an_error_keeps_the_presets_their_order_and_the_typed_grid(
    page: Page, console_errors: ConsoleErrors
) -> None:
    console_errors.allow(INVALID_FORM)  # the form comes back as a 422 page
    high_throughput, memory_efficient = system_presets()
    log_in(page)
    page.goto(f"/tasks/new/?presets={high_throughput.pk},{memory_efficient.pk}")
    expect(chips(page)).to_have_text(["1. High Throughput", "2. Memory Efficient"])
    page.get_by_role("button", name="Move Memory Efficient earlier", exact=True).click()
    expect(chips(page)).to_have_text(["1. Memory Efficient", "2. High Throughput"])
    strategy(page, "last_wins").check()
    expect(preview_values(page, "tp-size")).to_have_text(["2 High Throughput", "4 High Throughput"])
    typed = '{\n  "tp-size": [8],\n  "mem-fraction-static": [0.85]\n}'
    page.fill("#id_parameters", typed)
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 1 combination.")
    page.fill("#id_model", MODEL)

    page.get_by_role("button", name="Create task", exact=True).click()

    expect(page.locator(".error-summary")).to_contain_text("Please correct the error below.")
    expect(page.locator("#row-name .errorlist")).to_have_text("This field is required.")
    expect(page.locator("#id_use_presets")).to_be_checked()
    expect(page.locator("#preset-selector")).to_be_visible()
    expect(chips(page)).to_have_text(["1. Memory Efficient", "2. High Throughput"])
    expect(strategy(page, "last_wins")).to_be_checked()
    expect(preview_values(page, "tp-size")).to_have_text(["2 High Throughput", "4 High Throughput"])
    expect(page.locator("#id_parameters")).to_have_value(typed)
    expect(page.locator("#id_model")).to_have_value(MODEL)
    expect(page.locator("#id_runtime")).to_have_value("sglang")
    assert not Task.objects.exists()

    page.fill("#id_name", "Second try")
    page.get_by_role("button", name="Create task", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Created task “Second try”.")
    task = Task.objects.get(name="Second try")
    # The editor was filled from the link's merge (union, in the link's order) and never applied
    # again: that is where the grid came from, then edited by hand.
    assert task.applied_presets == [
        {"id": high_throughput.pk, "name": "High Throughput"},
        {"id": memory_efficient.pk, "name": "Memory Efficient"},
    ]
    assert (task.parameters, task.merge_strategy, task.parameters_edited) == (
        {"tp-size": [8], "mem-fraction-static": [0.85]},
        "union",
        True,
    )


def test_the_task_records_the_strategy_that_was_applied_not_the_radio_switched_before_save(page: Page) -> None:
    high_throughput, memory_efficient = system_presets()
    log_in(page)
    page.goto(f"/tasks/new/?presets={high_throughput.pk},{memory_efficient.pk}&strategy=union")
    strategy(page, "last_wins").check()
    expect(combinations(page)).to_have_text("2 combinations")
    page.get_by_role("button", name="Apply to parameters", exact=True).click()
    expect(page.locator("#id_parameters")).to_have_value(re.compile(r'"tp-size": \[1\]'))
    assert editor_grid(page) == HT_THEN_ME_LAST_WINS

    strategy(page, "union").check()  # looked at, not applied
    expect(combinations(page)).to_have_text("9 combinations, 6 skipped")
    page.fill("#id_name", "Applied last wins")
    page.fill("#id_model", MODEL)
    page.get_by_role("button", name="Create task", exact=True).click()

    expect(page.locator("#messages")).to_contain_text("Created task “Applied last wins”.")
    expect(page.get_by_text(re.compile(r"merge of, in this order"))).to_have_text("last wins merge of, in this order:")
    task = Task.objects.get(name="Applied last wins")
    assert (task.merge_strategy, task.parameters, task.parameters_edited) == (
        "last_wins",
        HT_THEN_ME_LAST_WINS,
        False,
    )


def test_the_detail_page_names_the_strategy_as_it_is_written_on_the_form(page: Page) -> None:
    high_throughput, memory_efficient = system_presets()
    user = log_in(page)
    task = make_task(
        parameters=ME_THEN_HT_LAST_WINS,
        applied_presets=[
            {"id": memory_efficient.pk, "name": "Memory Efficient"},
            {"id": high_throughput.pk, "name": "High Throughput"},
        ],
        merge_strategy="last_wins",
        created_by=user,
    )
    page.goto(task.get_absolute_url())
    expect(page.locator("ol.provenance")).to_have_count(1)
    expect(page.get_by_text(re.compile(r"merge of, in this order"))).to_have_text(
        re.compile(r"^last wins merge of, in this order:")
    )
