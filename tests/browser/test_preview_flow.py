"""The live merge preview in headless Chromium: a new strategy swaps only #merge-preview."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.test_task_flow import combinations, log_in, preview_values, strategy, system_presets

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_with_two_presets(page: Page) -> None:
    log_in(page)
    high, memory = system_presets()
    page.goto(f"/tasks/new/?presets={high.pk},{memory.pk}")
    expect(combinations(page)).to_have_text("9 combinations, 6 skipped")


def test_a_new_strategy_swaps_the_preview_and_leaves_the_preset_list_alone(page: Page, console_errors) -> None:
    open_with_two_presets(page)
    page.locator("ul.preset-options").evaluate("list => { list.dataset.untouched = 'yes' }")
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if "hx-request" in request.headers else None)

    strategy(page, "last_wins").check()

    expect(preview_values(page, "tp-size")).to_have_text(["1 Memory Efficient"])
    expect(combinations(page)).to_have_text("2 combinations")
    expect(page.locator("ul.preset-options")).to_have_attribute("data-untouched", "yes")
    # A read of the preview's own view: a GET of the selector, the engine and the GPUs, not the whole form.
    [request] = sent
    query = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
    assert (request.method, request.headers["hx-target"]) == ("GET", "merge-preview")
    assert urlsplit(request.url).path == "/tasks/preview/"
    assert query["merge_strategy"] == ["last_wins"]
    assert {"presets", "use_presets", "selector_present", "runtime", "gpus"} <= query.keys()
    assert "name" not in query
    assert "parameters" not in query


def test_the_preview_counts_the_gpus_typed_before_the_strategy_changed(page: Page, console_errors) -> None:
    open_with_two_presets(page)

    page.locator("#id_gpus").fill("8")
    strategy(page, "intersection").check()
    strategy(page, "union").check()

    expect(combinations(page)).to_have_text("9 combinations")


def test_quick_changes_of_strategy_end_on_the_last_one_chosen(page: Page, console_errors) -> None:
    open_with_two_presets(page)
    # Three changes in one go, as a quick hand makes them: they overlap; none may be aborted (htmx
    # logs an abort as a console error) and the last choice's preview must be the one shown.
    page.locator("fieldset.strategies").evaluate(
        """fieldset => {
            for (const value of ["intersection", "union", "last_wins"]) {
                fieldset.querySelector(`input[value=${value}]`).click();
            }
        }"""
    )

    expect(strategy(page, "last_wins")).to_be_checked()
    expect(combinations(page)).to_have_text("2 combinations")
    expect(preview_values(page, "mem-fraction-static")).to_have_text(["0.7 Memory Efficient", "0.75 Memory Efficient"])


def test_a_chip_action_after_a_strategy_change_keeps_both(page: Page, console_errors) -> None:
    open_with_two_presets(page)

    strategy(page, "last_wins").check()
    page.get_by_role("button", name="Move Memory Efficient earlier", exact=True).click()

    expect(page.locator("ol.chips .chip-name")).to_have_text(["1. Memory Efficient", "2. High Throughput"])
    expect(strategy(page, "last_wins")).to_be_checked()
    expect(preview_values(page, "tp-size")).to_have_text(["2 High Throughput", "4 High Throughput"])
