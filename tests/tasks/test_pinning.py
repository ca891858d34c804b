"""Tasks remember the version of each preset they were built from, and say when one has changed."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tests.html import parse

pytestmark = pytest.mark.django_db

BASE = {"name": "Llama sweep", "model": "meta-llama/Llama-3.1-8B-Instruct", "runtime": "sglang"}


@pytest.fixture
def presets(user) -> tuple[ParameterPreset, ParameterPreset]:
    fast = ParameterPreset(name="Fast", runtime="sglang", parameters={"tp-size": [1, 2]}, created_by=user)
    fast.save(by=user)
    fast.parameters = {"tp-size": [1, 2, 4]}
    fast.save(by=user, note="bigger")  # Fast is at version 2
    memory = ParameterPreset(name="Memory", runtime="sglang", parameters={"mem-fraction-static": [0.8]})
    memory.save(by=user)
    return fast, memory


def edit(preset: ParameterPreset, parameters: dict) -> None:
    preset.parameters = parameters
    preset.save()


def test_a_task_made_from_presets_pins_the_version_of_each(api, presets):
    fast, memory = presets

    response = api.post("/api/tasks/", {**BASE, "presets": [fast.pk, memory.pk]}, format="json")

    assert response.status_code == 201
    task = Task.objects.get()
    assert task.preset_versions == {str(fast.pk): 2, str(memory.pk): 1}
    assert response.json()["preset_versions"] == {str(fast.pk): 2, str(memory.pk): 1}
    assert task.applied_presets == [{"id": fast.pk, "name": "Fast"}, {"id": memory.pk, "name": "Memory"}]


def test_a_later_edit_of_a_preset_keeps_the_pin_and_is_reported_as_changed_since(api, presets):
    fast, memory = presets
    api.post("/api/tasks/", {**BASE, "presets": [fast.pk, memory.pk]}, format="json")
    edit(fast, {"tp-size": [2]})
    edit(fast, {"tp-size": [8]})

    task = Task.objects.get()
    entries = {entry["name"]: entry for entry in task.pinned_presets()}

    assert task.preset_versions[str(fast.pk)] == 2
    assert (entries["Fast"]["version"], entries["Fast"]["preset"].current_version, entries["Fast"]["changed"]) == (
        2,
        4,
        True,
    )
    assert entries["Memory"]["changed"] is False


def test_editing_the_task_without_touching_its_presets_keeps_the_pins(api, presets):
    fast, memory = presets
    task_id = api.post("/api/tasks/", {**BASE, "presets": [fast.pk, memory.pk]}, format="json").json()["id"]
    edit(fast, {"tp-size": [2]})

    response = api.patch(f"/api/tasks/{task_id}", {"description": "renamed"}, format="json")

    assert response.status_code == 200
    assert Task.objects.get().preset_versions == {str(fast.pk): 2, str(memory.pk): 1}


def test_merging_the_presets_again_pins_their_current_versions(api, presets):
    fast, memory = presets
    task_id = api.post("/api/tasks/", {**BASE, "presets": [fast.pk]}, format="json").json()["id"]
    edit(fast, {"tp-size": [2]})

    response = api.patch(f"/api/tasks/{task_id}", {"presets": [memory.pk, fast.pk]}, format="json")

    assert response.status_code == 200
    assert Task.objects.get().preset_versions == {str(memory.pk): 1, str(fast.pk): 3}


def test_a_duplicate_keeps_the_pins_of_the_original(api, presets, user):
    fast, _ = presets
    api.post("/api/tasks/", {**BASE, "presets": [fast.pk]}, format="json")
    edit(fast, {"tp-size": [2]})

    copy = Task.objects.get().duplicate(by=user)

    assert copy.preset_versions == {str(fast.pk): 2}


def test_the_task_page_links_the_pinned_versions_and_the_diff_of_a_changed_preset(client, user, api, presets):
    fast, memory = presets
    task_id = api.post("/api/tasks/", {**BASE, "presets": [fast.pk, memory.pk]}, format="json").json()["id"]
    edit(fast, {"tp-size": [2]})
    edit(fast, {"tp-size": [8]})
    client.force_login(user)

    document = parse(client.get(f"/tasks/{task_id}/").content.decode())

    pinned = document.find("ul", class_="pinned-versions")
    links = {link.text: link.attrs["href"] for link in pinned.find_all("a")}
    assert links["Fast v2"] == f"/presets/{fast.pk}/history/2/"
    assert links["Memory v1"] == f"/presets/{memory.pk}/history/1/"
    [notice] = pinned.find_all("span", class_="changed-since")
    assert notice.text.split(":")[0].strip() == "Fast has changed since (v2 -> v4)"
    assert notice.find("a").attrs["href"] == f"/presets/{fast.pk}/history/?from=2&to=4#diff"


def test_a_task_older_than_versions_shows_its_presets_without_a_notice(client, user, presets):
    fast, _ = presets
    task = Task(**BASE, parameters={"tp-size": [1]}, applied_presets=[{"id": fast.pk, "name": "Fast"}], created_by=user)
    task.save()
    Task.objects.filter(pk=task.pk).update(preset_versions={})  # as tasks made before versions were recorded
    client.force_login(user)

    document = parse(client.get(f"/tasks/{task.pk}/").content.decode())

    provenance = document.find("ol", class_="provenance")
    assert provenance.find("a").attrs["href"] == f"/presets/{fast.pk}/"
    assert document.find("ul", class_="pinned-versions") is None
