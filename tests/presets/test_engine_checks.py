"""Presets with a runtime are checked against that engine's flags, and any-engine presets against
every engine's: through the API (create, replace, change, import), the pages (form, live preview,
detail) and the merge API given a runtime."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from presets.models import ParameterPreset
from tests.factories import make_preset
from tests.html import Element, parse

pytestmark = pytest.mark.django_db

LIST = "/api/presets/"
IMPORT = "/api/presets/import"
MERGE = "/api/presets/merge"
FIELDS = {
    "version",
    "id",
    "name",
    "description",
    "category",
    "runtime",
    "is_system",
    "parameters",
    "metadata",
    "created_at",
    "updated_at",
}
MISSPELT_WARNING = {
    "level": "warning",
    "path": "enable-mixed-chunking",
    "message": "not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?",
}


def detail_url(preset: ParameterPreset) -> str:
    return f"/api/presets/{preset.pk}"


def new_preset(**fields) -> dict:
    return {"name": "Checked", "runtime": "sglang", "parameters": {"tp-size": [1, 2]}, **fields}


def errors(response) -> list[dict[str, str]]:
    return response.json()["errors"]


# The API: create


def test_a_value_outside_the_engines_bounds_is_refused_and_nothing_is_created(api):
    response = api.post(LIST, new_preset(parameters={"mem-fraction-static": [0.8, 9]}), format="json")

    assert response.status_code == 400
    assert errors(response) == [{"path": "parameters.mem-fraction-static[1]", "message": "9 is outside (0, 1]"}]
    assert response.json()["detail"] == "parameters.mem-fraction-static[1]: 9 is outside (0, 1]"
    assert not ParameterPreset.objects.filter(name="Checked").exists()


@pytest.mark.parametrize(
    ("runtime", "parameters", "expected"),
    [
        pytest.param(
            "sglang",
            {"enable-mixed-chunk": [1]},
            [("parameters.enable-mixed-chunk[0]", "1 is not true or false (a switch is on or off)")],
            id="a-switch-given-1",
        ),
        pytest.param(
            "sglang",
            {"disable-radix-cache": [True, "yes"]},
            [("parameters.disable-radix-cache[1]", '"yes" is not true or false (a switch is on or off)')],
            id="a-switch-given-text",
        ),
        pytest.param(
            "sglang",
            {"mem-fraction-static": [0]},
            [("parameters.mem-fraction-static[0]", "0 is outside (0, 1]")],
            id="the-open-lower-bound",
        ),
        pytest.param(
            "sglang",
            {"tp-size": [0, 1.5]},
            [
                ("parameters.tp-size[0]", "0 must be >= 1"),
                ("parameters.tp-size[1]", "1.5 is not a whole number"),
            ],
            id="an-integer-below-its-minimum-and-a-fraction",
        ),
        pytest.param(
            "sglang",
            {"schedule-policy": ["fcfs", "fifo"]},
            [
                (
                    "parameters.schedule-policy[1]",
                    '"fifo" is not one of: lpm, random, fcfs, dfs-weight, lof, priority, routing-key, hrrn, '
                    "shortest-prefill-first",
                )
            ],
            id="a-choice-not-offered",
        ),
        pytest.param(
            "sglang",
            {"tensor-parallel-size": [-2]},
            [("parameters.tensor-parallel-size[0]", "-2 must be >= 1")],
            id="through-an-alias",
        ),
        pytest.param(
            "vllm",
            {"gpu-memory-utilization": [0.9, 1.5]},
            [("parameters.gpu-memory-utilization[1]", "1.5 is outside (0, 1]")],
            id="vllm-memory-fraction",
        ),
        pytest.param(
            "vllm",
            {"enable-chunked-prefill": [0]},
            [("parameters.enable-chunked-prefill[0]", "0 is not true or false (a switch is on or off)")],
            id="vllm-switch-given-0",
        ),
    ],
)
def test_values_the_engine_would_refuse_answer_400_with_each_path(api, runtime, parameters, expected):
    response = api.post(LIST, new_preset(runtime=runtime, parameters=parameters), format="json")

    assert response.status_code == 400
    assert [(error["path"], error["message"]) for error in errors(response)] == expected
    assert not ParameterPreset.objects.filter(name="Checked").exists()


def test_an_unknown_flag_is_saved_with_a_did_you_mean_warning(api):
    response = api.post(LIST, new_preset(parameters={"enable-mixed-chunking": [True]}), format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["warnings"] == [MISSPELT_WARNING]
    assert "did you mean enable-mixed-chunk?" in body["warnings"][0]["message"]
    assert ParameterPreset.objects.get(pk=body["id"]).parameters == {"enable-mixed-chunking": [True]}


def test_a_clean_preset_answers_the_seeds_shape_without_warnings(api):
    parameters = {"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.9], "enable-mixed-chunk": [True, False]}

    response = api.post(LIST, new_preset(parameters=parameters), format="json")

    assert response.status_code == 201
    assert set(response.json()) == FIELDS
    assert response.json()["parameters"] == parameters


def test_an_any_engine_preset_is_refused_a_value_every_engine_with_the_flag_refuses(api):
    parameters = {"tp-szie": [2], "mem-fraction-static": ["abc", 0.8], "max-num-seqs": [0]}

    response = api.post(LIST, new_preset(runtime=None, parameters=parameters), format="json")

    assert response.status_code == 400
    assert errors(response) == [
        {"path": "parameters.mem-fraction-static[0]", "message": '"abc" is not a number'},
        {"path": "parameters.max-num-seqs[0]", "message": "0 must be >= 1"},
    ]
    assert not ParameterPreset.objects.filter(name="Checked").exists()


def test_an_any_engine_preset_is_saved_with_a_warning_for_a_flag_no_engine_knows(api):
    # fp8 is a vLLM kv-cache-dtype and mxfp8 an SGLang one: each engine takes one of them.
    parameters = {"tp-szie": [2], "kv-cache-dtype": ["fp8", "mxfp8"]}

    response = api.post(LIST, new_preset(runtime=None, parameters=parameters), format="json")

    assert response.status_code == 201
    assert response.json()["runtime"] is None
    assert response.json()["warnings"][0] == {
        "level": "warning",
        "path": "tp-szie",
        "message": "not a flag of any engine; did you mean tp-size?",
    }
    # Each value one engine refuses (or does not know) and the other takes: a warning, not an error.
    assert [(found["level"], found["path"]) for found in response.json()["warnings"][1:]] == [
        ("warning", "kv-cache-dtype[0]"),
        ("warning", "kv-cache-dtype[1]"),
    ]
    assert response.json()["warnings"][1]["message"].startswith('sglang 0.5.23 refuses it: "fp8" is not one of')
    assert ParameterPreset.objects.get(name="Checked").parameters == parameters


def test_reading_a_preset_with_warnings_keeps_the_seeds_shape(api, user):
    preset = make_preset(runtime="sglang", parameters={"enable-mixed-chunking": [True]}, created_by=user)

    response = api.get(detail_url(preset))

    assert response.status_code == 200
    assert set(response.json()) == FIELDS


# The API: replace and change


def test_changing_the_runtime_rechecks_the_stored_parameters(api, user):
    preset = make_preset(runtime="", parameters={"mem-fraction-static": [9]}, created_by=user)

    response = api.patch(detail_url(preset), {"runtime": "sglang"}, format="json")

    assert response.status_code == 400
    assert errors(response) == [{"path": "parameters.mem-fraction-static[0]", "message": "9 is outside (0, 1]"}]
    preset.refresh_from_db()
    assert preset.runtime == ""


def test_changing_the_runtime_of_fitting_parameters_is_accepted(api, user):
    preset = make_preset(runtime="", parameters={"mem-fraction-static": [0.85]}, created_by=user)

    response = api.patch(detail_url(preset), {"runtime": "sglang"}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == FIELDS
    preset.refresh_from_db()
    assert preset.runtime == "sglang"


def test_changing_the_parameters_of_an_engine_preset_checks_them(api, user):
    preset = make_preset(runtime="vllm", parameters={"max-num-seqs": [64]}, created_by=user)

    response = api.patch(detail_url(preset), {"parameters": {"max-num-seqs": [64, 0]}}, format="json")

    assert response.status_code == 400
    assert errors(response) == [{"path": "parameters.max-num-seqs[1]", "message": "0 must be >= 1"}]
    preset.refresh_from_db()
    assert preset.parameters == {"max-num-seqs": [64]}


def test_changing_the_runtime_to_any_engine_allows_what_another_engine_takes(api, user):
    preset = make_preset(runtime="sglang", parameters={"kv-cache-dtype": ["auto"]}, created_by=user)

    refused = api.patch(detail_url(preset), {"parameters": {"kv-cache-dtype": ["fp8"]}}, format="json")
    response = api.patch(
        detail_url(preset), {"runtime": None, "parameters": {"kv-cache-dtype": ["fp8"]}}, format="json"
    )

    assert refused.status_code == 400
    assert response.status_code == 200
    preset.refresh_from_db()
    assert (preset.runtime, preset.parameters) == ("", {"kv-cache-dtype": ["fp8"]})


def test_changing_the_runtime_to_any_engine_keeps_a_value_no_engine_takes_refused(api, user):
    preset = make_preset(runtime="sglang", parameters={"mem-fraction-static": [0.8]}, created_by=user)

    response = api.patch(
        detail_url(preset), {"runtime": None, "parameters": {"mem-fraction-static": [9]}}, format="json"
    )

    assert response.status_code == 400
    assert errors(response) == [{"path": "parameters.mem-fraction-static[0]", "message": "9 is outside (0, 1]"}]
    preset.refresh_from_db()
    assert (preset.runtime, preset.parameters) == ("sglang", {"mem-fraction-static": [0.8]})


def test_a_replace_is_checked_like_a_create(api, user):
    preset = make_preset(runtime="sglang", parameters={"tp-size": [1]}, created_by=user)

    response = api.put(
        detail_url(preset), new_preset(name=preset.name, parameters={"mem-fraction-static": [1.2]}), format="json"
    )

    assert response.status_code == 400
    assert errors(response) == [{"path": "parameters.mem-fraction-static[0]", "message": "1.2 is outside (0, 1]"}]
    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [1]}


def test_a_change_that_leaves_an_unknown_flag_answers_with_its_warning(api, user):
    preset = make_preset(runtime="sglang", parameters={"tp-size": [1]}, created_by=user)

    response = api.patch(detail_url(preset), {"parameters": {"enable-mixed-chunking": [True]}}, format="json")

    assert response.status_code == 200
    assert response.json()["warnings"] == [MISSPELT_WARNING]


# The API: import


def test_an_imported_preset_out_of_the_engines_bounds_is_refused_and_nothing_is_created(api):
    document = {
        "version": "1.0",
        "preset": {"name": "Imported", "runtime": "sglang", "parameters": {"mem-fraction-static": [9]}},
    }

    response = api.post(IMPORT, document, format="json")

    assert response.status_code == 400
    assert errors(response) == [{"path": "preset.parameters.mem-fraction-static[0]", "message": "9 is outside (0, 1]"}]
    assert not ParameterPreset.objects.filter(name="Imported").exists()


def test_one_bad_preset_in_a_bundle_stops_the_whole_import(api):
    document = {
        "version": "1.0",
        "presets": [
            {"name": "Fine", "runtime": "sglang", "parameters": {"tp-size": [1, 2]}},
            {"name": "Broken", "runtime": "vllm", "parameters": {"gpu-memory-utilization": [0.9, 2]}},
        ],
    }

    response = api.post(IMPORT, document, format="json")

    assert response.status_code == 400
    assert errors(response) == [
        {"path": "presets[1].parameters.gpu-memory-utilization[1]", "message": "2 is outside (0, 1]"}
    ]
    assert not ParameterPreset.objects.filter(name__in=["Fine", "Broken"]).exists()


def test_an_imported_any_engine_preset_is_checked_against_every_engine(api):
    document = {"version": "1.0", "preset": {"name": "Imported", "parameters": {"mem-fraction-static": [9]}}}

    response = api.post(IMPORT, document, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["preset.parameters.mem-fraction-static[0]"]
    assert not ParameterPreset.objects.filter(name="Imported").exists()


def test_an_imported_description_over_the_limit_is_refused_at_its_path(api):
    preset = {"name": "Imported", "description": "x" * 2001, "parameters": {"tp-size": [1]}}

    response = api.post(IMPORT, {"version": "1.0", "preset": preset}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "preset.description", "message": "at most 2,000 characters are allowed, got 2,001"}
    ]


# The model, as the admin and the seed use it


def test_full_clean_names_the_flag_and_value_the_engine_refuses():
    preset = ParameterPreset(name="Model check", runtime="sglang", parameters={"mem-fraction-static": [0.5, 9]})

    with pytest.raises(ValidationError) as caught:
        preset.full_clean()

    assert caught.value.message_dict == {"parameters": ["mem-fraction-static[1]: 9 is outside (0, 1]"]}


def test_engine_warnings_list_unknown_flags_of_the_engine_or_of_every_engine():
    for_sglang = make_preset(runtime="sglang", parameters={"enable-mixed-chunking": [True]})
    for_any = make_preset(runtime="", parameters={"enable-mixed-chunking": [True], "max-num-seqs": [8]})

    assert [finding.as_dict() for finding in for_sglang.engine_warnings] == [MISSPELT_WARNING]
    assert [str(finding) for finding in for_any.engine_warnings] == [
        "enable-mixed-chunking: not a flag of any engine; did you mean enable-mixed-chunk?"
    ]


def test_full_clean_checks_an_any_engine_preset_against_every_engine():
    preset = ParameterPreset(name="Model check", runtime="", parameters={"mem-fraction-static": ["abc"]})

    with pytest.raises(ValidationError) as caught:
        preset.full_clean()

    assert caught.value.message_dict == {"parameters": ['mem-fraction-static[0]: "abc" is not a number']}


# The pages


def form_data(**overrides) -> dict:
    data = {
        "name": "Page preset",
        "description": "",
        "category": "custom",
        "runtime": "sglang",
        "parameters": '{"mem-fraction-static": [0.8, 9]}',
        "metadata": "{}",
    }
    data.update(overrides)
    return data


def row_errors(response, field: str) -> list[str]:
    return [item.text for item in parse(response.content).by_id(f"row-{field}").find_all("li")]


def preview(response) -> Element:
    return parse(response.content).by_id("parameters-preview")


def preview_findings(response) -> list[str]:
    return [item.text for item in preview(response).find_all("li", class_="conflict")]


def test_the_new_preset_form_shows_the_engines_refusal_in_the_parameters_row(signed_in):
    response = signed_in.post("/presets/new/", form_data())

    assert response.status_code == 422
    assert row_errors(response, "parameters") == ["mem-fraction-static[1]: 9 is outside (0, 1]"]
    assert not ParameterPreset.objects.filter(name="Page preset").exists()
    # The typed text is kept for correcting.
    assert parse(response.content).find("textarea", name="parameters").raw_text.strip() == (
        '{"mem-fraction-static": [0.8, 9]}'
    )


def test_the_same_values_for_any_engine_are_refused_as_no_engine_takes_them(signed_in):
    response = signed_in.post("/presets/new/", form_data(runtime=""))

    assert response.status_code == 422
    assert row_errors(response, "parameters") == ["mem-fraction-static[1]: 9 is outside (0, 1]"]
    assert not ParameterPreset.objects.filter(name="Page preset").exists()


def test_an_any_engine_preset_with_an_unknown_flag_is_saved_from_the_page(signed_in):
    response = signed_in.post("/presets/new/", form_data(runtime="", parameters='{"tp-szie": [2]}'))

    assert response.status_code == 302
    preset = ParameterPreset.objects.get(name="Page preset")
    assert (preset.runtime, preset.parameters) == ("", {"tp-szie": [2]})


def test_the_edit_form_rechecks_when_the_runtime_changes(signed_in, user):
    preset = make_preset(name="Page preset", runtime="", parameters={"mem-fraction-static": [9]}, created_by=user)
    edit = f"/presets/{preset.pk}/edit/"
    opened = signed_in.get(edit)
    version = parse(opened.content).find("input", name="version").attrs["value"]

    response = signed_in.post(edit, form_data(parameters='{"mem-fraction-static": [9]}', version=version))

    assert response.status_code == 422
    assert row_errors(response, "parameters") == ["mem-fraction-static[0]: 9 is outside (0, 1]"]
    preset.refresh_from_db()
    assert preset.runtime == ""


def test_the_live_preview_warns_of_an_unknown_flag_and_marks_a_bad_value(signed_in):
    parameters = '{"enable-mixed-chunking": [true], "mem-fraction-static": [0.8, 9]}'

    response = signed_in.post("/presets/preview/", {"parameters": parameters, "runtime": "sglang"})

    assert response.status_code == 200
    assert preview_findings(response) == [
        "⚠ enable-mixed-chunking: not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?",
        "✖ mem-fraction-static[1]: 9 is outside (0, 1]",
    ]
    assert preview(response).find("li", class_="finding-error") is not None
    # The summary agrees with the worst finding.
    assert status_line(response).text == "Not valid: 1 error (✖) to fix, 1 warning; 2 combinations."
    assert status_line(response).attrs["class"] == "preview-status invalid"


def status_line(response) -> Element:
    return preview(response).find("p", class_="preview-status")


def test_the_live_previews_summary_counts_the_warnings_of_a_valid_grid(signed_in):
    parameters = '{"enable-mixed-chunking": [true], "tp-size": [1, 2]}'

    response = signed_in.post("/presets/preview/", {"parameters": parameters, "runtime": "sglang"})

    assert status_line(response).text == "Valid: 2 combinations, with 1 warning (⚠)."
    assert status_line(response).attrs["class"] == "preview-status valid"


def test_the_live_preview_checks_an_any_engine_grid_against_every_engine(signed_in):
    parameters = '{"tp-szie": [2], "mem-fraction-static": ["abc"]}'

    response = signed_in.post("/presets/preview/", {"parameters": parameters, "runtime": ""})

    assert response.status_code == 200
    assert preview_findings(response) == [
        "⚠ tp-szie: not a flag of any engine; did you mean tp-size?",
        '✖ mem-fraction-static[0]: "abc" is not a number',
    ]
    assert status_line(response).text == "Not valid: 1 error (✖) to fix, 1 warning; 1 combination."


def test_the_live_preview_for_an_unknown_engine_has_no_findings(signed_in):
    parameters = '{"enable-mixed-chunking": [true], "mem-fraction-static": [9]}'

    response = signed_in.post("/presets/preview/", {"parameters": parameters, "runtime": "tensorrt"})

    assert response.status_code == 200
    assert preview_findings(response) == []
    assert status_line(response).text == "Valid: 1 combination."


def test_the_live_preview_checks_vllm_flags(signed_in):
    response = signed_in.post(
        "/presets/preview/", {"parameters": '{"gpu-memory-utilization": [1.5], "tp": [2]}', "runtime": "vllm"}
    )

    assert preview_findings(response) == ["✖ gpu-memory-utilization[0]: 1.5 is outside (0, 1]"]


def test_the_form_page_preview_shows_the_findings_of_a_refused_form(signed_in):
    response = signed_in.post("/presets/new/", form_data(parameters='{"enable-mixed-chunking": [true]}', name=""))

    assert response.status_code == 422
    assert preview_findings(response) == [
        "⚠ enable-mixed-chunking: not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?"
    ]


def test_the_preset_page_shows_the_warnings_of_an_unknown_flag(signed_in):
    preset = make_preset(runtime="sglang", parameters={"enable-mixed-chunking": [True], "tp-size": [1]})

    response = signed_in.get(f"/presets/{preset.pk}/")

    assert response.status_code == 200
    warnings = parse(response.content).find("ul", aria_label="Engine warnings")
    assert [item.text for item in warnings.find_all("li")] == [
        "⚠ enable-mixed-chunking: not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?"
    ]


@pytest.mark.parametrize(
    ("runtime", "parameters"),
    [
        pytest.param("sglang", {"enable-mixed-chunk": [True]}, id="known-flags"),
        pytest.param("", {"enable-mixed-chunk": [True], "max-num-seqs": [8]}, id="any-engine"),
    ],
)
def test_the_preset_page_shows_no_warnings_when_there_are_none(signed_in, runtime, parameters):
    preset = make_preset(runtime=runtime, parameters=parameters)

    response = signed_in.get(f"/presets/{preset.pk}/")

    assert parse(response.content).find("ul", aria_label="Engine warnings") is None


# The merge API, given a runtime


@pytest.fixture
def tp_presets() -> tuple[ParameterPreset, ParameterPreset]:
    first = make_preset(name="Short name", runtime="sglang", parameters={"tp-size": [1]})
    second = make_preset(name="Long name", runtime="sglang", parameters={"tensor-parallel-size": [2, 4]})
    return first, second


def test_the_merge_with_a_runtime_joins_aliases_under_the_name_written_first(api, tp_presets):
    first, second = tp_presets

    response = api.post(MERGE, {"preset_ids": [first.pk, second.pk], "runtime": "sglang"}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["parameters"] == {"tp-size": [1, 2, 4]}
    assert body["notes"] == ["tensor-parallel-size in Long name is the same flag as tp-size: merged as tp-size"]
    assert body["warnings"] == []


def test_the_merge_keeps_the_spelling_of_the_first_preset(api, tp_presets):
    first, second = tp_presets

    response = api.post(MERGE, {"preset_ids": [second.pk, first.pk], "runtime": "sglang"}, format="json")

    body = response.json()
    assert body["parameters"] == {"tensor-parallel-size": [1, 2, 4]}  # numbers ascend in a union
    assert body["notes"] == [
        "tp-size in Short name is the same flag as tensor-parallel-size: merged as tensor-parallel-size"
    ]


@pytest.mark.parametrize("runtime", [None, ""], ids=["null", "empty"])
def test_the_merge_of_one_engines_presets_joins_its_aliases_without_being_told(api, tp_presets, runtime):
    first, second = tp_presets
    body = {"preset_ids": [first.pk, second.pk]}
    if runtime is not None:
        body["runtime"] = runtime

    response = api.post(MERGE, body, format="json")

    assert response.status_code == 200
    answer = response.json()
    assert answer["parameters"] == {"tp-size": [1, 2, 4]}
    assert answer["notes"] == ["tensor-parallel-size in Long name is the same flag as tp-size: merged as tp-size"]
    assert [conflict["kind"] for conflict in answer["conflicts"]] == ["disjoint"]  # 1 against 2, 4: no engines one


def test_the_merge_of_engine_less_presets_keeps_aliases_apart(api):
    first = make_preset(runtime="", parameters={"tp-size": [1]})
    second = make_preset(runtime="", parameters={"tensor-parallel-size": [2]})

    response = api.post(MERGE, {"preset_ids": [first.pk, second.pk]}, format="json")

    assert response.json()["parameters"] == {"tp-size": [1], "tensor-parallel-size": [2]}
    assert "notes" not in response.json()


def test_the_merge_of_an_sglang_and_a_vllm_preset_is_an_engines_conflict(api):
    sglang = make_preset(name="SG base", runtime="sglang", parameters={"tp-size": [1, 2]})
    vllm = make_preset(name="VL base", runtime="vllm", parameters={"tensor-parallel-size": [2]})
    anywhere = make_preset(name="Any", runtime="", parameters={"max-running-requests": [8]})

    response = api.post(MERGE, {"preset_ids": [sglang.pk, vllm.pk, anywhere.pk]}, format="json")

    assert response.status_code == 200
    [conflict] = response.json()["conflicts"]
    assert conflict == {
        "parameter": "runtime",
        "kind": "engines",
        "reason": "These presets are for different engines (SGLang: “SG base”; vLLM: “VL base”): one task runs "
        "one engine, and each spells its flags its own way (tp-size in SGLang is tensor-parallel-size in vLLM), "
        "so their flags are not merged as one.",
        "presets": ["SG base", "VL base"],
        "values": {"SG base": ["sglang"], "VL base": ["vllm"]},
    }
    assert response.json()["parameters"]["tp-size"] == [1, 2]  # not joined with tensor-parallel-size


def test_a_merge_for_one_engine_names_the_presets_of_another(api):
    sglang = make_preset(name="SG base", runtime="sglang", parameters={"tp-size": [1, 2]})
    vllm = make_preset(name="VL base", runtime="vllm", parameters={"tensor-parallel-size": [2]})

    response = api.post(MERGE, {"preset_ids": [sglang.pk, vllm.pk], "runtime": "sglang"}, format="json")

    [conflict] = response.json()["conflicts"]
    assert conflict["kind"] == "engines"
    assert conflict["reason"] == (
        "“VL base” is for vLLM, not SGLang: one task runs one engine, and each spells its flags its own way."
    )


def test_the_merge_with_a_runtime_warns_of_what_the_engine_would_say(api):
    first = make_preset(runtime="sglang", parameters={"enable-mixed-chunking": [True]})
    second = make_preset(runtime="", parameters={"mem-fraction-static": [9]})

    response = api.post(MERGE, {"preset_ids": [first.pk, second.pk], "runtime": "sglang"}, format="json")

    assert response.status_code == 200
    assert response.json()["warnings"] == [
        MISSPELT_WARNING,
        {"level": "error", "path": "mem-fraction-static[0]", "message": "9 is outside (0, 1]"},
    ]
    assert "notes" not in response.json()


def test_the_vllm_merge_joins_its_short_alias(api):
    first = make_preset(runtime="vllm", parameters={"tp": [1]})
    second = make_preset(runtime="vllm", parameters={"tensor-parallel-size": [1, 2]})

    response = api.post(MERGE + "/", {"preset_ids": [first.pk, second.pk], "runtime": "vllm"}, format="json")

    assert response.status_code == 200
    assert response.json()["parameters"] == {"tp": [1, 2]}
    assert len(response.json()["notes"]) == 1


@pytest.mark.parametrize(
    "runtime", ["tensorrt", "SGLang", 5, ["sglang"]], ids=["unknown", "wrong-case", "number", "list"]
)
def test_the_merge_refuses_a_bad_runtime_naming_it(api, tp_presets, runtime):
    first, second = tp_presets

    response = api.post(MERGE, {"preset_ids": [first.pk, second.pk], "runtime": runtime}, format="json")

    assert response.status_code == 400
    assert [error["path"] for error in errors(response)] == ["runtime"]
    assert 'expected "sglang", "vllm" or null' in errors(response)[0]["message"]


def test_the_merge_compares_sizes_by_the_number_the_engine_reads(api):
    # vllm/engine/arg_utils.py human_readable_int: "32k" is 32000, as 32000 is.
    first = make_preset(runtime="vllm", parameters={"max-model-len": ["32k", 8192]})
    second = make_preset(runtime="vllm", parameters={"max-model-len": [32000, 4096]})

    response = api.post(MERGE, {"preset_ids": [first.pk, second.pk]}, format="json")

    assert response.status_code == 200
    assert response.json()["parameters"]["max-model-len"] == [4096, 8192, 32000]  # one 32000, numbers ascending
    assert any("32k" in note for note in response.json()["notes"])
