"""The tasks API under /api/tasks/: list, get, create from a grid, from presets (merged in the order
given) or both, replace, change, delete; its errors; its robustness; its OpenAPI schema."""

from __future__ import annotations

import json

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tasks.models import Task
from tasks.states import TaskStatus
from tests.factories import make_task, make_token_key

pytestmark = pytest.mark.django_db

LIST = "/api/tasks/"
MB = 1_000_000

FIELDS = {
    "id",
    "preset_versions",
    "seed",
    "status_changed_at",
    "status_history",
    "started_at",
    "finished_at",
    "error",
    "name",
    "description",
    "model",
    "runtime",
    "engine_version",
    "catalogue_version",
    "gpus",
    "parameters",
    "optimization_strategy",
    "objective",
    "max_experiments",
    "experiment_timeout",
    "skip_after_oom",
    "baseline",
    "finalists",
    "repeats",
    "load_mode",
    "concurrency_levels",
    "request_rates",
    "input_tokens",
    "input_tokens_max",
    "output_tokens",
    "output_tokens_max",
    "shared_prefix",
    "requests_per_level",
    "warmup_requests",
    "max_seconds_per_level",
    "early_stop",
    "slo_ttft_p90_ms",
    "slo_tpot_p90_ms",
    "slo_e2e_p99_s",
    "slo_min_success_rate",
    "status",
    "applied_presets",
    "merge_strategy",
    "parameters_edited",
    "combinations",
    "runnable",
    "skipped",
    "warnings",
    "created_by",
    "created_at",
    "updated_at",
}
BASE = {"name": "Llama sweep", "model": "meta-llama/Llama-3.1-8B-Instruct", "runtime": "sglang"}
HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS = {
    "tp-size": [1],
    "mem-fraction-static": [0.7, 0.75],
    "schedule-policy": ["fcfs"],
    "enable-mixed-chunk": [True],
    "chunked-prefill-size": [2048],
}
MEMORY_EFFICIENT_THEN_HIGH_THROUGHPUT_LAST_WINS = {
    "tp-size": [2, 4],
    "mem-fraction-static": [0.9],
    "chunked-prefill-size": [2048],
    "schedule-policy": ["fcfs"],
    "enable-mixed-chunk": [True],
}


def detail_url(task: Task | int | str, slash: bool = False) -> str:
    return f"/api/tasks/{getattr(task, 'pk', task)}" + ("/" if slash else "")


def error_paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


def assert_error_shape(response) -> None:
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"detail", "errors"}
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"}


@pytest.fixture
def mine(user) -> Task:
    return make_task(name="Mine", description="Untouched", parameters={"tp-size": [1, 2]}, created_by=user)


@pytest.fixture
def built_from_presets(user, high, memory) -> Task:
    return make_task(
        name="From presets",
        created_by=user,
        parameters=HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
        applied_presets=[{"id": high.pk, "name": high.name}, {"id": memory.pk, "name": memory.name}],
        merge_strategy="last_wins",
    )


def assert_unchanged(task: Task) -> None:
    before = {field: getattr(task, field) for field in ("name", "description", "parameters", "status", "updated_at")}
    task.refresh_from_db()
    assert {field: getattr(task, field) for field in before} == before


# Addresses: with or without the trailing slash, never a redirect


@pytest.mark.parametrize("path", ["/api/tasks/", "/api/tasks"], ids=["slash", "no-slash"])
def test_the_list_answers_with_or_without_the_slash(api, mine, path):
    response = api.get(path)

    assert response.status_code == 200
    assert [task["name"] for task in response.json()] == ["Mine"]


