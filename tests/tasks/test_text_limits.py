"""A task's free text has a maximum length, stated in the form's help and the API schema and
refused with a message naming it; a task stored with a longer description still shows."""

from __future__ import annotations

import pytest

from presets.validators import MAX_DESCRIPTION_LENGTH
from tasks.models import Task
from tests.factories import make_task
from tests.html import parse
from tests.tasks.pages.helpers import NEW, form_data, row_errors

pytestmark = pytest.mark.django_db

TOO_LONG = "x" * (MAX_DESCRIPTION_LENGTH + 1)
BODY = {"name": "Long", "model": "org/model", "runtime": "sglang", "parameters": {"tp-size": [1]}}


def test_the_new_task_page_refuses_a_description_over_the_limit_naming_it(signed_in):
    response = signed_in.post(NEW, form_data(name="Long", description=TOO_LONG))

    assert response.status_code == 422
    assert row_errors(response, "description") == ["Ensure this value has at most 2000 characters (it has 2001)."]
    assert not Task.objects.filter(name="Long").exists()


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("name", "at most 255 characters"),
        ("description", "at most 2,000 characters"),
        ("model", "at most 500 characters"),
        ("engine_version", "at most 200 characters"),
    ],
)
def test_the_task_form_states_each_limit_in_its_help(signed_in, field, limit):
    response = signed_in.get(NEW)

    assert limit in parse(response.content).by_id(f"id_{field}_helptext").text


@pytest.mark.parametrize(
    ("field", "limit"), [("description", MAX_DESCRIPTION_LENGTH), ("model", 500), ("engine_version", 200)]
)
def test_the_api_refuses_text_over_its_limit_at_its_path(api, field, limit):
    response = api.post("/api/tasks/", {**BODY, field: "x" * (limit + 1)}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": field, "message": f"Ensure this field has no more than {limit} characters."}
    ]
    assert not Task.objects.filter(name="Long").exists()


def test_the_api_schema_states_the_descriptions_maximum_length(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()

    for component in ("Task", "TaskRequest"):
        description = schema["components"]["schemas"][component]["properties"]["description"]
        assert {alternative["maxLength"] for alternative in description["oneOf"]} == {MAX_DESCRIPTION_LENGTH, 0}


def test_a_task_stored_with_a_longer_description_still_shows(signed_in, api, user):
    task = make_task(name="Old", description="y" * 10_000, created_by=user)

    pages = [signed_in.get(url) for url in ("/tasks/", f"/tasks/{task.pk}/", f"/tasks/{task.pk}/edit/")]
    answer = api.get(f"/api/tasks/{task.pk}")

    assert [page.status_code for page in pages] == [200, 200, 200]
    assert (answer.status_code, len(answer.json()["description"])) == (200, 10_000)
