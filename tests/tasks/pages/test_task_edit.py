"""The Edit task page: the stored selection and grid, saving, and who may edit what when."""

from __future__ import annotations

import json

import pytest

from presets.forms import format_grid
from presets.models import ParameterPreset
from tasks.models import Task
from tasks.states import TaskStatus
from tests.factories import make_preset, make_task
from tests.tasks.pages.helpers import (
    HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
    HTMX,
    assert_is_fragment,
    checked_strategy,
    chip_ids,
    chips,
    edit_url,
    editor_text,
    flashed,
    form_data,
    page,
    use_presets_ticked,
    with_presets,
)

pytestmark = pytest.mark.django_db


# Edit


def test_the_edit_form_shows_the_stored_selection_strategy_and_grid(signed_in, built_from_presets):
    response = signed_in.get(edit_url(built_from_presets))

    assert response.status_code == 200
    assert page(response).find("h1").text == "Edit “Llama sweep”"
    assert use_presets_ticked(response)
    assert chips(response) == ["High Throughput", "Memory Efficient"]
    assert checked_strategy(response) == "last_wins"
    assert editor_text(response) == format_grid(HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS)
    assert page(response).find("input", name="name").attrs["value"] == "Llama sweep"
    assert page(response).find("textarea", name="description").raw_text.strip() == "Before"


def test_the_edit_form_of_a_hand_typed_task_has_presets_switched_off(signed_in, user):
    task = make_task(created_by=user, parameters={"tp-size": [1, 2]})

    response = signed_in.get(edit_url(task))

    assert not use_presets_ticked(response)
    assert chips(response) == []
    assert json.loads(editor_text(response)) == {"tp-size": [1, 2]}


def test_the_edit_form_leaves_out_a_deleted_preset_and_says_so(signed_in, built_from_presets, memory):
    memory_id = memory.pk
    ParameterPreset.objects.filter(pk=memory_id).delete()

    response = signed_in.get(edit_url(built_from_presets))

    assert response.status_code == 200
    assert chips(response) == ["High Throughput"]
    problems = page(response).by_id("preset-selector").find("ul", class_="errorlist").find_all("li")
    assert [problem.text for problem in problems] == [f"Preset {memory_id} no longer exists and was left out."]
    assert json.loads(editor_text(response)) == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS


def test_saving_the_edit_form_changes_the_task(signed_in, user, built_from_presets, high, memory):
    data = with_presets(
        [high, memory],
        "save",
        strategy="last_wins",
        name="Llama sweep v2",
        description="After",
        gpus="2",
        parameters=format_grid(HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS),
    )

    response = signed_in.post(edit_url(built_from_presets), data)

    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{built_from_presets.pk}/"
    built_from_presets.refresh_from_db()
    assert (built_from_presets.name, built_from_presets.description, built_from_presets.gpus) == (
        "Llama sweep v2",
        "After",
        2,
    )
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert [entry["id"] for entry in built_from_presets.applied_presets] == [high.pk, memory.pk]
    assert built_from_presets.merge_strategy == "last_wins"
    assert built_from_presets.parameters_edited is False
    assert built_from_presets.created_by == user
    assert Task.objects.count() == 1
    assert flashed(signed_in.get(response["Location"])) == ["Saved task “Llama sweep v2”."]


def test_an_edit_may_switch_the_presets_off_and_keep_a_hand_typed_grid(signed_in, built_from_presets):
    data = form_data(name="Llama sweep", parameters='{"tp-size": [8]}')

    signed_in.post(edit_url(built_from_presets), data)

    built_from_presets.refresh_from_db()
    assert built_from_presets.parameters == {"tp-size": [8]}
    assert (built_from_presets.applied_presets, built_from_presets.merge_strategy) == ([], "")
    assert built_from_presets.parameters_edited is False


def test_an_edit_keeps_its_own_name_in_another_case(signed_in, built_from_presets):
    response = signed_in.post(edit_url(built_from_presets), form_data(name="LLAMA SWEEP"))

    assert response.status_code == 302
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "LLAMA SWEEP"