@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no-slash"])
def test_one_task_answers_with_or_without_the_slash(api, mine, slash):
    response = api.get(detail_url(mine, slash=slash))

    assert response.status_code == 200
    assert response.json()["id"] == mine.pk


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/"], ids=["no-slash", "slash"])
def test_create_answers_with_or_without_the_slash(api, path):
    response = api.post(path, {**BASE, "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201
    assert Task.objects.count() == 1


@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no-slash"])
@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_changes_answer_with_or_without_the_slash(api, mine, method, slash):
    body = {**BASE, "parameters": {"tp-size": [4]}} if method != "delete" else None

    response = getattr(api, method)(detail_url(mine, slash=slash), body, format="json")

    assert response.status_code in {200, 204}


# List


def test_the_list_answers_every_task_newest_first_in_the_documented_shape(api, user, other_user):
    make_task(name="Older", created_by=other_user)
    make_task(name="Newer", created_by=user)

    response = api.get(LIST)

    body = response.json()
    assert [task["name"] for task in body] == ["Newer", "Older"]
    assert set(body[0]) == FIELDS
    assert [task["created_by"] for task in body] == ["ada", "grace"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        pytest.param("status=running", ["Qwen latency"], id="status"),
        pytest.param("runtime=sglang", ["Mistral", "Llama sweep"], id="runtime"),
        pytest.param("search=QWEN", ["Qwen latency"], id="search"),
        pytest.param("search=night", ["Mistral"], id="search-description"),
        pytest.param("runtime=sglang&status=completed", ["Mistral"], id="both"),
    ],
)
def test_the_list_filters_by_status_runtime_and_search(api, query, names):
    make_task(name="Llama sweep")
    make_task(name="Qwen latency", model="Qwen/Qwen2.5-7B", runtime="vllm", status=TaskStatus.RUNNING)
    make_task(name="Mistral", description="Over night", status=TaskStatus.COMPLETED)

    response = api.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert [task["name"] for task in response.json()] == names


def test_an_unknown_filter_value_is_a_400_naming_the_filter(api):
    response = api.get(f"{LIST}?status=bogus")

    assert response.status_code == 400
    assert_error_shape(response)
    assert error_paths(response) == ["status"]


def test_the_list_runs_the_same_few_queries_for_many_tasks(api, user):
    make_task(name="Task 000", created_by=user)
    with CaptureQueriesContext(connection) as one:
        api.get(LIST)
    for number in range(1, 200):
        make_task(name=f"Task {number:03}", created_by=user)

    with CaptureQueriesContext(connection) as many:
        response = api.get(LIST)

    assert len(response.json()) == 200
    assert len(many) == len(one)
    assert sum("tasks_task" in query["sql"] for query in many) == 2  # the count and the page


def test_the_list_pages_with_the_total_and_links_in_headers(api, user):
    for number in range(3):
        make_task(name=f"Task {number}", created_by=user)

    response = api.get(LIST, {"page_size": 2})

    assert [task["name"] for task in response.json()] == ["Task 2", "Task 1"]
    assert response["X-Total-Count"] == "3"
    assert response["Link"] == '<http://testserver/api/tasks/?page_size=2&page=2>; rel="next"'


# Get one


def test_get_one_answers_the_task_and_where_it_came_from(api, built_from_presets, high, memory):
    response = api.get(detail_url(built_from_presets))

    body = response.json()
    assert set(body) == FIELDS
    assert body["name"] == "From presets"
    assert body["parameters"] == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert body["applied_presets"] == [
        {"id": high.pk, "name": "High Throughput"},
        {"id": memory.pk, "name": "Memory Efficient"},
    ]
    assert body["merge_strategy"] == "last_wins"
    assert body["parameters_edited"] is False
    assert body["combinations"] == 2
    assert body["status"] == "draft"
    assert body["concurrency_levels"] == [1, 8, 32]
    assert body["created_by"] == "ada"


def test_anyone_signed_in_may_read_another_users_task(api, other_user):
    task = make_task(name="Theirs", created_by=other_user)

    assert api.get(detail_url(task)).json()["name"] == "Theirs"


@pytest.mark.parametrize("raw", ["999", "abc", "0", "-1", "1.5", "99999999999999999999"])
def test_a_missing_task_is_404_naming_it(api, raw):
    response = api.get(f"/api/tasks/{raw}")

    assert response.status_code == 404
    assert response.json() == {"detail": f"Task {raw} not found"}


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_changing_a_missing_task_is_404(api, method):
    response = getattr(api, method)("/api/tasks/999", {**BASE, "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Task 999 not found"}


# Create


def test_create_with_parameters_only_records_no_presets(api, user):
    response = api.post(LIST, {**BASE, "parameters": {"--tp_size": [1, 2], "schedule-policy": ["lpm"]}}, format="json")

    assert response.status_code == 201
    body = response.json()
    task = Task.objects.get()
    assert body["id"] == task.pk
    assert task.name == "Llama sweep"
    assert task.parameters == {"tp-size": [1, 2], "schedule-policy": ["lpm"]}
    assert task.applied_presets == []
    assert task.merge_strategy == ""
    assert task.parameters_edited is False
    assert task.created_by == user
    assert task.status == TaskStatus.DRAFT
    assert body["merge_strategy"] is None
    assert body["combinations"] == 2


def test_create_fills_the_model_defaults(api):
    api.post(LIST, {**BASE, "parameters": {"tp-size": [1]}}, format="json")

    task = Task.objects.get()
    assert task.concurrency_levels == [1, 8, 32]
    assert (task.input_tokens, task.output_tokens, task.requests_per_level) == (512, 256, 100)
    assert (task.max_seconds_per_level, task.experiment_timeout, task.gpus) == (120, 900, 1)
    assert (task.optimization_strategy, task.objective, task.max_experiments) == ("grid", "maximize_throughput", None)


def test_create_stores_every_field_given(api):
    body = {
        **BASE,
        "description": "All of it",
        "engine_version": "v0.5.2",
        "gpus": 4,
        "parameters": {"tp-size": [1, 2]},
        "optimization_strategy": "bayesian",
        "objective": "minimize_tpot",
        "max_experiments": 10,
        "experiment_timeout": 600,
        "concurrency_levels": [64, 1, 8],
        "input_tokens": 2048,
        "output_tokens": 64,
        "requests_per_level": 20,
        "max_seconds_per_level": 30,
        "slo_ttft_p90_ms": 200.0,
        "slo_tpot_p90_ms": 20.5,
        "slo_e2e_p99_s": 9.0,
        "slo_min_success_rate": 0.95,
    }

    response = api.post(LIST, body, format="json")

    assert response.status_code == 201
    task = Task.objects.get()
    stored = {field: getattr(task, field) for field in body}
    assert stored == {**body, "concurrency_levels": [1, 8, 64]}


def test_read_only_fields_in_the_body_are_ignored(api, high):
    response = api.post(
        LIST,
        {
            **BASE,
            "parameters": {"tp-size": [1]},
            "status": "running",
            "applied_presets": [{"id": high.pk, "name": "Forged"}],
            "parameters_edited": True,
            "merge_strategy": "last_wins",
            "id": 777,
        },
        format="json",
    )

    assert response.status_code == 201
    task = Task.objects.get()
    assert task.pk != 777
    assert (task.status, task.applied_presets, task.parameters_edited, task.merge_strategy) == ("draft", [], False, "")


def test_create_from_presets_merges_them_in_order_and_records_where_the_grid_came_from(api, high, memory):
    response = api.post(LIST, {**BASE, "presets": [high.pk, memory.pk], "merge_strategy": "last_wins"}, format="json")

    assert response.status_code == 201
    task = Task.objects.get()
    assert task.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert task.applied_presets == [
        {"id": high.pk, "name": "High Throughput"},
        {"id": memory.pk, "name": "Memory Efficient"},
    ]
    assert task.merge_strategy == "last_wins"
    assert task.parameters_edited is False
    body = response.json()
    assert body["applied_presets"] == task.applied_presets
    assert body["merge_strategy"] == "last_wins"
    assert "presets" not in body


def test_create_from_presets_without_a_strategy_merges_by_union(api, high, memory):
    api.post(LIST, {**BASE, "presets": [high.pk, memory.pk]}, format="json")

    task = Task.objects.get()
    assert task.merge_strategy == "union"
    assert task.parameters["tp-size"] == [1, 2, 4]
    assert task.parameters["mem-fraction-static"] == [0.7, 0.75, 0.9]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        pytest.param(
            ["High Throughput", "Memory Efficient"], HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS, id="HT-ME"
        ),
        pytest.param(
            ["Memory Efficient", "High Throughput"], MEMORY_EFFICIENT_THEN_HIGH_THROUGHPUT_LAST_WINS, id="ME-HT"
        ),
    ],
)
def test_create_from_the_same_presets_in_either_order_follows_that_order(api, system_presets, order, expected):
    ids = [system_presets[name].pk for name in order]

    response = api.post(LIST, {**BASE, "presets": ids, "merge_strategy": "last_wins"}, format="json")

    assert response.status_code == 201
    task = Task.objects.get()
    assert task.parameters == expected
    assert [entry["name"] for entry in task.applied_presets] == order


