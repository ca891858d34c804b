"""Every JSON text the pages parse goes through the API's bounded parser: 2,000 nested arrays
posted in a form's parameters or metadata are a message at the field, never a server error."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset
from tasks.models import Task
from tests.tasks.pages.helpers import form_data

pytestmark = pytest.mark.django_db

DEEP = "[" * 2000 + "]" * 2000
NESTED = '{"tp-size": ' + DEEP + "}"
MESSAGE = "JSON nesting deeper than 32 levels"


def preset_form(**overrides) -> dict:
    return {"name": "Deep", "description": "", "category": "custom", "runtime": "", "parameters": '{"tp-size": [1]}',
            "metadata": "", **overrides}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "data"),
    [
        pytest.param("/presets/preview/", {"parameters": NESTED}, id="preset-preview"),
        pytest.param("/presets/new/", preset_form(parameters=NESTED), id="new-preset-parameters"),
        pytest.param("/presets/new/", preset_form(metadata=DEEP), id="new-preset-metadata"),
        pytest.param("/tasks/new/", form_data(parameters=NESTED, action="save"), id="new-task"),
    ],
)
def test_deeply_nested_json_in_a_form_is_a_message_not_a_server_error(signed_in, path, data):
    response = signed_in.post(path, data)

    assert response.status_code in (200, 422)
    assert MESSAGE in response.content.decode()
    assert not ParameterPreset.objects.filter(name="Deep").exists()
    assert not Task.objects.exists()
