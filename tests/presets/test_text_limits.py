"""A preset's free text has a maximum length, stated in the form's help and the API schema and
refused with a message naming it; rows written before the limit still show and open."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from presets.models import ParameterPreset
from presets.validators import MAX_DESCRIPTION_LENGTH
from tests.factories import make_preset
from tests.html import parse

pytestmark = pytest.mark.django_db

TOO_LONG = "x" * (MAX_DESCRIPTION_LENGTH + 1)


def form_data(**overrides) -> dict:
    data = {
        "name": "Long",
        "description": "",
        "category": "custom",
        "runtime": "sglang",
        "parameters": '{"tp-size": [1, 2]}',
        "metadata": "{}",
    }
    data.update(overrides)
    return data


def row(response, field: str):
    return parse(response.content).by_id(f"row-{field}")


def test_the_new_preset_page_refuses_a_description_over_the_limit_naming_it(signed_in):
    response = signed_in.post("/presets/new/", form_data(description=TOO_LONG))

    assert response.status_code == 422
    assert [item.text for item in row(response, "description").find_all("li")] == [
        "Ensure this value has at most 2000 characters (it has 2001)."
    ]
    assert not ParameterPreset.objects.filter(name="Long").exists()


def test_a_description_at_the_limit_is_saved(signed_in):
    response = signed_in.post("/presets/new/", form_data(description="x" * MAX_DESCRIPTION_LENGTH))

    assert response.status_code == 302
    assert len(ParameterPreset.objects.get(name="Long").description) == MAX_DESCRIPTION_LENGTH


@pytest.mark.parametrize(
    ("field", "limit"),
    [("name", "at most 255 characters"), ("description", "at most 2,000 characters"), ("change_note", "500")],
)
def test_the_preset_form_states_each_limit_in_its_help(signed_in, field, limit):
    response = signed_in.get("/presets/new/")

    assert limit in parse(response.content).by_id(f"id_{field}_helptext").text


def test_the_api_refuses_a_description_over_the_limit_at_its_path(api):
    body = {"name": "Long", "description": TOO_LONG, "parameters": {"tp-size": [1]}}

    response = api.post("/api/presets/", body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "description", "message": "at most 2000 characters are allowed, got 2001"}
    ]
    assert not ParameterPreset.objects.filter(name="Long").exists()


def test_the_api_schema_states_the_descriptions_maximum_length(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()

    for component in ("Preset", "PresetRequest"):
        assert schema["components"]["schemas"][component]["properties"]["description"]["maxLength"] == 2000


def test_the_model_refuses_a_description_over_the_limit():
    preset = ParameterPreset(name="Long", description=TOO_LONG, parameters={"tp-size": [1]})

    with pytest.raises(ValidationError) as caught:
        preset.full_clean()

    assert caught.value.message_dict == {
        "description": ["Ensure this value has at most 2000 characters (it has 2001)."]
    }


def test_a_preset_stored_with_a_longer_description_still_shows_and_opens(signed_in, api, user):
    preset = make_preset(name="Old", description="y" * 10_000, created_by=user)

    pages = [signed_in.get(url) for url in ("/presets/", f"/presets/{preset.pk}/", f"/presets/{preset.pk}/edit/")]
    answer = api.get(f"/api/presets/{preset.pk}")

    assert [page.status_code for page in pages] == [200, 200, 200]
    assert "y" * 10_000 in pages[1].content.decode()
    assert (answer.status_code, len(answer.json()["description"])) == (200, 10_000)


def test_a_preset_stored_with_a_longer_description_can_still_be_renamed_through_the_api(api, user):
    preset = make_preset(name="Old", description="y" * 10_000, created_by=user)

    response = api.patch(f"/api/presets/{preset.pk}", {"name": "Renamed"}, format="json")

    assert response.status_code == 200
    preset.refresh_from_db()
    assert (preset.name, len(preset.description)) == ("Renamed", 10_000)