def test_the_two_orders_under_last_wins_give_different_grids(api, high, memory):
    first = api.post(
        LIST,
        {**BASE, "name": "HT then ME", "presets": [high.pk, memory.pk], "merge_strategy": "last_wins"},
        format="json",
    )
    second = api.post(
        LIST,
        {**BASE, "name": "ME then HT", "presets": [memory.pk, high.pk], "merge_strategy": "last_wins"},
        format="json",
    )

    assert first.json()["parameters"]["tp-size"] == [1]
    assert second.json()["parameters"]["tp-size"] == [2, 4]
    assert Task.objects.get(name="HT then ME").parameters != Task.objects.get(name="ME then HT").parameters


def test_create_with_presets_and_parameters_applies_the_parameters_on_top_flag_by_flag(api, high, memory):
    response = api.post(
        LIST,
        {
            **BASE,
            "presets": [high.pk, memory.pk],
            "merge_strategy": "union",
            "parameters": {"tp-size": [8], "--max_running_requests": [64]},
        },
        format="json",
    )

    assert response.status_code == 201
    task = Task.objects.get()
    assert task.parameters == {
        "tp-size": [8],
        "mem-fraction-static": [0.7, 0.75, 0.9],
        "schedule-policy": ["fcfs"],
        "enable-mixed-chunk": [True],
        "chunked-prefill-size": [2048],
        "max-running-requests": [64],
    }
    assert [entry["id"] for entry in task.applied_presets] == [high.pk, memory.pk]
    assert task.merge_strategy == "union"
    assert task.parameters_edited is True
    assert response.json()["parameters_edited"] is True


