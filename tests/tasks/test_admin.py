from __future__ import annotations

import pytest
from django.urls import reverse

from tasks.models import Task
from tasks.states import TaskStatus

pytestmark = pytest.mark.django_db


def make_task(**overrides: object) -> Task:
    fields = {"name": "Sweep", "model": "org/model", "runtime": "sglang", "parameters": {"tp-size": [1, 2]}}
    fields.update(overrides)
    task = Task(**fields)
    task.save()
    return task


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Admin sweep",
        "description": "",
        "model": "org/model",
        "runtime": "vllm",
        "engine_version": "",
        "gpus": "2",
        "parameters": '{"tensor-parallel-size": [1, 2]}',
        "optimization_strategy": "grid",
        "objective": "maximize_throughput",
        "max_experiments": "",
        "experiment_timeout": "900",
        "concurrency_levels": "1, 8",
        "input_tokens": "512",
        "output_tokens": "256",
        "requests_per_level": "100",
        "max_seconds_per_level": "120",
        "load_mode": "concurrency",
        "request_rates": "1, 4, 16",
        "shared_prefix": "0",
        "warmup_requests": "4",
        "baseline": "on",
        "finalists": "3",
        "repeats": "2",
        "early_stop": "on",
        "skip_after_oom": "on",
    }
    data.update(overrides)
    return data


def test_the_admin_lists_tasks_with_their_combinations(admin_client):
    make_task(parameters={"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.9]})

    response = admin_client.get(reverse("admin:tasks_task_changelist"))

    assert response.status_code == 200
    assert "Sweep" in response.text
    assert ">4<" in response.text


def test_the_admin_adds_a_task_with_the_pages_validation(admin_client, admin_user):
    response = admin_client.post(reverse("admin:tasks_task_add"), form_data())

    assert response.status_code == 302
    task = Task.objects.get(name="Admin sweep")
    assert task.parameters == {"tensor-parallel-size": [1, 2]}
    assert task.concurrency_levels == [1, 8]
    assert task.created_by == admin_user


def test_the_admin_refuses_a_bad_grid_and_writes_nothing(admin_client):
    response = admin_client.post(reverse("admin:tasks_task_add"), form_data(parameters='{"tp-size": [1, null]}'))

    assert response.status_code == 200
    assert "tp-size[1]: null is not allowed" in response.text
    assert not Task.objects.exists()


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING], ids=["queued", "running"])
def test_a_queued_or_running_task_is_read_only_in_the_admin(admin_client, status):
    task = make_task(status=status)

    change = admin_client.post(reverse("admin:tasks_task_change", args=[task.pk]), form_data(name="Renamed"))
    delete = admin_client.post(reverse("admin:tasks_task_delete", args=[task.pk]), {"post": "yes"})

    assert change.status_code == 403
    assert delete.status_code == 403
    task.refresh_from_db()
    assert task.name == "Sweep"


def test_a_draft_task_can_be_changed_in_the_admin(admin_client):
    task = make_task()

    response = admin_client.post(reverse("admin:tasks_task_change", args=[task.pk]), form_data(name="Renamed"))

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.name == "Renamed"
    assert task.runtime == "vllm"
