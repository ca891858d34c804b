"""The GPU timeline of a finished run in headless Chromium, at a laptop's width and a phone's: a bar
per experiment on each GPU it held, the page never scrolling sideways. Screenshots go to
``test-artifacts/<width>-gpu-timeline.png``, to be looked at by a person."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from tasks.models import Task
from tasks.states import ExperimentRole, ExperimentStatus, TaskStatus
from tests.factories import make_task
from tests.tasks.runs import GRID, in_status, make_experiment, measured

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-lin-123"
WIDTHS = [1366, 390]
START = timezone.now() - timedelta(hours=1)


def at(seconds: float):
    return START + timedelta(seconds=seconds)


def log_in(page: Page) -> Any:
    user = get_user_model().objects.create_user("lin", password=PASSWORD)
    page.goto("/login/")
    page.fill("#id_username", "lin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
    return user


def packed_run(user: Any) -> Task:
    """Five experiments packed on four GPUs of one host: seven bars, one per GPU each held."""
    task = in_status(make_task(name="Packed sweep", parameters=GRID, gpus=2, created_by=user), TaskStatus.COMPLETED)
    on = {"host": "gpu-node-1"}
    measured(task, 1, 300.0, 2.0, gpu_ids=["0"], started_at=at(0), serving_at=at(12), finished_at=at(40), **on)
    measured(task, 2, 320.0, 1.9, gpu_ids=["1"], started_at=at(0), serving_at=at(11), finished_at=at(50), **on)
    make_experiment(task, 3, ExperimentStatus.FAILED, gpu_ids=["2", "3"], started_at=at(0), finished_at=at(70), **on)
    measured(task, 4, 510.0, 1.4, gpu_ids=["0", "1"], started_at=at(55), serving_at=at(75), finished_at=at(120), **on)
    make_experiment(
        task,
        5,
        ExperimentStatus.CANCELLED,
        gpu_ids=["2"],
        started_at=at(75),
        serving_at=at(85),
        finished_at=at(110),
        **on,
    )
    return task


@pytest.mark.parametrize("width", WIDTHS, ids=[f"{width}px" for width in WIDTHS])
def test_a_finished_runs_gpu_timeline_shows_every_bar_without_scrolling_sideways(
    page: Page, artifacts_dir: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    task = packed_run(log_in(page))

    page.goto(task.get_absolute_url())

    timeline = page.locator("#gpu-timeline")
    expect(timeline.get_by_role("heading", name="GPU timeline")).to_be_visible()
    bars = timeline.locator("svg.timeline .timeline-bar")
    expect(bars).to_have_count(7)
    for index in range(7):
        box = bars.nth(index).bounding_box()
        assert box is not None
        assert box["width"] >= 1
        assert box["height"] >= 5
        assert box["x"] + box["width"] <= width
    expect(timeline.locator("svg.timeline .timeline-failed")).to_have_count(2)
    expect(timeline.locator("svg.timeline")).to_have_attribute("aria-labelledby", re.compile("gpu-timeline-title"))
    sizes = page.evaluate("({scroll: document.documentElement.scrollWidth, view: window.innerWidth})")
    assert sizes["scroll"] <= sizes["view"], f"the page scrolls sideways at {width} px: {sizes}"

    timeline.scroll_into_view_if_needed()
    screenshot = artifacts_dir / f"{width}-gpu-timeline.png"
    timeline.screenshot(path=screenshot)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    # A bar leads to its experiment's row.
    bars.first.click()
    expect(page).to_have_url(re.compile(r"#experiment-1$"))
    expect(page.locator("#experiment-1")).to_contain_text("GPU 0 on gpu-node-1")


def test_the_results_page_of_two_finalists_within_noise_says_tied_and_shows_both(
    page: Page, artifacts_dir: Path
) -> None:
    task = in_status(
        make_task(name="Close call", parameters=GRID, gpus=1, finalists=2, repeats=2, created_by=log_in(page)),
        TaskStatus.COMPLETED,
    )
    make_experiment(task, 0, role=ExperimentRole.BASELINE, parameters={}, score=1000.0, throughput=1000.0, latency=2.0)
    # Medians 1,200 (spread 60) and 1,150 (spread 80): 50 apart, less than their half spreads (70).
    first = measured(task, 1, 1200.0, 1.5)
    second = measured(task, 2, 1150.0, 1.6)
    for number, original, throughput in [
        (3, first, 1170.0),
        (4, first, 1230.0),
        (5, second, 1110.0),
        (6, second, 1190.0),
    ]:
        measured(
            task,
            number,
            throughput,
            1.5,
            role=ExperimentRole.REPEAT,
            repeat_of=original,
            parameters=original.parameters,
        )

    page.goto(f"/tasks/{task.pk}/results/")

    verdict = page.locator("#verdict")
    expect(verdict.get_by_role("heading", name="Tied within noise")).to_be_visible()
    expect(verdict.locator(".badge.tied")).to_have_count(2)
    expect(verdict.locator("#configuration-1")).to_contain_text("Tied")
    expect(verdict.locator("#configuration-2")).to_contain_text("Tied")
    expect(page.get_by_role("heading", name=re.compile("^Winner"))).to_have_count(0)
    screenshot = artifacts_dir / "tied-within-noise.png"
    verdict.screenshot(path=screenshot)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