# Replace and change


def test_put_replaces_the_task_and_resets_what_it_did_not_send(api, user, mine):
    Task.objects.filter(pk=mine.pk).update(gpus=8, description="Old")

    response = api.put(detail_url(mine), {**BASE, "name": "Replaced", "parameters": {"tp-size": [4]}}, format="json")

    assert response.status_code == 200
    mine.refresh_from_db()
    assert (mine.name, mine.parameters, mine.gpus, mine.description) == ("Replaced", {"tp-size": [4]}, 1, "")
    assert mine.created_by == user
    assert response.json()["name"] == "Replaced"


def test_put_with_a_grid_only_drops_the_presets_it_came_from(api, built_from_presets):
    api.put(detail_url(built_from_presets), {**BASE, "parameters": {"tp-size": [4]}}, format="json")

    built_from_presets.refresh_from_db()
    assert (built_from_presets.applied_presets, built_from_presets.merge_strategy) == ([], "")
    assert built_from_presets.parameters_edited is False


def test_put_needs_the_required_fields(api, mine):
    response = api.put(detail_url(mine), {"description": "Only this"}, format="json")

    assert response.status_code == 400
    assert set(error_paths(response)) == {"name", "model", "runtime", "parameters"}
    assert_unchanged(mine)


def test_patch_changes_only_what_it_sends(api, built_from_presets):
    response = api.patch(detail_url(built_from_presets), {"description": "Now described", "gpus": 2}, format="json")

    assert response.status_code == 200
    built_from_presets.refresh_from_db()
    assert (built_from_presets.description, built_from_presets.gpus) == ("Now described", 2)
    assert built_from_presets.name == "From presets"
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert [entry["name"] for entry in built_from_presets.applied_presets] == ["High Throughput", "Memory Efficient"]
    assert built_from_presets.merge_strategy == "last_wins"
    assert built_from_presets.parameters_edited is False


