"""Running a task from its page in headless Chromium, against a real `manage.py worker` and the
stand-in engine: start, live progress, results, copy, sort, save as preset; cancel, resume, restart."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from playwright.sync_api import Dialog, Locator, Page, expect

from presets.models import ParameterPreset
from tasks.models import Experiment, Task
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_preset, make_task
from tests.workers import Process, Processes, database_url, wait_until

if TYPE_CHECKING:
    from tests.browser.conftest import ConsoleErrors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-grace-123"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
RUN_TIMEOUT_MS = 60_000  # four experiments against the stand-in take a few seconds; a slow machine more
CANCEL_TIMEOUT_MS = 10_000  # "a running engine stops within seconds"
BEST = {"tp-size": 2, "mem-fraction-static": 0.8}  # tp 2 is the faster; a fraction above 0.95 runs out of memory


@pytest.fixture
def worker(transactional_db: None, tmp_path: Path) -> Iterator[Process]:
    """One `manage.py worker` on the test database; its output is printed at teardown (pytest shows
    it when the test fails). Requesting transactional_db stops it before the database is flushed."""
    processes = Processes(database_url(connection.settings_dict), tmp_path)
    process = processes.worker()
    yield process
    processes.stop_all()
    print(processes.output())


def log_in(page: Page, username: str = "grace") -> Any:
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    page.goto("/login/?next=/tasks/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/tasks/$"))
    return user


def task_status(page: Page) -> Locator:
    """The status badge in the page heading: "Draft", "Running", "Completed", …"""
    return page.locator("h1 .status")


def run_panel(page: Page) -> Locator:
    return page.locator("section#run")


def experiment_rows(page: Page) -> Locator:
    return page.locator("table.experiments-table tbody tr")


def mark_page(page: Page) -> None:
    """A flag that disappears when the browser loads a new page (navigation or reload)."""
    page.evaluate("() => { window.__marker = 1 }")


def still_the_same_page(page: Page) -> bool:
    return page.evaluate("() => window.__marker === 1")


def assert_fresh_png(path: Path, started: float) -> None:
    assert path.stat().st_size > 0
    assert path.stat().st_mtime >= started  # written by this run, not left over from an earlier one
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_task_built_from_two_presets_runs_live_and_its_best_configuration_becomes_a_preset(
    page: Page, worker: Process, artifacts_dir: Path, console_errors: ConsoleErrors
) -> None:
    user = log_in(page)
    make_preset(name="Fast TP", runtime="sglang", parameters={"tp-size": [1, 2]}, created_by=user)
    make_preset(name="Memory", runtime="sglang", parameters={"mem-fraction-static": [0.8, 0.97]}, created_by=user)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])

    # The New task form: two presets merged, applied, and a benchmark small enough to finish quickly.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New task", exact=True).click()
    expect(page.get_by_role("heading", name="New task", exact=True)).to_be_visible()
    page.fill("#id_name", "Two presets run")
    page.fill("#id_model", MODEL)
    page.select_option("#id_runtime", "sglang")
    page.fill("#id_gpus", "2")
    page.locator("#id_use_presets").check()
    page.get_by_role("button", name="Add Fast TP", exact=True).click()
    expect(page.locator("ol.chips .chip-name")).to_have_text(["1. Fast TP"])
    page.get_by_role("button", name="Add Memory", exact=True).click()
    expect(page.locator("ol.chips .chip-name")).to_have_text(["1. Fast TP", "2. Memory"])
    expect(page.locator("#merge-preview .combinations")).to_have_text("4 combinations")
    page.get_by_role("button", name="Apply to parameters", exact=True).click()
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 4 combinations.")
    page.fill("#id_concurrency_levels", "1, 2")
    page.fill("#id_requests_per_level", "4")
    page.fill("#id_input_tokens", "8")
    page.fill("#id_output_tokens", "128")  # about 5 s in all: several polls see the run under way
    page.fill("#id_max_seconds_per_level", "5")
    # This flow is the presets' grid run live; the baseline and the finalists' repeats add runs of their
    # own (tests/tasks/test_packing.py runs them, tests/browser/test_gpu_timeline.py shows a tie).
    page.locator("#id_baseline").uncheck()
    page.fill("#id_finalists", "0")
    page.get_by_role("button", name="Create task", exact=True).click()

    expect(page).to_have_url(re.compile(r"/tasks/\d+/$"))
    task = Task.objects.get(name="Two presets run")
    assert task.parameters == {"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.97]}
    assert (task.gpus, task.concurrency_levels, task.requests_per_level) == (2, [1, 2], 4)
    expect(task_status(page)).to_have_text("Draft")
    expect(run_panel(page)).to_contain_text("Start runs 4 experiments")

    # Start is a plain form: one page load. From then on the panel updates itself in place.
    page.get_by_role("button", name="Start", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Started “Two presets run”: 4 experiment(s) queued")
    expect(page.locator("#run-progress")).to_be_visible()
    expect(page.locator("#run-progress")).to_have_attribute("max", "4")
    mark_page(page)
    page.evaluate("() => { document.querySelector('#run').dataset.asLoaded = '1' }")  # gone once swapped
    # Read in one evaluation: the run may end, and the page reload, between two separate reads.
    seen = page.wait_for_function(
        """() => {
            const panel = document.querySelector("#run");
            const text = panel?.querySelector(".progress-text")?.textContent ?? "";
            if (panel.dataset.asLoaded || !/Experiment [2-4] of 4/.test(text)) return null;
            return {
                text: text.replace(/\\s+/g, " ").trim(),
                marker: window.__marker,
                badge: document.querySelector("h1 .status").textContent.trim(),
                panel: panel.querySelector(".run-times .status").textContent.trim(),
            };
        }""",
        timeout=RUN_TIMEOUT_MS,
    ).json_value()
    assert seen["marker"] == 1, f"{seen['text']!r} came with a page load, not by polling"
    # Everything that shows the status moves together: the heading's badge is swapped with the panel.
    assert seen["badge"] == seen["panel"] == "Running"
    expect(experiment_rows(page)).to_have_count(4)

    # The poll that sees the end asks for a reload (HX-Refresh), so the header and actions are current.
    expect(task_status(page)).to_have_text("Completed", timeout=RUN_TIMEOUT_MS)
    assert not still_the_same_page(page), "the page was not reloaded when the run ended"
    expect(run_panel(page)).not_to_have_attribute("hx-trigger", re.compile("every"))
    expect(page.locator("#run-progress")).to_have_attribute("value", "4")
    expect(run_panel(page).locator(".progress-text")).to_contain_text("4 of 4 experiments finished")
    expect(run_panel(page).get_by_role("link", name="Restart", exact=True)).to_be_visible()

    # Four rows: the two over 0.95 ran out of memory, the two others succeeded.
    rows = experiment_rows(page)
    expect(rows).to_have_count(4)
    failed = page.locator("table.experiments-table tbody tr.experiment-failed")
    expect(failed).to_have_count(2)
    for index in range(2):
        expect(failed.nth(index)).to_contain_text("mem-fraction-static 0.97")
        expect(failed.nth(index).locator(".error-text")).to_contain_text("out of memory")
    expect(page.locator("table.experiments-table tbody tr.experiment-succeeded")).to_have_count(2)
    best = Experiment.objects.get(task=task, parameters=BEST)
    assert best.status == ExperimentStatus.SUCCEEDED
    assert best.score == max(e.score for e in task.experiments.all() if e.score is not None)

    # The best configuration: its card, its exact command, its label in the plot.
    card = page.locator("#results .best-config")
    expect(card.get_by_role("heading")).to_have_text(f"Best configuration: experiment {best.number}")
    expect(card.locator(".summary .value")).to_have_text(["tp-size 2", "mem-fraction-static 0.8"])
    command = page.locator("code#best-command")
    expect(command).to_contain_text("--tp-size 2")
    expect(command).to_contain_text("--mem-fraction-static 0.8")
    expect(page.locator(f"tr#experiment-{best.number}")).to_have_class(re.compile(r"\bbest-row\b"))
    expect(page.locator(f"tr#experiment-{best.number} .badge.best")).to_have_text("Best")
    plot = page.locator("#results figure.plot svg")
    expect(plot).to_be_visible()
    expect(plot.locator("text.plot-best")).to_have_text(re.compile(rf"^#{best.number} best: .+ tok/s at .+ s$"))
    best_marker = plot.locator(".plot-point.plot-best[data-number]")  # not the legend's sample
    expect(best_marker).to_have_count(1)
    expect(best_marker).to_have_attribute("data-number", str(best.number))
    expect(page.get_by_role("link", name="CSV", exact=True)).to_have_attribute("href", f"/tasks/{task.pk}/results.csv")
    expect(page.get_by_role("link", name="JSON", exact=True)).to_have_attribute(
        "href", f"/tasks/{task.pk}/results.json"
    )
    expect(page.get_by_role("link", name="Results page", exact=True)).to_have_attribute(
        "href", f"/tasks/{task.pk}/results/"
    )

    # Copy puts the command on the clipboard.
    copy = card.get_by_role("button", name="Copy", exact=True)
    copy.click()
    expect(card.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == command.inner_text().strip()

    # Sorting by score swaps the panel in place, best first.
    mark_page(page)
    run_panel(page).locator(".sort-links").get_by_role("link", name="Score", exact=True).click()
    expect(run_panel(page).locator(".sort-links [aria-current=true]")).to_have_text("Score")
    expect(rows.first).to_have_id(f"experiment-{best.number}")
    expect(rows.nth(1)).to_have_class(re.compile(r"\bexperiment-succeeded\b"))
    assert still_the_same_page(page)

    # A failed experiment keeps the engine's own words.
    log = failed.first.locator("details.log")
    expect(log.locator("pre")).to_be_hidden()
    log.locator("summary").click()
    expect(log).to_have_attribute("open", "")
    expect(log.locator("pre")).to_be_visible()
    expect(log.locator("pre")).to_contain_text("CUDA out of memory")

    screenshot = artifacts_dir / "task-results.png"
    started = time.time() - 1
    page.screenshot(path=screenshot, full_page=True)
    assert_fresh_png(screenshot, started)
    assert console_errors.unexpected() == []

    # Save as preset: named by the user (a suggestion filled in), holding exactly the best's values.
    name = card.get_by_role("textbox", name="Preset name")
    expect(name).to_have_value(f"Two presets run #{best.number} (config)")
    name.fill("Two presets: the best")
    card.get_by_role("button", name="Save as preset", exact=True).click()
    expect(page).to_have_url(re.compile(r"/presets/\d+/$"))
    expect(page.locator("#messages")).to_contain_text(
        f"Saved experiment {best.number}'s configuration as the preset “Two presets: the best”."
    )
    preset = ParameterPreset.objects.get(metadata__source_experiment=best.number)
    assert preset.name == "Two presets: the best"
    assert urlsplit(page.url).path == preset.get_absolute_url()
    assert preset.parameters == {"tp-size": [2], "mem-fraction-static": [0.8]}
    assert (preset.runtime, preset.created_by) == ("sglang", user)
    grid = page.locator("table.grid-table tbody tr")
    expect(grid.filter(has=page.get_by_role("rowheader", name="--tp-size", exact=True)).locator(".value")).to_have_text(
        ["2"]
    )
    expect(
        grid.filter(has=page.get_by_role("rowheader", name="--mem-fraction-static", exact=True)).locator(".value")
    ).to_have_text(["0.8"])


def test_a_running_task_is_cancelled_resumable_and_restarted_after_a_confirmation(
    page: Page, worker: Process, artifacts_dir: Path, console_errors: ConsoleErrors
) -> None:
    user = log_in(page)
    # One experiment whose benchmark takes about half a minute: 40 requests of 400 tokens, one at a time.
    task = make_task(
        name="Long benchmark",
        parameters={"tp-size": [1]},
        concurrency_levels=[1],
        requests_per_level=40,
        input_tokens=8,
        output_tokens=400,
        created_by=user,
    )
    dialogs: list[str] = []

    def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(task.get_absolute_url())
    run_panel(page).get_by_role("button", name="Start", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Started “Long benchmark”")
    mark_page(page)
    expect(run_panel(page).locator(".progress-text .step")).to_contain_text(
        "#1: benchmarking level 1", timeout=RUN_TIMEOUT_MS
    )
    expect(page.locator("#experiment-1 .status")).to_have_text("Benchmarking")
    assert still_the_same_page(page)

    # Cancel: the task at once, the engine within seconds.
    started_cancel = time.monotonic()
    run_panel(page).get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Cancelled “Long benchmark”")
    expect(task_status(page)).to_have_text("Cancelled")
    experiment = task.experiments.get()
    wait_until(
        lambda: Experiment.objects.filter(pk=experiment.pk, status=ExperimentStatus.CANCELLED).exists(),
        timeout=CANCEL_TIMEOUT_MS / 1000,
        what="the worker to stop the cancelled experiment",
    )
    assert time.monotonic() - started_cancel < CANCEL_TIMEOUT_MS / 1000
    # The panel keeps polling while the engine stops ("stopping"), then reloads the page once.
    expect(page.locator("#experiment-1 .status")).to_have_text("Cancelled", timeout=CANCEL_TIMEOUT_MS)
    expect(page.locator("#experiment-1 .error-text")).to_have_text("cancelled while running")
    expect(run_panel(page).get_by_role("button", name="Resume", exact=True)).to_be_visible()
    expect(run_panel(page).get_by_role("button", name="Cancel", exact=True)).to_have_count(0)
    screenshot = artifacts_dir / "task-cancelled.png"
    started = time.time() - 1
    page.screenshot(path=screenshot, full_page=True)
    assert_fresh_png(screenshot, started)

    # Restart asks first, then queues the task again from a clean slate.
    run_panel(page).get_by_role("link", name="Restart", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Restarted “Long benchmark” from a clean slate.")
    assert dialogs == ["Restart “Long benchmark”? Its 1 experiment and its results will be deleted."]
    expect(task_status(page)).to_have_text(re.compile(r"^(Queued|Running)$"))
    expect(run_panel(page).locator("#run-progress")).to_be_visible()
    expect(run_panel(page).locator(".progress-text .step")).to_contain_text(
        "#1: benchmarking level 1", timeout=RUN_TIMEOUT_MS
    )

    # Cancel again, so the worker is idle when the test ends.
    run_panel(page).get_by_role("button", name="Cancel", exact=True).click()
    expect(task_status(page)).to_have_text("Cancelled")
    wait_until(
        lambda: not Experiment.objects.filter(task=task).exclude(status=ExperimentStatus.CANCELLED).exists(),
        timeout=CANCEL_TIMEOUT_MS / 1000,
        what="the worker to stop the restarted experiment",
    )
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert [entry["note"] for entry in task.status_history] == [
        "started",
        "",
        "cancelled",
        "restarted",
        "",
        "cancelled",
    ]
    assert console_errors.unexpected() == []
