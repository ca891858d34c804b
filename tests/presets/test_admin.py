from __future__ import annotations

import json
import re
import warnings

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils.deprecation import RemovedInDjango2028Warning
from django.utils.html import strip_tags

from presets.models import SYSTEM_READ_ONLY, ParameterPreset
from tests.factories import make_preset, system_preset_names
from tests.factories import system_presets as shipped_presets

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:presets_parameterpreset_changelist")
ADD = reverse("admin:presets_parameterpreset_add")


def change_url(preset: ParameterPreset) -> str:
    return reverse("admin:presets_parameterpreset_change", args=[preset.pk])


def delete_url(preset: ParameterPreset) -> str:
    return reverse("admin:presets_parameterpreset_delete", args=[preset.pk])


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "My grid",
        "description": "",
        "category": "custom",
        "runtime": "",
        "parameters": '{"tp-size": [1, 2]}',
        "metadata": "",
    }
    data.update(overrides)
    return data


def changelist_rows(response) -> dict[str, dict[str, str]]:
    """Each result row of a changelist page: the preset's name -> column -> shown text."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", response.content.decode(), flags=re.DOTALL):
        cells = dict(re.findall(r'<t[dh] class="field-(\w+)[^"]*">(.*?)</t[dh]>', row, flags=re.DOTALL))
        if cells:
            rows[strip_tags(cells["name"])] = {column: strip_tags(html).strip() for column, html in cells.items()}
    return rows


def shown_names(response) -> list[str]:
    return [preset.name for preset in response.context["cl"].result_list]


def error_messages(response, field: str) -> list[str]:
    return response.context["adminform"].form.errors.get(field, [])


def flashed(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def grant(user, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="presets", codename__in=codenames))


@pytest.fixture
def admin_client_(client, superuser):
    client.force_login(superuser)
    return client


def test_admin_pages_raise_no_deprecation_warning(admin_client_, system_presets):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RemovedInDjango2028Warning)
        assert admin_client_.get(CHANGELIST).status_code == 200
        assert admin_client_.get(ADD).status_code == 200


# Changelist


def test_changelist_shows_the_system_presets_with_their_columns(admin_client_, system_presets):
    response = admin_client_.get(CHANGELIST)

    assert response.status_code == 200
    rows = changelist_rows(response)
    assert set(rows) == set(system_preset_names())
    assert {"Memory Efficient", "High Throughput", "Low Latency", "Balanced"} <= set(rows)
    assert rows["High Throughput"]["category"] == "performance"
    assert rows["High Throughput"]["runtime_shown"] == "SGLang"
    assert rows["High Throughput"]["parameter_count"] == "4"
    assert rows["High Throughput"]["combinations"] == "2"
    assert rows["Balanced"]["category"] == "general"
    assert rows["Balanced"]["parameter_count"] == "3"
    assert rows["Balanced"]["combinations"] == "4"
    assert rows["Memory Efficient"]["combinations"] == "2"
    assert rows["High Throughput (vLLM)"]["category"] == "performance"
    assert rows["High Throughput (vLLM)"]["runtime_shown"] == "vLLM"
    assert rows["High Throughput (vLLM)"]["parameter_count"] == "5"  # gpu-memory-utilization left unset for vLLM 0.34
    assert rows["High Throughput (vLLM)"]["combinations"] == "4"


def test_changelist_shows_an_empty_runtime_as_any(admin_client_):
    make_preset(name="Anywhere", runtime="", parameters={"tp-size": [1, 2, 4]})

    rows = changelist_rows(admin_client_.get(CHANGELIST))

    assert rows["Anywhere"]["runtime_shown"] == "Any engine"
    assert rows["Anywhere"]["parameter_count"] == "1"
    assert rows["Anywhere"]["combinations"] == "3"


def test_changelist_filters_by_category(admin_client_, system_presets):
    response = admin_client_.get(CHANGELIST, {"category": "performance"})

    performance = [preset["name"] for preset in shipped_presets() if preset["category"] == "performance"]
    assert sorted(shown_names(response)) == sorted(performance)
    assert {"High Throughput", "Low Latency"} <= set(shown_names(response))
    assert "Balanced" not in shown_names(response)


def test_changelist_filters_by_runtime(admin_client_, system_presets):
    make_preset(name="For vLLM", runtime="vllm")

    response = admin_client_.get(CHANGELIST, {"runtime__exact": "vllm"})

    assert sorted(shown_names(response)) == sorted(["For vLLM", *system_preset_names("vllm")])
    assert "High Throughput" not in shown_names(response)


def test_changelist_filters_by_system_or_user_made(admin_client_, system_presets):
    make_preset(name="Mine")

    user_made = admin_client_.get(CHANGELIST, {"is_system__exact": "0"})
    system = admin_client_.get(CHANGELIST, {"is_system__exact": "1"})

    assert shown_names(user_made) == ["Mine"]
    assert sorted(shown_names(system)) == sorted(system_presets)


def test_changelist_search_matches_name_and_description(admin_client_, system_presets):
    by_name = admin_client_.get(CHANGELIST, {"q": "throughput"})
    by_description = admin_client_.get(CHANGELIST, {"q": "prefix-aware"})

    assert shown_names(by_name) == ["High Throughput", "High Throughput (vLLM)"]
    assert shown_names(by_description) == ["Low Latency"]


def test_a_staff_user_without_permissions_cannot_see_the_changelist(client, staff_user):
    client.force_login(staff_user)

    assert client.get(CHANGELIST).status_code == 403


def test_a_staff_user_with_view_permission_sees_the_list_but_may_only_export(client, staff_user, system_presets):
    grant(staff_user, "view_parameterpreset")
    client.force_login(staff_user)

    response = client.get(CHANGELIST)

    assert response.status_code == 200
    assert sorted(shown_names(response)) == sorted(system_preset_names())
    actions = [name for name, _label in response.context["action_form"].fields["action"].choices if name]
    assert actions == ["export_presets"]


# Adding


def test_the_add_form_stores_normalised_parameters_and_the_creator(admin_client_, superuser):
    # A flag no engine knows (an any-engine preset is checked against every engine): true and 1 stay two values.
    parameters = '{\n  "--tp_size": [1, 2, 2.0],\n  "schedule_policy": "lpm",\n  "my-switch": [true, 1]\n}'
    metadata = '{\n  "author": "root",\n  "tags": ["mine"]\n}'

    response = admin_client_.post(
        ADD, form_data(name="  My grid ", runtime="", parameters=parameters, metadata=metadata)
    )

    assert response.status_code == 302
    preset = ParameterPreset.objects.get()
    assert preset.name == "My grid"
    assert preset.runtime == ""
    assert json.dumps(preset.parameters) == json.dumps(
        {"tp-size": [1, 2], "schedule-policy": ["lpm"], "my-switch": [True, 1]}
    )
    assert preset.metadata == {"author": "root", "tags": ["mine"]}
    assert preset.created_by == superuser
    assert preset.is_system is False


def test_the_add_form_with_broken_json_says_where_and_keeps_the_text(admin_client_):
    typed = '{\n  "tp-size": [1, 2,\n}'

    response = admin_client_.post(ADD, form_data(parameters=typed))

    assert response.status_code == 200
    assert "Not valid JSON: Expecting value (line 3, column 1)." in error_messages(response, "parameters")
    assert '<textarea name="parameters"' in response.content.decode()
    assert "{\n  &quot;tp-size&quot;: [1, 2,\n}</textarea>" in response.content.decode()
    assert not ParameterPreset.objects.exists()


def test_the_add_form_with_bad_values_lists_each_problem_with_its_place(admin_client_):
    typed = '{"tp-size": [1, null], "Bad Flag": [1], "mem-fraction-static": []}'

    response = admin_client_.post(ADD, form_data(parameters=typed))

    assert response.status_code == 200
    errors = error_messages(response, "parameters")
    assert "tp-size[1]: null is not allowed" in errors
    assert any(message.startswith("Bad Flag: not a valid flag name") for message in errors)
    assert "mem-fraction-static: an empty list is not allowed; give at least one value" in errors
    content = response.content.decode()
    assert "tp-size[1]: null is not allowed" in content
    assert "{&quot;tp-size&quot;: [1, null], &quot;Bad Flag&quot;: [1], &quot;mem-fraction-static&quot;: []}" in content
    assert not ParameterPreset.objects.exists()


def test_the_add_form_shows_only_the_problems_of_what_was_typed(admin_client_):
    broken = admin_client_.post(ADD, form_data(parameters='{"tp-size": [1,'))
    bad_values = admin_client_.post(ADD, form_data(parameters='{"tp-size": [1, null]}'))

    assert error_messages(broken, "parameters") == ["Not valid JSON: Expecting value (line 1, column 16)."]
    assert error_messages(bad_values, "parameters") == ["tp-size[1]: null is not allowed"]


def test_the_add_form_refuses_bad_metadata_with_its_place(admin_client_):
    response = admin_client_.post(ADD, form_data(metadata='{"tags": ["ok", NaN]}'))

    assert response.status_code == 200
    assert error_messages(response, "metadata") == ["tags[1]: NaN and Infinity are not allowed"]
    assert not ParameterPreset.objects.exists()


def test_the_add_form_refuses_a_name_taken_in_another_case(admin_client_, system_presets):
    response = admin_client_.post(ADD, form_data(name="balanced "))

    assert response.status_code == 200
    assert error_messages(response, "name") == ['A preset named "Balanced" already exists.']
    assert ParameterPreset.objects.count() == len(system_presets)


# Changing


def test_a_user_preset_can_be_changed(admin_client_):
    preset = make_preset(name="Mine", parameters={"tp-size": [1]})

    response = admin_client_.post(change_url(preset), form_data(name="Mine", parameters='{"tp_size": [2, 4]}'))

    assert response.status_code == 302
    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [2, 4]}


def test_a_system_preset_change_page_is_read_only(admin_client_, system_presets):
    preset = system_presets["Balanced"]

    response = admin_client_.get(change_url(preset))

    assert response.status_code == 200
    content = response.content.decode()
    assert "View parameter preset" in content
    assert 'name="_save"' not in content
    assert "<textarea" not in content
    assert "deletelink" not in content


def test_posting_to_a_system_preset_change_page_changes_nothing(admin_client_, system_presets):
    preset = system_presets["Balanced"]
    before = preset.content(), preset.updated_at

    response = admin_client_.post(
        change_url(preset), form_data(name="Balanced", description="Hacked", parameters='{"tp-size": [64]}')
    )

    assert response.status_code == 403
    preset.refresh_from_db()
    assert (preset.content(), preset.updated_at) == before
    assert preset.description != "Hacked"


def test_a_staff_user_may_change_only_with_the_change_permission(client, staff_user):
    preset = make_preset(name="Shared", parameters={"tp-size": [1]})
    grant(staff_user, "view_parameterpreset")
    client.force_login(staff_user)

    refused = client.post(change_url(preset), form_data(name="Shared", parameters='{"tp-size": [8]}'))
    grant(staff_user, "change_parameterpreset")
    allowed = client.post(change_url(preset), form_data(name="Shared", parameters='{"tp-size": [2]}'))

    assert refused.status_code == 403
    assert allowed.status_code == 302
    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [2]}


# Deleting


def test_the_delete_page_of_a_system_preset_is_forbidden(admin_client_, system_presets):
    preset = system_presets["Balanced"]

    assert admin_client_.get(delete_url(preset)).status_code == 403
    assert admin_client_.post(delete_url(preset), {"post": "yes"}).status_code == 403
    assert ParameterPreset.objects.filter(pk=preset.pk).exists()


def test_a_user_preset_can_be_deleted_from_its_delete_page(admin_client_):
    preset = make_preset(name="Mine")

    response = admin_client_.post(delete_url(preset), {"post": "yes"})

    assert response.status_code == 302
    assert not ParameterPreset.objects.filter(pk=preset.pk).exists()


def test_the_delete_action_refuses_a_selection_with_a_system_preset(admin_client_, system_presets):
    mine = make_preset(name="Mine")
    selection = [system_presets["Balanced"].pk, mine.pk]

    response = admin_client_.post(
        CHANGELIST, {"action": "delete_presets", "_selected_action": selection, "post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert flashed(response) == [f"{SYSTEM_READ_ONLY}: Balanced. Nothing was deleted."]
    assert ParameterPreset.objects.count() == len(system_presets) + 1


def test_the_delete_action_asks_for_confirmation_then_deletes_user_presets(admin_client_, system_presets):
    first, second = make_preset(name="First"), make_preset(name="Second")
    selection = {"action": "delete_presets", "_selected_action": [first.pk, second.pk]}

    confirmation = admin_client_.post(CHANGELIST, selection)

    assert confirmation.status_code == 200
    assert "Are you sure you want to delete the selected parameter presets?" in confirmation.content.decode()
    assert ParameterPreset.objects.count() == len(system_presets) + 2

    done = admin_client_.post(CHANGELIST, {**selection, "post": "yes"})

    assert done.status_code == 302
    assert set(ParameterPreset.objects.values_list("name", flat=True)) == set(system_presets)


def test_the_delete_selected_default_action_is_not_offered(admin_client_, system_presets):
    response = admin_client_.get(CHANGELIST)

    actions = [name for name, _label in response.context["action_form"].fields["action"].choices if name]
    assert actions == ["duplicate_presets", "export_presets", "delete_presets"]


# Duplicating and exporting


def test_the_duplicate_action_creates_copies_owned_by_the_admin(admin_client_, superuser, system_presets):
    selection = [system_presets["Balanced"].pk, system_presets["Low Latency"].pk]

    response = admin_client_.post(
        CHANGELIST, {"action": "duplicate_presets", "_selected_action": selection}, follow=True
    )

    assert response.status_code == 200
    copies = ParameterPreset.objects.user_made()
    assert sorted(copy.name for copy in copies) == ["Balanced (copy)", "Low Latency (copy)"]
    for copy in copies:
        assert copy.created_by == superuser
        assert copy.is_system is False
    assert copies.get(name="Balanced (copy)").parameters == system_presets["Balanced"].parameters
    assert flashed(response) == ["Created Balanced (copy), Low Latency (copy)."]


def test_duplicating_twice_numbers_the_copies(admin_client_, system_presets):
    selection = {"action": "duplicate_presets", "_selected_action": [system_presets["Balanced"].pk]}

    admin_client_.post(CHANGELIST, selection)
    admin_client_.post(CHANGELIST, selection)

    assert sorted(ParameterPreset.objects.user_made().values_list("name", flat=True)) == [
        "Balanced (copy 2)",
        "Balanced (copy)",
    ]


def test_the_export_action_downloads_the_selected_presets_as_one_json_file(admin_client_, system_presets):
    mine = make_preset(
        name="Mine",
        description="Two GPUs",
        category="custom",
        runtime="",
        parameters={"tp-size": [2]},
        metadata={"author": "root"},
    )
    selection = [mine.pk, system_presets["High Throughput"].pk]

    response = admin_client_.post(CHANGELIST, {"action": "export_presets", "_selected_action": selection})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="presets.json"'
    high_throughput = system_presets["High Throughput"]
    assert json.loads(response.content) == {
        "version": "1.0",
        "presets": [
            {
                "name": "High Throughput",
                "description": high_throughput.description,
                "category": "performance",
                "runtime": "sglang",
                "parameters": {
                    "tp-size": [2, 4],
                    "mem-fraction-static": [0.9],
                    "schedule-policy": ["fcfs"],
                    "enable-mixed-chunk": [True],
                },
                "metadata": high_throughput.metadata,
            },
            {
                "name": "Mine",
                "description": "Two GPUs",
                "category": "custom",
                "runtime": None,  # any engine, as the API writes it
                "parameters": {"tp-size": [2]},
                "metadata": {"author": "root"},
            },
        ],
    }
    # == alone would let 1 pass for true.
    assert json.loads(response.content)["presets"][0]["parameters"]["enable-mixed-chunk"][0] is True


def test_the_add_form_refuses_a_value_the_engine_would_refuse(admin_client_):
    parameters = '{"mem-fraction-static": [0.8, 9], "enable-mixed-chunk": [true]}'

    response = admin_client_.post(ADD, form_data(name="Too much", runtime="sglang", parameters=parameters))

    assert response.status_code == 200
    assert "mem-fraction-static[1]: 9 is outside (0, 1]" in response.text
    assert not ParameterPreset.objects.filter(name="Too much").exists()
