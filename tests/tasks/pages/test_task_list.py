"""The task list: filters, paging, htmx and its queries."""

from __future__ import annotations

import pytest

from tasks.models import Task
from tasks.states import TaskStatus
from tests.factories import make_task
from tests.tasks.pages.helpers import (
    HTMX,
    LIST,
    NEW,
    assert_is_fragment,
    page,
)

pytestmark = pytest.mark.django_db


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