def test_a_refused_edit_answers_422_and_changes_nothing(signed_in, built_from_presets, high, memory):
    response = signed_in.post(
        edit_url(built_from_presets), with_presets([memory, high], "save", name="", parameters="{")
    )

    assert response.status_code == 422
    assert chips(response) == ["Memory Efficient", "High Throughput"]
    assert editor_text(response) == "{"
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS


def test_saving_an_edit_keeps_the_snapshot_of_a_preset_deleted_since(signed_in, user, high):
    gone = make_preset(name="Gone", parameters={"max-running-requests": [64]}, created_by=user)
    gone_id = gone.pk
    task = make_task(
        name="Llama sweep",
        created_by=user,
        parameters={**high.parameters, "max-running-requests": [64]},
        applied_presets=[{"id": high.pk, "name": "High Throughput"}, {"id": gone_id, "name": "Gone"}],
        merge_strategy="union",
    )
    gone.delete()
    opened = signed_in.get(edit_url(task))
    data = with_presets([high], "save", name="Llama sweep", description="Only this changed")
    data["parameters"] = editor_text(opened)
    assert chip_ids(opened) == data["presets"]

    response = signed_in.post(edit_url(task), data)

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.description == "Only this changed"
    assert task.parameters == {**high.parameters, "max-running-requests": [64]}
    assert task.applied_presets == [{"id": high.pk, "name": "High Throughput"}, {"id": gone_id, "name": "Gone"}]
    assert task.parameters_edited is False


def test_selector_actions_on_the_edit_form_answer_the_edit_form(signed_in, built_from_presets, high, memory):
    url = edit_url(built_from_presets)

    full = signed_in.post(url, with_presets([high, memory], f"remove:{high.pk}", name="Typed"))
    fragment = signed_in.post(url, with_presets([high, memory], f"left:{memory.pk}"), headers=HTMX)

    assert page(full).find("h1").text == "Edit “Llama sweep”"
    assert page(full).find("input", name="name").attrs["value"] == "Typed"
    assert chips(full) == ["Memory Efficient"]
    assert_is_fragment(fragment, "preset-selector")
    assert chips(fragment) == ["Memory Efficient", "High Throughput"]
    assert page(fragment).by_id("preset-selector").find("button", value="apply") is not None
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"


def test_a_selector_action_for_a_task_started_meanwhile_sends_the_window_to_the_task(
    signed_in, built_from_presets, high
):
    Task.objects.filter(pk=built_from_presets.pk).update(status=TaskStatus.RUNNING)

    response = signed_in.post(edit_url(built_from_presets), with_presets([high], "refresh"), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/tasks/{built_from_presets.pk}/"
    assert flashed(signed_in.get(response["HX-Redirect"])) == ["“Llama sweep” is running; it cannot be edited now."]


@pytest.mark.parametrize("status", [TaskStatus.QUEUED, TaskStatus.RUNNING])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_queued_or_running_task_cannot_be_edited(signed_in, built_from_presets, status, method):
    Task.objects.filter(pk=built_from_presets.pk).update(status=status)

    response = getattr(signed_in, method)(edit_url(built_from_presets), form_data(name="Changed"))

    assert response.status_code == 302
    assert response["Location"] == f"/tasks/{built_from_presets.pk}/"
    assert flashed(signed_in.get(response["Location"])) == [
        f"“Llama sweep” is {status.label.lower()}; it cannot be edited now."
    ]
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"
    assert built_from_presets.status == status


@pytest.mark.parametrize("method", ["get", "post"])
def test_another_users_task_cannot_be_edited(client, other_user, built_from_presets, method):
    client.force_login(other_user)

    response = getattr(client, method)(edit_url(built_from_presets), form_data(name="Changed"))

    assert response.status_code == 403
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Llama sweep"


def test_staff_may_edit_anyones_task(client, staff_user, user, built_from_presets):
    client.force_login(staff_user)

    response = client.post(edit_url(built_from_presets), form_data(name="Staff fix", parameters='{"tp-size": [1]}'))

    assert response.status_code == 302
    built_from_presets.refresh_from_db()
    assert built_from_presets.name == "Staff fix"
    assert built_from_presets.created_by == user


def test_editing_a_missing_task_is_404(signed_in):
    assert signed_in.get("/tasks/999/edit/").status_code == 404