def test_patching_the_grid_of_a_task_built_from_presets_marks_it_edited(api, built_from_presets):
    api.patch(detail_url(built_from_presets), {"parameters": {"tp-size": [8]}}, format="json")

    built_from_presets.refresh_from_db()
    assert built_from_presets.parameters == {"tp-size": [8]}
    assert len(built_from_presets.applied_presets) == 2
    assert built_from_presets.parameters_edited is True


def test_patching_with_presets_merges_them_again(api, built_from_presets, high, memory):
    response = api.patch(
        detail_url(built_from_presets), {"presets": [memory.pk, high.pk], "merge_strategy": "last_wins"}, format="json"
    )

    assert response.status_code == 200
    built_from_presets.refresh_from_db()
    assert built_from_presets.parameters == MEMORY_EFFICIENT_THEN_HIGH_THROUGHPUT_LAST_WINS
    assert [entry["name"] for entry in built_from_presets.applied_presets] == ["Memory Efficient", "High Throughput"]


def test_patch_may_keep_the_tasks_own_name_in_another_case(api, mine):
    response = api.patch(detail_url(mine), {"name": "MINE"}, format="json")

    assert response.status_code == 200
    mine.refresh_from_db()
    assert mine.name == "MINE"


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING])
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_queued_or_running_task_cannot_change_409(api, mine, status, method):
    Task.objects.filter(pk=mine.pk).update(status=status)
    mine.refresh_from_db()

    response = getattr(api, method)(detail_url(mine), {**BASE, "parameters": {"tp-size": [8]}}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": f"The task is {status.value}; it cannot be changed until it stops."}
    assert_unchanged(mine)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_another_users_task_cannot_change_403(api, other_user, method):
    theirs = make_task(name="Theirs", description="Untouched", created_by=other_user)

    response = getattr(api, method)(detail_url(theirs), {**BASE, "parameters": {"tp-size": [8]}}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only the task's creator or staff can change it."}
    assert_unchanged(theirs)


def test_staff_may_change_anyones_task(user, staff_user, mine):
    staff = APIClient()
    staff.force_authenticate(staff_user)

    response = staff.patch(detail_url(mine), {"description": "Fixed by staff"}, format="json")

    assert response.status_code == 200
    mine.refresh_from_db()
    assert mine.description == "Fixed by staff"
    assert mine.created_by == user


# Delete


def test_delete_answers_204_and_removes_the_task(api, mine):
    response = api.delete(detail_url(mine))

    assert response.status_code == 204
    assert response.content == b""
    assert not Task.objects.filter(pk=mine.pk).exists()
    assert api.get(detail_url(mine)).status_code == 404


# Authentication


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/tasks/"),
        ("post", "/api/tasks/"),
        ("get", "{id}"),
        ("put", "{id}"),
        ("patch", "{id}"),
        ("delete", "{id}"),
    ],
)
def test_an_anonymous_request_is_401_and_changes_nothing(mine, method, path):
    path = detail_url(mine) if path == "{id}" else path

    response = getattr(APIClient(), method)(path, {**BASE, "parameters": {"tp-size": [8]}}, format="json")

    assert response.status_code == 401
    assert_error_shape(response)
    assert_unchanged(mine)
    assert Task.objects.count() == 1


