"""The first hour of a new user, walked in headless Chromium at a laptop's width and a phone's: the
README's flow and the preset journeys. On every page: the page never scrolls sideways, no template
syntax is printed, nothing answers 404 (a favicon included) and the console stays clean (the
autouse ``console_errors`` fixture). Each step is saved as ``test-artifacts/<width>-<step>.png``,
to be looked at by a person."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, Response, expect

from presets.models import ParameterPreset
from presets.seeding import seed_system_presets
from tasks.models import Task
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_preset
from tests.tasks.runs import GRID, VIOLATION, in_status, make_experiment, measured

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-lin-123"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
WIDTHS = [1366, 390]
TEMPLATE_SYNTAX = ("{#", "#}", "{%", "{{")  # a closing "}}" is also JSON (an engine flag's default)
LONG_WORD = "x" * 500  # an unbroken word (a pasted hash, a base64 blob), as long as a flag value may be


# The elements that reach past the viewport's right edge without a scroll box of their own to hold them.
PAST_THE_EDGE = """() => [...document.querySelectorAll("body *")].filter(element => {
  if (element.getBoundingClientRect().right <= window.innerWidth + 1) return false;
  for (let box = element.parentElement; box; box = box.parentElement) {
    const scrolls = getComputedStyle(box).overflowX !== "visible";
    if (scrolls && box.getBoundingClientRect().right <= window.innerWidth + 1) return false;
  }
  return true;
}).slice(0, 8).map(element => `${element.tagName.toLowerCase()}.${element.className}`)"""
# How many lines each element's text takes on screen.
LINES = """elements => elements.map(element => {
  const range = document.createRange();
  range.selectNodeContents(element);
  return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
})"""


class Walk:
    """Checks and photographs each page a test goes through at one viewport width."""

    def __init__(self, page: Page, width: int, artifacts_dir: Path) -> None:
        self.page, self.width, self.artifacts_dir = page, width, artifacts_dir
        self.missing: list[str] = []
        page.set_viewport_size({"width": width, "height": 900})
        page.on("response", self._on_response)

    def _on_response(self, response: Response) -> None:
        if response.status == 404:
            self.missing.append(response.url)

    def step(self, name: str, *, full_page: bool = True) -> None:
        page = self.page
        page.wait_for_load_state("load")
        sizes = page.evaluate("({scroll: document.documentElement.scrollWidth, view: window.innerWidth})")
        text = page.locator("body").inner_text()
        page.screenshot(path=self.artifacts_dir / f"{self.width}-{name}.png", full_page=full_page)
        if sizes["scroll"] > sizes["view"]:
            wide = page.evaluate(PAST_THE_EDGE)
            pytest.fail(f"{name}: the page scrolls sideways at {self.width} px ({sizes}), past the edge: {wide}")
        assert [syntax for syntax in TEMPLATE_SYNTAX if syntax in text] == [], f"{name}: template syntax shown"
        assert self.missing == [], f"{name}: 404 for {self.missing}"


def log_in(walk: Walk, username: str = "lin") -> Any:
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    walk.page.goto("/login/")
    walk.step("login")
    walk.page.fill("#id_username", username)
    walk.page.fill("#id_password", PASSWORD)
    walk.page.get_by_role("button", name="Log in", exact=True).click()
    expect(walk.page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    return user


def finished_task(user: Any) -> Task:
    """A completed run, as tests/tasks/conftest.py's ``finished``: a best, a violation, a failure."""
    task = Task.objects.create(
        name="Llama sweep",
        model=MODEL,
        runtime="sglang",
        parameters=GRID,
        gpus=2,
        created_by=user,
    )
    task = in_status(task, TaskStatus.COMPLETED)
    measured(task, 1, throughput=300.0, latency=2.0)
    measured(task, 2, throughput=500.0, latency=3.0, score=None, slo_violation=VIOLATION)
    make_experiment(task, 3, ExperimentStatus.FAILED, error="engine exited with code 1 before it was ready")
    measured(task, 4, throughput=200.0, latency=1.0)
    return task


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{width}px" for width in WIDTHS])
def test_the_first_hour_reads_well_at_every_width(page: Page, artifacts_dir: Path, width: int) -> None:
    seed_system_presets()
    walk = Walk(page, width, artifacts_dir)
    user = log_in(walk)
    walk.step("dashboard")

    # Presets: the list, a row's actions in one compact menu, a new preset, its page, edit, duplicate.
    page.goto("/presets/")
    walk.step("presets")
    row = page.locator("#preset-table tbody tr").filter(has=page.get_by_role("link", name="Balanced", exact=True))
    row.get_by_text("Actions").click()
    expect(row.get_by_role("button", name="Duplicate Balanced")).to_be_visible()
    walk.step("presets-row-menu")

    page.goto("/presets/new/")
    page.fill("#id_name", "Wide TP")
    page.fill("#id_category", "performance")
    page.fill("#id_parameters", '{"tp-size": [1, 2], "chunked-prefill-size": [4096, 8192]}')
    expect(page.locator("#parameters-preview")).to_contain_text("--chunked-prefill-size")
    walk.step("preset-new")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wide TP")
    walk.step("preset-detail")

    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit “Wide TP”")
    walk.step("preset-edit")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Saved preset “Wide TP”.")

    page.get_by_role("button", name="Duplicate", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wide TP (copy)")
    walk.step("preset-duplicate")
    page.get_by_role("link", name=re.compile(r"^History")).click()
    walk.step("preset-history")

    # Long words wrap on every page that shows them.
    long = make_preset(
        name="N" * 100,
        description=f"Pasted: {LONG_WORD}",
        parameters={"tp-size": [1], "served-model-name": [LONG_WORD]},
        created_by=user,
    )
    page.goto(long.get_absolute_url())
    walk.step("preset-long-words")
    page.goto("/presets/")
    walk.step("presets-long-words")

    # The README's flow: a preset's "Use in a new task", the merge preview, Save, the task's page.
    balanced = ParameterPreset.objects.get(name="Balanced", is_system=True)
    page.goto(balanced.get_absolute_url())
    page.get_by_role("link", name="Use in a new task", exact=True).click()
    expect(page.locator("#merge-preview")).to_contain_text("Balanced")
    walk.step("task-new-merge")
    page.get_by_role("button", name="Apply to parameters", exact=True).click()
    expect(page.locator("#parameters-preview")).to_contain_text("Valid")
    page.fill("#id_name", "Llama first try")
    page.fill("#id_model", MODEL)
    page.get_by_role("button", name="Create task", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Llama first try")
    walk.step("task-detail")
    # A launch command reads as one line that scrolls in its box, never "--port 30" / "000".
    assert page.locator("code.command").evaluate_all(LINES) == [1, 1]

    page.goto(finished_task(user).get_absolute_url())
    expect(page.locator("#results")).to_contain_text("Best configuration")
    walk.step("task-results")
    assert set(page.locator("code.command").evaluate_all(LINES)) == {1}
    page.goto("/tasks/")
    walk.step("tasks")

    # Where API tokens live, reached from the header.
    page.get_by_role("link", name=re.compile("API tokens")).click()
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    walk.step("account")
    page.goto("/engines/")
    walk.step("engines", full_page=False)  # hundreds of flags: the first screen is enough to look at
