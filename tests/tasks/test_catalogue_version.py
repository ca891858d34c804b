"""A task is checked against the engine release it was made for: shipping a newer catalogue (vLLM
0.34.0 beside 0.33.0) changes new tasks, never an existing one."""

from __future__ import annotations

import pytest

from engines.catalogue import versions
from tests.factories import make_task

pytestmark = pytest.mark.django_db

NEW_IN_034 = "enable-extensible-kv-cache"  # a vLLM 0.34.0 flag 0.33.0 does not have


def test_a_new_task_is_made_for_the_newest_release_of_its_engine():
    task = make_task(runtime="vllm", parameters={"tensor-parallel-size": [1]})

    assert task.catalogue_version == versions("vllm")[-1] == "0.34.0"
    assert task.engine_warnings == []


def test_a_task_made_for_an_older_release_is_checked_against_it():
    task = make_task(runtime="vllm", parameters={NEW_IN_034: [True]}, catalogue_version="0.33.0")
    task.refresh_from_db()

    assert task.catalogue_version == "0.33.0"
    assert [finding.message for finding in task.engine_warnings] == ["not a vllm 0.33.0 flag"]
    assert make_task(runtime="vllm", parameters={NEW_IN_034: [True]}).engine_warnings == []


def test_a_task_moved_to_another_engine_takes_that_engines_newest_release():
    task = make_task(runtime="vllm", parameters={"max-num-seqs": [64]}, catalogue_version="0.33.0")

    task.runtime = "sglang"
    task.parameters = {"max-running-requests": [64]}
    task.save()

    assert task.catalogue_version == versions("sglang")[-1]


def test_the_api_shows_the_release_and_does_not_let_a_client_change_it(api, user):
    task = make_task(runtime="vllm", parameters={"max-num-seqs": [64]}, catalogue_version="0.33.0", created_by=user)

    response = api.patch(f"/api/tasks/{task.pk}/", {"catalogue_version": "0.34.0"}, format="json")

    assert response.status_code == 200
    assert response.json()["catalogue_version"] == "0.33.0"
    task.refresh_from_db()
    assert task.catalogue_version == "0.33.0"


def test_the_task_page_links_the_release_it_is_checked_against(signed_in, user):
    task = make_task(runtime="vllm", parameters={"max-num-seqs": [64]}, catalogue_version="0.33.0", created_by=user)

    page = signed_in.get(f"/tasks/{task.pk}/").content.decode()

    assert 'href="/engines/?runtime=vllm&amp;version=0.33.0">vLLM 0.33.0</a>' in page