def test_a_token_authenticates(user):
    key = make_token_key(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.post(LIST, {**BASE, "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201
    assert Task.objects.get().created_by == user


# Errors: one shape, every problem with its path


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        pytest.param({"model": "m", "runtime": "sglang", "parameters": {"tp-size": [1]}}, ["name"], id="name-missing"),
        pytest.param({**BASE, "name": "  ", "parameters": {"tp-size": [1]}}, ["name"], id="name-blank"),
        pytest.param({**BASE, "model": "", "parameters": {"tp-size": [1]}}, ["model"], id="model-blank"),
        pytest.param({**BASE, "runtime": "tgi", "parameters": {"tp-size": [1]}}, ["runtime"], id="runtime-unknown"),
        pytest.param({"parameters": {"tp-size": [1]}}, ["name", "model", "runtime"], id="all-three-missing"),
        pytest.param(BASE, ["parameters"], id="no-parameters-no-presets"),
        pytest.param({**BASE, "parameters": [1, 2]}, ["parameters"], id="parameters-a-list"),
        pytest.param({**BASE, "presets": ["x"]}, ["presets[0]"], id="preset-id-not-a-number"),
        pytest.param({**BASE, "presets": [1, True, -3]}, ["presets[1]", "presets[2]"], id="preset-ids-not-ids"),
        pytest.param({**BASE, "presets": []}, ["presets"], id="presets-empty"),
        pytest.param({**BASE, "presets": "1,2"}, ["presets"], id="presets-a-string"),
        pytest.param({**BASE, "presets": [1], "merge_strategy": "best"}, ["merge_strategy"], id="strategy-unknown"),
        pytest.param({**BASE, "presets": [1], "merge_strategy": ["union"]}, ["merge_strategy"], id="strategy-a-list"),
        pytest.param(
            {**BASE, "parameters": {"tp-size": [1]}, "concurrency_levels": [1, "x"]},
            ["concurrency_levels"],
            id="concurrency-not-numbers",
        ),
        pytest.param(
            {**BASE, "parameters": {"tp-size": [1]}, "concurrency_levels": []},
            ["concurrency_levels"],
            id="concurrency-empty",
        ),
        pytest.param(
            {**BASE, "parameters": {"tp-size": [1]}, "optimization_strategy": "random"},
            ["max_experiments"],
            id="random-needs-max-experiments",
        ),
        pytest.param(
            {**BASE, "parameters": {"tp-size": [1]}, "slo_min_success_rate": 1.5},
            ["slo_min_success_rate"],
            id="success-rate-over-one",
        ),
        pytest.param({**BASE, "parameters": {"tp-size": [1]}, "gpus": 0}, ["gpus"], id="zero-gpus"),
        pytest.param({**BASE, "parameters": {"tp-size": [1]}, "gpus": "many"}, ["gpus"], id="gpus-not-a-number"),
        pytest.param(
            {**BASE, "parameters": {"tp-size": [1]}, "max_experiments": 10**30},
            ["max_experiments"],
            id="max-experiments-huge",
        ),
    ],
)
def test_an_invalid_create_is_400_naming_every_path(api, system_presets, body, paths):
    response = api.post(LIST, body, format="json")

    assert response.status_code == 400
    assert_error_shape(response)
    assert error_paths(response) == paths
    assert Task.objects.count() == 0


def test_a_bad_value_in_parameters_given_with_presets_names_its_place(api, high):
    response = api.post(LIST, {**BASE, "presets": [high.pk], "parameters": {"tp-size": [1, None]}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "parameters.tp-size[1]", "message": "null is not allowed"}]


def test_a_bad_value_in_parameters_alone_names_its_place(api):
    response = api.post(LIST, {**BASE, "parameters": {"tp-size": [1, None]}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "parameters.tp-size[1]", "message": "null is not allowed"}]


def test_an_unknown_preset_id_is_named_by_its_place_in_the_list(api, high):
    response = api.post(LIST, {**BASE, "presets": [high.pk, 999]}, format="json")

    assert response.status_code == 404  # as the merge API answers for the same ids
    assert error_paths(response) == ["presets[1]"]
    assert Task.objects.count() == 0


def test_an_unknown_or_repeated_preset_id_is_refused(api, high):
    unknown = api.post(LIST, {**BASE, "presets": [high.pk, 999]}, format="json")
    repeated = api.post(LIST, {**BASE, "presets": [high.pk, high.pk]}, format="json")

    assert unknown.status_code == 404
    assert "999" in unknown.json()["detail"]
    assert repeated.status_code == 400
    assert str(high.pk) in repeated.json()["detail"]
    assert Task.objects.count() == 0


@pytest.mark.parametrize("name", [["a"], {"a": 1}], ids=["list", "object"])
def test_a_name_that_is_not_a_string_is_refused(api, name):
    response = api.post(LIST, {**BASE, "name": name, "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 400
    assert error_paths(response) == ["name"]
    assert Task.objects.count() == 0


def test_a_name_another_task_has_in_any_case_is_refused(api):
    make_task(name="Llama sweep")

    response = api.post(LIST, {**BASE, "name": " LLAMA SWEEP ", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 409  # a conflict, as for presets
    assert response.json()["errors"] == [{"path": "name", "message": 'A task named "Llama sweep" already exists.'}]
    assert Task.objects.count() == 1


def test_a_patch_with_problems_changes_nothing(api, mine):
    response = api.patch(detail_url(mine), {"description": "Changed", "gpus": 0}, format="json")

    assert response.status_code == 400
    assert error_paths(response) == ["gpus"]
    assert_unchanged(mine)


# Robustness: never a 500


WRITES = [
    pytest.param("post", LIST, id="create"),
    pytest.param("put", "{id}", id="put"),
    pytest.param("patch", "{id}", id="patch"),
]


def send(api: APIClient, method: str, path: str, task: Task, body: str | bytes):
    address = detail_url(task) if path == "{id}" else path
    return getattr(api, method)(address, body, content_type="application/json")


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="empty-array"),
        pytest.param([{**BASE, "parameters": {"tp-size": [1]}}], id="array-of-objects"),
        pytest.param("a string", id="string"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="true"),
    ],
)
def test_a_body_that_is_not_an_object_is_400(api, mine, method, path, body):
    response = send(api, method, path, mine, json.dumps(body))

    assert response.status_code == 400
    assert_error_shape(response)
    assert response.json()["errors"] == [{"path": "", "message": "expected a JSON object describing the task"}]
    assert_unchanged(mine)
    assert Task.objects.count() == 1


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json", id="text"),
        pytest.param("{", id="truncated"),
        pytest.param('{"name": "x",}', id="trailing-comma"),
        pytest.param("1" * 5000, id="integer-of-5000-digits"),
        pytest.param("[" * 100_000, id="deeply-nested-arrays"),
        pytest.param('{"a":' * 100_000, id="deeply-nested-objects"),
        pytest.param(b"\xff\xfe", id="not-utf-8"),
    ],
)
def test_a_body_that_is_not_json_is_400(api, mine, method, path, body):
    response = send(api, method, path, mine, body)

    assert response.status_code == 400
    assert_error_shape(response)
    assert_unchanged(mine)
    assert Task.objects.count() == 1


