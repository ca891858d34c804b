"""Running a task through the API, with no worker and no engine: POST start, cancel, restart and
resume with their statuses and conflicts; the experiments and results of a run (written straight to
the database); the status a client can never write; the actions in the OpenAPI schema."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from tasks import lifecycle
from tasks.models import Experiment, Task
from tasks.states import ExperimentStatus, Objective, TaskStatus
from tests.factories import make_task
from tests.tasks.runs import GRID, PLAN_ORDER, VIOLATION, in_status, measured

pytestmark = pytest.mark.django_db

RECORD_FIELDS = {
    "number",
    "role",
    "repeat_of",
    "status",
    "parameters",
    "gpus",
    "host",
    "gpu_ids",
    "command",
    "deploy_command",
    "score",
    "scored_level",
    "throughput_tokens_per_s",
    "latency_p50_s",
    "slo_violation",
    "error",
    "step",
    "started_at",
    "finished_at",
    "duration_s",
    "levels",
    "log_tail",
}


def url(task: Task | int | str, action: str = "", slash: bool = False) -> str:
    address = f"/api/tasks/{getattr(task, 'pk', task)}"
    if action:
        address += f"/{action}"
    return address + ("/" if slash else "")


def assert_error_shape(response) -> None:
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert set(body) <= {"detail", "errors"}
    for error in body.get("errors", []):
        assert set(error) == {"path", "message"}


def statuses(task: Task) -> list[str]:
    return list(task.experiments.order_by("number").values_list("status", flat=True))


def numbers(response) -> list[int]:
    return [record["number"] for record in response.json()]


# Start, cancel, resume, restart


def test_start_answers_202_with_the_queued_task_and_plans_its_experiments(
    api, draft, settings, django_capture_on_commit_callbacks
):
    settings.PARALLEL_EXPERIMENTS = 3

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(draft, "start"))

    assert response.status_code == 202
    body = response.json()
    assert body["id"] == draft.pk
    assert body["status"] == "queued"
    assert body["runnable"] == 4
    assert [entry["status"] for entry in body["status_history"]] == ["queued"]
    assert body["finished_at"] is None
    assert list(draft.experiments.order_by("number").values_list("parameters", flat=True)) == PLAN_ORDER
    assert statuses(draft) == ["pending"] * 4
    enqueued = DBTaskResult.objects.all()
    assert [(job.task_path, job.args_kwargs["args"]) for job in enqueued] == [
        ("tasks.jobs.run_next_experiment", [draft.pk])
    ] * 3


@pytest.mark.parametrize("slash", [False, True], ids=["no-slash", "slash"])
def test_actions_answer_with_or_without_the_slash(api, draft, slash):
    assert api.post(url(draft, "start", slash=slash)).status_code == 202


def test_starting_twice_is_409_and_plans_nothing_more(api, draft, django_capture_on_commit_callbacks):
    api.post(url(draft, "start"))

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(draft, "start"))

    assert response.status_code == 409
    assert response.json() == {"detail": "The task is queued; cancel it first."}
    assert draft.experiments.count() == 4
    assert DBTaskResult.objects.count() == 0


def test_start_with_nothing_runnable_is_409_saying_why(api, user):
    task = make_task(name="Too big", parameters={"tp-size": [4]}, gpus=1, created_by=user)

    response = api.post(url(task, "start"))

    assert response.status_code == 409
    assert response.json()["detail"].startswith("The only combination cannot run:")
    assert "4 GPUs" in response.json()["detail"]
    task.refresh_from_db()
    assert task.status == TaskStatus.DRAFT
    assert task.experiments.count() == 0


def test_cancel_answers_200_and_cancels_the_pending_experiments(api, draft):
    lifecycle.start(draft, enqueue=False)
    Experiment.objects.filter(task=draft, number=1).update(status=ExperimentStatus.SUCCEEDED, score=1.0)

    response = api.post(url(draft, "cancel"))

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["finished_at"] is not None
    assert statuses(draft) == ["succeeded", "cancelled", "cancelled", "cancelled"]


def test_cancelling_twice_is_409(api, draft):
    lifecycle.start(draft, enqueue=False)
    api.post(url(draft, "cancel"))

    response = api.post(url(draft, "cancel"))

    assert response.status_code == 409
    assert response.json() == {"detail": "The task is cancelled; there is nothing to cancel."}


def test_resume_answers_202_and_runs_only_the_cancelled_experiments_again(
    api, draft, django_capture_on_commit_callbacks
):
    lifecycle.start(draft, enqueue=False)
    Experiment.objects.filter(task=draft, number=1).update(status=ExperimentStatus.SUCCEEDED, score=1.0)
    lifecycle.cancel(draft)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(draft, "resume"))

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert statuses(draft) == ["succeeded", "pending", "pending", "pending"]
    assert draft.experiments.get(number=1).score == 1.0
    assert DBTaskResult.objects.count() >= 1


def test_restart_of_a_completed_task_answers_202_and_plans_every_experiment_again(
    api, finished, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(url(finished, "restart"))

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert statuses(finished) == ["pending"] * 4
    assert not finished.experiments.exclude(score=None).exists()
    assert DBTaskResult.objects.count() >= 1


@pytest.mark.parametrize(
    ("status", "action", "words"),
    [
        (TaskStatus.DRAFT, "restart", "use start"),
        (TaskStatus.DRAFT, "resume", "use start"),
        (TaskStatus.RUNNING, "restart", "cancel it first"),
        (TaskStatus.COMPLETED, "start", "use restart or resume"),
        (TaskStatus.COMPLETED, "resume", "use restart"),
    ],
)
def test_an_action_the_status_does_not_allow_is_409_saying_what_to_do(api, draft, status, action, words):
    task = in_status(draft, status)

    response = api.post(url(task, action))

    assert response.status_code == 409
    assert_error_shape(response)
    assert words in response.json()["detail"].lower()
    task.refresh_from_db()
    assert task.status == status


@pytest.mark.parametrize("action", ["start", "cancel", "restart", "resume"])
def test_another_users_task_cannot_be_run_or_stopped_403(api, other_user, action):
    theirs = make_task(name="Theirs", parameters=GRID, gpus=2, created_by=other_user)

    response = api.post(url(theirs, action))

    assert response.status_code == 403
    assert response.json() == {"detail": "Only the task's creator or staff can run or stop it."}
    theirs.refresh_from_db()
    assert theirs.status == TaskStatus.DRAFT
    assert theirs.experiments.count() == 0


def test_staff_may_start_anyones_task(staff_user, draft):
    staff = APIClient()
    staff.force_authenticate(staff_user)

    assert staff.post(url(draft, "start")).status_code == 202


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("post", "start"),
        ("post", "cancel"),
        ("post", "restart"),
        ("post", "resume"),
        ("get", "experiments"),
        ("get", "results"),
    ],
)
def test_an_anonymous_request_is_401(draft, method, action):
    response = getattr(APIClient(), method)(url(draft, action))

    assert response.status_code == 401
    assert_error_shape(response)
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT


@pytest.mark.parametrize("raw", ["999", "abc", "1.5", "0"])
@pytest.mark.parametrize(("method", "action"), [("post", "start"), ("get", "experiments"), ("get", "results")])
def test_a_missing_task_is_404_naming_it(api, draft, raw, method, action):
    response = getattr(api, method)(url(raw, action))

    assert response.status_code == 404
    assert response.json() == {"detail": f"Task {raw} not found"}


@pytest.mark.parametrize("action", ["start", "cancel", "restart", "resume"])
def test_actions_are_posts_only(api, draft, action):
    response = api.get(url(draft, action))

    assert response.status_code == 405
    assert_error_shape(response)
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT


# Experiments and results


def test_experiments_lists_every_record_in_number_order(api, finished):
    response = api.get(url(finished, "experiments"))

    assert response.status_code == 200
    records = response.json()
    assert [record["number"] for record in records] == [1, 2, 3, 4]
    assert all(set(record) == RECORD_FIELDS for record in records)
    first = records[0]
    assert first["parameters"] == PLAN_ORDER[0]
    assert first["command"].endswith("--port 41001")
    assert "--tp-size 1 --schedule-policy fcfs" in first["deploy_command"]
    assert "--port 41001" not in first["deploy_command"]
    assert (first["score"], first["throughput_tokens_per_s"], first["latency_p50_s"]) == (300.0, 300.0, 2.0)
    assert first["levels"] == [
        {
            "concurrency": 32,
            "ttft_ms": {"p90": 120.0},
            "tpot_ms": {"p90": 15.0},
            "e2e_s": {"p99": 4.5},
            "success_rate": 1.0,
        }
    ]
    assert first["duration_s"] == 60.0
    assert first["slo_violation"] is None
    assert (records[1]["score"], records[1]["slo_violation"]) == (None, VIOLATION)
    assert records[2]["error"] == "engine exited with code 1 before it was ready"
    assert records[2]["log_tail"].endswith("CUDA out of memory")


@pytest.mark.parametrize(
    ("objective", "sort", "order"),
    [
        (Objective.MAXIMIZE_THROUGHPUT, "score", [1, 4, 2, 3]),
        (Objective.MINIMIZE_LATENCY, "score", [4, 1, 2, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "throughput", [2, 1, 4, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "latency", [4, 1, 2, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "number", [1, 2, 3, 4]),
    ],
    ids=["score-highest-first", "score-lowest-latency-first", "throughput", "latency", "number"],
)
def test_experiments_sort_best_first_and_missing_values_last(api, finished, objective, sort, order):
    Task.objects.filter(pk=finished.pk).update(objective=objective)
    if objective == Objective.MINIMIZE_LATENCY:
        for experiment in finished.experiments.filter(score__isnull=False):
            Experiment.objects.filter(pk=experiment.pk).update(score=experiment.latency)

    assert numbers(api.get(url(finished, "experiments"), {"sort": sort})) == order


@pytest.mark.parametrize(("status", "expected"), [("failed", [3]), ("succeeded", [1, 2, 4]), ("pending", [])], ids=str)
def test_experiments_filter_by_status(api, finished, status, expected):
    response = api.get(url(finished, "experiments"), {"status": status})

    assert response.status_code == 200
    assert numbers(response) == expected


def test_experiments_filter_and_sort_together(api, finished):
    assert numbers(api.get(url(finished, "experiments"), {"status": "succeeded", "sort": "latency"})) == [4, 1, 2]


@pytest.mark.parametrize(
    ("query", "paths", "named"),
    [
        ({"sort": "bogus"}, ["sort"], ["number", "score", "throughput", "latency", "'bogus'"]),
        ({"status": "bogus"}, ["status"], ["pending", "failed", "'bogus'"]),
        ({"sort": "", "status": "done"}, ["sort", "status"], ["score", "succeeded"]),
    ],
    ids=["sort", "status", "both"],
)
def test_an_unknown_sort_or_status_is_400_naming_the_parameter_and_the_allowed_values(
    api, finished, query, paths, named
):
    response = api.get(url(finished, "experiments"), query)

    assert response.status_code == 400
    assert_error_shape(response)
    errors = response.json()["errors"]
    assert [error["path"] for error in errors] == paths
    messages = " ".join(error["message"] for error in errors)
    assert all(word in messages for word in named)


def test_results_give_the_best_meeting_every_slo_and_the_pareto_front(api, finished):
    response = api.get(url(finished, "results"))

    assert response.status_code == 200
    body = response.json()
    assert body["task"] == finished.pk
    assert body["status"] == "completed"
    assert (body["objective"], body["higher_is_better"]) == ("maximize_throughput", True)
    assert body["best"]["number"] == 1
    assert body["best"]["command"] == finished.experiments.get(number=1).command
    assert body["pareto_front"] == [4, 1]
    assert [record["number"] for record in body["experiments"]] == [1, 2, 3, 4]


def test_results_for_minimum_latency_pick_the_lowest_score(api, finished):
    Task.objects.filter(pk=finished.pk).update(objective=Objective.MINIMIZE_LATENCY)
    for experiment in finished.experiments.filter(score__isnull=False):
        Experiment.objects.filter(pk=experiment.pk).update(score=experiment.latency)

    body = api.get(url(finished, "results")).json()

    assert (body["best"]["number"], body["higher_is_better"]) == (4, False)


def test_results_have_no_best_when_nothing_meets_the_slos(api, finished):
    finished.experiments.filter(number__in=[1, 4]).update(score=None, slo_violation=VIOLATION)

    body = api.get(url(finished, "results")).json()

    assert body["best"] is None
    assert body["pareto_front"] == []
    assert len(body["experiments"]) == 4


def test_results_list_only_the_slos_the_task_sets(api, finished):
    Task.objects.filter(pk=finished.pk).update(slo_ttft_p90_ms=300.0)

    assert api.get(url(finished, "results")).json()["slos"] == {"ttft_p90_ms": 300.0}


def test_a_draft_has_no_experiments_or_results_yet(api, draft):
    assert api.get(url(draft, "experiments")).json() == []
    body = api.get(url(draft, "results")).json()
    assert (body["status"], body["best"], body["experiments"]) == ("draft", None, [])


def test_anyone_signed_in_may_read_another_users_results(api, other_user):
    theirs = in_status(make_task(name="Theirs", parameters=GRID, gpus=2, created_by=other_user), "completed")
    measured(theirs, 1, throughput=10.0, latency=1.0)

    assert numbers(api.get(url(theirs, "experiments"))) == [1]
    assert api.get(url(theirs, "results")).json()["best"]["number"] == 1


# The status belongs to the lifecycle


def test_a_running_task_cannot_be_patched_409(api, draft):
    in_status(lifecycle.start(draft, enqueue=False), TaskStatus.RUNNING)

    response = api.patch(url(draft), {"description": "Changed", "status": "completed"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "The task is running; it cannot be changed until it stops."}
    draft.refresh_from_db()
    assert draft.description == ""
    assert draft.status == TaskStatus.RUNNING


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_status_in_the_body_is_ignored(api, draft, method):
    body = {"name": "Llama sweep", "model": draft.model, "runtime": "sglang", "parameters": GRID, "gpus": 2}

    response = getattr(api, method)(
        url(draft), {**body, "status": "completed", "finished_at": "2020-01-01T00:00:00Z"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "draft"
    draft.refresh_from_db()
    assert draft.status == TaskStatus.DRAFT
    assert draft.finished_at is None
    assert api.post(url(draft, "start")).status_code == 202


def test_a_create_with_a_status_makes_a_draft(api):
    body = {"name": "New", "model": "m", "runtime": "sglang", "parameters": {"tp-size": [1]}, "status": "running"}

    response = api.post("/api/tasks/", body, format="json")

    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert Task.objects.get(name="New").status == TaskStatus.DRAFT


# The OpenAPI schema


@pytest.fixture(scope="module")
def schema(tmp_path_factory, django_db_blocker) -> dict:
    path = tmp_path_factory.mktemp("schema") / "schema.yaml"
    with django_db_blocker.unblock():
        call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/tasks/{id}/start/", "post"),
        ("/api/tasks/{id}/cancel/", "post"),
        ("/api/tasks/{id}/restart/", "post"),
        ("/api/tasks/{id}/resume/", "post"),
        ("/api/tasks/{id}/experiments/", "get"),
        ("/api/tasks/{id}/results/", "get"),
    ],
)
def test_the_schema_documents_the_run_actions(schema, path, method):
    operation = schema["paths"][path][method]

    assert operation["summary"]
    assert "requestBody" not in operation
    # Only a change may be forbidden: anyone signed in may read a task's experiments and results.
    assert {"401", "404"} <= set(operation["responses"])
    assert ("403" in operation["responses"]) is (method == "post")


@pytest.mark.parametrize(("path", "code"), [("start", "202"), ("cancel", "200"), ("restart", "202"), ("resume", "202")])
def test_the_schema_documents_the_status_each_action_answers_and_the_conflict(schema, path, code):
    responses = schema["paths"][f"/api/tasks/{{id}}/{path}/"]["post"]["responses"]

    assert {code, "409"} <= set(responses)


def test_the_schema_documents_the_experiments_sort_and_status(schema):
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in schema["paths"]["/api/tasks/{id}/experiments/"]["get"]["parameters"]
    }

    assert set(parameters["sort"]["enum"]) == {"number", "score", "throughput", "latency"}
    assert set(parameters["status"]["enum"]) == set(ExperimentStatus.values)
