"""What the hostile-input suite sends its requests about: a preset, a trashed preset and a task of
the signed-in user (the owner, so that ownership never answers first), and the server's log."""

from __future__ import annotations

import logging

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tests.factories import make_preset, make_task
from tests.hostile.cases import failures_in_log


@pytest.fixture
def mine(user) -> ParameterPreset:
    """A preset of the user's with two versions (so version 1 can be restored)."""
    preset = make_preset(name="Mine", parameters={"tp-size": [1, 2]}, created_by=user)
    preset.description = "Changed"
    preset.save(by=user, note="second")
    return preset


@pytest.fixture
def task(user) -> Task:
    return make_task(name="Sweep", parameters={"tp-size": [1, 2]}, created_by=user)


@pytest.fixture
def server_log(caplog):
    """The log records of the requests a test sends; at the end, none may show a failure."""
    caplog.set_level(logging.INFO)
    yield caplog
    failed = failures_in_log(caplog.records)
    assert not failed, "the server log shows a failure:\n" + "\n".join(failed)