def test_a_deeply_nested_field_is_refused_even_one_the_api_does_not_know(api):
    nested: object = 1
    for _ in range(500):
        nested = {"a": [nested]}

    response = api.post(LIST, {**BASE, "parameters": {"tp-size": [1]}, "extra": nested}, format="json")

    assert response.status_code == 400
    path = "extra" + ".a[0]" * 15 + ".a"  # the 33rd container is the list under the 16th "a"
    assert response.json() == {
        "detail": f"JSON nesting deeper than 32 levels at path {path}.",
        "errors": [{"path": path, "message": "nesting deeper than 32 levels"}],
    }
    assert not Task.objects.exists()


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_ten_megabyte_string_is_refused_as_too_large(api, mine, method, path):
    body = json.dumps({**BASE, "name": "x" * 10 * MB, "parameters": {"tp-size": [1]}})

    response = send(api, method, path, mine, body)

    assert response.status_code == 413
    assert_error_shape(response)
    assert_unchanged(mine)
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"parameters": {"tp-size": [[[[[[1]]]]]]}}, id="nested-values"),
        pytest.param({"parameters": {"tp-size": [1]}, "concurrency_levels": {"a": {"b": [1]}}}, id="levels-object"),
        pytest.param({"parameters": {"tp-size": [1]}, "gpus": [1]}, id="gpus-list"),
        pytest.param({"parameters": {"tp-size": [1]}, "max_experiments": {"n": 1}}, id="max-object"),
        pytest.param({"parameters": {"tp-size": [1]}, "slo_e2e_p99_s": "NaN"}, id="nan-text"),
        pytest.param({"parameters": {"tp-size": [1]}, "input_tokens": float("inf")}, id="infinite"),
        pytest.param({"parameters": {"tp-size": [1]}, "slo_ttft_p90_ms": float("nan")}, id="nan"),
        pytest.param({"parameters": {"tp-size": [1]}, "runtime": ["sglang"]}, id="runtime-list"),
        pytest.param({"parameters": {"tp-size": [1]}, "name": "nul\x00"}, id="nul-in-name"),
        pytest.param({"parameters": {"tp-size": ["a" * 600]}}, id="long-value"),
        pytest.param({"presets": [2**70]}, id="huge-preset-id"),
        pytest.param({"presets": [{"id": 1}]}, id="preset-object"),
        pytest.param({"presets": [1], "parameters": "{}"}, id="parameters-text-with-presets"),
    ],
)
def test_odd_values_are_400_never_500(api, system_presets, overrides):
    # json.dumps writes Infinity and NaN, which Python's parser (and so the API) reads back.
    response = api.post(LIST, json.dumps({**BASE, **overrides}), content_type="application/json")

    assert response.status_code == 400
    assert_error_shape(response)
    assert Task.objects.count() == 0


