"""An accessibility smoke check of the task pages."""

from __future__ import annotations

import pytest

from tests.html import accessibility_problems
from tests.tasks.pages.helpers import (
    LIST,
    NEW,
    chips,
    edit_url,
    with_presets,
)
from tests.tasks.runs import (
    action_url,
    page,
    progress_url,
)

pytestmark = pytest.mark.django_db


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


@pytest.mark.parametrize("url", ["detail", "results", "restart", "progress"])
def test_run_pages_label_every_control_and_have_one_heading(signed_in, finished, url):
    address = {
        "detail": finished.get_absolute_url(),
        "results": f"/tasks/{finished.pk}/results/",
        "restart": action_url(finished, "restart"),
        "progress": progress_url(finished),
    }[url]

    response = signed_in.get(address)

    assert response.status_code == 200
    problems = accessibility_problems(response.content)
    if url == "progress":  # a fragment: its heading is the page's
        problems.remove("expected exactly one <h1>, found 0")
    assert problems == []


def test_a_running_task_page_stays_accessible(signed_in, running):
    response = signed_in.get(running.get_absolute_url())

    assert accessibility_problems(response.content) == []
    assert page(response).find("progress").attrs["aria-label"] == "Experiments finished"
