"""The forms the engines take, through the preset API: what a user types is what is saved."""

from __future__ import annotations

import pytest

from presets.models import ParameterPreset

pytestmark = pytest.mark.django_db

LIST = "/api/presets/"


def test_a_vllm_preset_saves_sizes_auto_and_the_disable_form_as_written(api):
    # vllm/utils/argparse_utils.py:30-94 (human_readable_int, _or_auto) and :120-145 (EnableDisableAction)
    parameters = {"max-model-len": ["32k", "auto", 8192], "disable-prefix-caching": [True, False]}

    response = api.post(LIST, {"name": "Sizes", "runtime": "vllm", "parameters": parameters}, format="json")

    assert response.status_code == 201, response.json()
    assert response.json().get("warnings", []) == []  # the answer names warnings only when there are some
    assert ParameterPreset.objects.get(pk=response.json()["id"]).parameters == parameters


def test_a_size_the_engine_refuses_answers_400_at_its_path(api):
    parameters = {"context-length": ["32K"]}  # SGLang's binary units are Ki, Mi: srt/utils/common.py:3394

    response = api.post(LIST, {"name": "Sizes", "runtime": "sglang", "parameters": parameters}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "parameters.context-length[0]", "message": '"32K" is not a whole number or a size such as 32k or 32Ki'}
    ]