# The OpenAPI schema


@pytest.fixture
def schema(tmp_path) -> dict:
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("path", "methods"),
    [("/api/tasks/", {"get", "post"}), ("/api/tasks/{id}/", {"get", "put", "patch", "delete"})],
    ids=["list", "detail"],
)
def test_the_schema_lists_the_task_paths_and_methods(schema, path, methods):
    assert methods <= set(schema["paths"][path])


def test_the_schema_documents_the_list_filters(schema):
    parameters = {parameter["name"] for parameter in schema["paths"]["/api/tasks/"]["get"]["parameters"]}

    assert {"status", "runtime", "search"} <= parameters


def test_the_schema_documents_the_presets_a_task_is_created_from(schema):
    request = schema["components"]["schemas"]["TaskRequest"]["properties"]

    assert request["presets"]["type"] == "array"
    assert request["presets"]["items"]["type"] == "integer"
    assert "parameters" in request


def test_the_schema_documents_the_merge_strategy_a_create_may_send(schema):
    request = schema["components"]["schemas"]["TaskRequest"]["properties"]

    assert "merge_strategy" in request


def test_the_schema_allows_the_null_merge_strategy_the_api_answers(schema, api):
    api.post(LIST, {**BASE, "parameters": {"tp-size": [1]}}, format="json")
    assert api.get(LIST).json()[0]["merge_strategy"] is None

    field = schema["components"]["schemas"]["Task"]["properties"]["merge_strategy"]

    assert field.get("nullable") is True or any(
        option.get("$ref", "").endswith("/NullEnum") for option in field.get("oneOf", [])
    )


SURROGATE = "m\ud800"  # a lone surrogate: JSON can carry it (escaped), UTF-8 cannot store it


@pytest.mark.parametrize("field", ["model", "description", "engine_version"])
def test_a_lone_surrogate_in_text_is_refused_on_create_and_on_change(api, mine, field):
    body = {"name": "Fresh", "model": "m", "runtime": "sglang", "parameters": {"tp-size": [1]}, field: SURROGATE}
    created = api.post("/api/tasks/", json.dumps(body), content_type="application/json")
    changed = api.patch(f"/api/tasks/{mine.pk}", json.dumps({field: SURROGATE}), content_type="application/json")

    for response in (created, changed):
        assert response.status_code == 400
        assert [error["path"] for error in response.json()["errors"]] == [field]
    assert not Task.objects.filter(name="Fresh").exists()
    mine.refresh_from_db()
    assert getattr(mine, field) != SURROGATE


def test_an_error_quoting_a_lone_surrogate_is_written_escaped(api):
    body = {"name": "Fresh", "model": "m", "runtime": "\ud83d", "objective": "\ud83d", "parameters": {"tp-size": [1]}}

    response = api.post("/api/tasks/", json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert b"\\ud83d" in response.content
    assert [error["path"] for error in response.json()["errors"]] == ["runtime", "objective"]
