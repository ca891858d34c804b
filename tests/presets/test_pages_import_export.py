"""The Presets pages' import form and export downloads."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from presets.models import ParameterPreset
from tests.factories import make_preset, system_preset_names
from tests.html import Element, parse

pytestmark = pytest.mark.django_db

IMPORT = "/presets/import/"
EXPORT_SHOWN = "/presets/export/"
MiB = 1024 * 1024


def document(**preset) -> dict:
    """A one-preset document; ``name`` and ``parameters`` default to something valid."""
    return {"version": "1.0", "preset": {"name": "Imported", "parameters": {"tp-size": [1, 2]}, **preset}}


def bundle(*presets: dict) -> dict:
    return {"version": "1.0", "presets": list(presets)}


def upload(content: dict | bytes | str, name: str = "presets.json") -> SimpleUploadedFile:
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode()
    return SimpleUploadedFile(name, content, content_type="application/json")


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


def problems(response) -> list[str]:
    """The file's problems as the page lists them, ``path: message``."""
    box = page(response).find("div", class_="error-summary")
    assert box.find("p").text == "The file cannot be imported; nothing was created:"
    return [item.text for item in box.find_all("li")]


def form_errors(response) -> list[str]:
    """The import form's own errors: non-field ones at the top, then each field's."""
    form = page(response).find("main").find("form")
    return [item.text for item in form.find_all("li")]


# The import form


def test_import_form_has_a_file_field_and_the_conflict_choices(signed_in):
    response = signed_in.get(IMPORT)

    assert response.status_code == 200
    form = page(response).find("main").find("form")
    assert form.attrs["enctype"] == "multipart/form-data"
    assert form.find("input", name="file").attrs["type"] == "file"
    radios = form.find_all("input", name="on_conflict")
    assert [radio.attrs["value"] for radio in radios] == ["fail", "rename", "replace"]
    assert [radio.attrs["value"] for radio in radios if "checked" in radio.attrs] == ["fail"]


def test_importing_a_bundle_creates_every_preset_and_lists_them(signed_in, user):
    content = bundle(
        {"name": "Alpha", "category": "memory", "runtime": "vllm", "parameters": {"--max_num_seqs": 8}},
        {"name": "Beta", "parameters": {"tp-size": [1, 2]}, "metadata": {"author": "ci"}},
    )

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "fail"}, follow=True)

    assert response.redirect_chain == [("/presets/", 302)]
    assert flashed(response) == ["Imported 2 presets: “Alpha”, “Beta”."]
    alpha = ParameterPreset.objects.get(name="Alpha")
    assert alpha.category == "memory"
    assert alpha.runtime == "vllm"
    assert alpha.parameters == {"max-num-seqs": [8]}
    assert alpha.created_by == user
    assert alpha.is_system is False
    assert ParameterPreset.objects.get(name="Beta").metadata == {"author": "ci"}


def test_importing_one_preset_says_so_in_the_singular(signed_in):
    response = signed_in.post(IMPORT, {"file": upload(document()), "on_conflict": "fail"}, follow=True)

    assert flashed(response) == ["Imported 1 preset: “Imported”."]
    assert ParameterPreset.objects.get().parameters == {"tp-size": [1, 2]}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", ["Not valid JSON: Expecting property name enclosed in double quotes (line 1, column 2)."]),
        (b"\xff\xfe", ["The body is not UTF-8 text (byte 0)."]),
        (
            {"version": "2.0", "preset": {"name": "X", "parameters": {"tp-size": [1]}}},
            ['version: unsupported version "2.0"; this server reads version 1.x documents'],
        ),
        ({"version": "1.0", "preset": {"parameters": {"tp-size": [1]}}}, ["preset.name: this field is required"]),
        (
            document(parameters={"tp-size": [None, 2]}),
            ["preset.parameters.tp-size[0]: null is not allowed"],
        ),
        (
            bundle(
                {"name": "Good", "parameters": {"tp-size": [1]}},
                {"parameters": {"tp-size": []}},
                {"name": "Bad runtime", "runtime": "tensorrt", "parameters": {"tp-size": [1]}},
            ),
            [
                "presets[1].name: this field is required",
                "presets[1].parameters.tp-size: an empty list is not allowed; give at least one value",
                'presets[2].runtime: "tensorrt" is not a runtime; expected "sglang", "vllm" or null (any)',
            ],
        ),
        (
            bundle({"name": "Twice", "parameters": {"a": [1]}}, {"name": "TWICE", "parameters": {"a": [2]}}),
            ['presets[1].name: "TWICE" is already used by presets[0]'],
        ),
        ([1, 2], ['expected an object with "version" and "preset" or "presets", got a list']),
        (
            {
                "version": "1.0",
                "preset": {
                    "name": "Edge",
                    "parameters": {"tp-size": [1]},
                    "history": [
                        {
                            "version": 1,
                            "created_at": "9999-12-31T23:59:59-14:00",
                            "content": {"name": "Edge", "parameters": {"tp-size": [1]}},
                        }
                    ],
                },
            },
            [
                'preset.history[0].created_at: "9999-12-31T23:59:59-14:00" is outside the years 1 to 9999'
                " once moved to UTC"
            ],
        ),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "wrong-version",
        "no-name",
        "bad-parameters",
        "every-problem-in-a-bundle",
        "same-name-twice",
        "not-an-object",
        "a-time-past-the-calendar",
    ],
)
def test_a_bad_file_is_refused_listing_every_problem_and_nothing_is_created(signed_in, content, expected):
    if isinstance(content, list):
        content = json.dumps(content)

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "fail"})

    assert response.status_code == 422
    assert problems(response) == expected
    assert not ParameterPreset.objects.exists()


def test_a_problem_path_is_shown_as_code(signed_in):
    response = signed_in.post(IMPORT, {"file": upload(document(parameters={"tp-size": [None]})), "on_conflict": "fail"})

    box = page(response).find("div", class_="error-summary")
    assert box.find("code").text == "preset.parameters.tp-size[0]"


def test_a_name_clash_with_fail_imports_nothing_and_says_so(signed_in, system_presets):
    content = bundle({"name": "Fresh", "parameters": {"a": [1]}}, {"name": "balanced", "parameters": {"a": [2]}})

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "fail"})

    assert response.status_code == 422
    errors = form_errors(response)
    assert errors == ["Already taken: “Balanced”. Nothing was imported; choose “rename” or “replace” to go on."]
    assert page(response).find("div", class_="error-summary").find("p").text == "Please correct the error below."
    assert not ParameterPreset.objects.filter(name="Fresh").exists()
    assert ParameterPreset.objects.count() == len(system_presets)


def test_a_name_clash_with_rename_imports_under_a_new_name_and_lists_it(signed_in, system_presets, user):
    content = bundle({"name": "Balanced", "parameters": {"a": [1]}}, {"name": "Fresh", "parameters": {"a": [2]}})

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "rename"}, follow=True)

    assert flashed(response) == ["Imported 2 presets: “Balanced (imported)”, “Fresh”."]
    renamed = ParameterPreset.objects.get(name="Balanced (imported)")
    assert renamed.parameters == {"a": [1]}
    assert renamed.created_by == user
    system_presets["Balanced"].refresh_from_db()
    assert system_presets["Balanced"].parameters == {
        "tp-size": [1, 2],
        "mem-fraction-static": [0.85],
        "schedule-policy": ["fcfs", "lpm"],
    }


def test_a_name_clash_with_replace_overwrites_the_users_own_preset(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)

    response = signed_in.post(
        IMPORT,
        {"file": upload(document(name="MINE", parameters={"tp-size": [8]})), "on_conflict": "replace"},
        follow=True,
    )

    assert flashed(response) == ["Imported 1 preset: “MINE”."]
    mine.refresh_from_db()
    assert mine.name == "MINE"
    assert mine.parameters == {"tp-size": [8]}
    assert ParameterPreset.objects.count() == 1


def test_replace_refuses_another_users_preset_and_imports_nothing(signed_in, other_user):
    theirs = make_preset(name="Theirs", parameters={"tp-size": [1]}, created_by=other_user)
    content = bundle({"name": "Fresh", "parameters": {"a": [1]}}, {"name": "Theirs", "parameters": {"a": [2]}})

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "replace"})

    assert response.status_code == 422
    [error] = form_errors(response)
    assert 'Only the creator of "Theirs" or staff can replace it' in error
    assert "Nothing was imported." in error
    theirs.refresh_from_db()
    assert theirs.parameters == {"tp-size": [1]}
    assert not ParameterPreset.objects.filter(name="Fresh").exists()


def test_replace_never_touches_a_system_preset(client, superuser, system_presets):
    client.force_login(superuser)

    response = client.post(
        IMPORT, {"file": upload(document(name="Balanced", parameters={"a": [1]})), "on_conflict": "replace"}
    )

    assert response.status_code == 422
    [error] = form_errors(response)
    assert '"Balanced" is a system preset and is never replaced' in error
    assert "Nothing was imported." in error
    system_presets["Balanced"].refresh_from_db()
    assert system_presets["Balanced"].parameters["tp-size"] == [1, 2]


def test_a_refused_replace_reads_as_two_sentences(signed_in, system_presets):
    response = signed_in.post(
        IMPORT, {"file": upload(document(name="Balanced", parameters={"a": [1]})), "on_conflict": "replace"}
    )

    assert form_errors(response) == ['"Balanced" is a system preset and is never replaced. Nothing was imported.']


def test_a_file_over_one_mebibyte_is_refused(signed_in):
    padding = "x" * MiB
    content = json.dumps(document(description=padding))

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "fail"})

    assert response.status_code == 422
    row = page(response).by_id("row-file")
    assert [item.text for item in row.find_all("li")] == [
        f"The file is {len(content.encode()):,} bytes; at most 1 MiB (1,048,576 bytes) is accepted."
    ]
    assert not ParameterPreset.objects.exists()


def test_a_file_of_exactly_one_mebibyte_is_read(signed_in):
    content = json.dumps(document(description=""))
    content = content[:-2] + " " * (MiB - len(content)) + content[-2:]
    assert len(content.encode()) == MiB

    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "fail"})

    assert response.status_code == 302
    assert ParameterPreset.objects.filter(name="Imported").exists()


@pytest.mark.parametrize(
    ("data", "row", "error"),
    [
        ({"on_conflict": "fail"}, "row-file", "This field is required."),
        (
            {"file": "not-a-file", "on_conflict": "fail"},
            "row-file",
            "This field is required.",
        ),
        (
            {"on_conflict": "merge"},
            "row-on_conflict",
            "Select a valid choice. merge is not one of the available choices.",
        ),
    ],
    ids=["no-file", "text-instead-of-a-file", "unknown-conflict-choice"],
)
def test_an_incomplete_import_form_shows_the_error_in_its_row(signed_in, data, row, error):
    if row == "row-on_conflict":
        data = {**data, "file": upload(document())}

    response = signed_in.post(IMPORT, data)

    assert response.status_code == 422
    assert error in [item.text for item in page(response).by_id(row).find_all("li")]
    assert not ParameterPreset.objects.exists()


def test_an_empty_file_is_refused(signed_in):
    response = signed_in.post(IMPORT, {"file": upload(b""), "on_conflict": "fail"})

    assert response.status_code == 422
    assert "The submitted file is empty." in [item.text for item in page(response).by_id("row-file").find_all("li")]


# Exports


def test_export_downloads_the_preset_as_a_document_named_after_it(signed_in, system_presets):
    preset = system_presets["High Throughput"]

    response = signed_in.get(f"/presets/{preset.pk}/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="preset-high-throughput.json"'
    assert json.loads(response.content) == {
        "version": "1.0",
        "preset": {
            "name": "High Throughput",
            "description": preset.description,
            "category": "performance",
            "runtime": "sglang",
            "parameters": {
                "tp-size": [2, 4],
                "mem-fraction-static": [0.9],
                "schedule-policy": ["fcfs"],
                "enable-mixed-chunk": [True],
            },
            "metadata": preset.metadata,
        },
    }


def test_export_of_another_users_preset_is_allowed(signed_in, other_user):
    theirs = make_preset(name="Theirs", created_by=other_user)

    response = signed_in.get(f"/presets/{theirs.pk}/export/")

    assert response.status_code == 200
    assert json.loads(response.content)["preset"]["name"] == "Theirs"


def test_export_of_an_unknown_preset_is_404(signed_in):
    assert signed_in.get("/presets/987654/export/").status_code == 404


def test_an_exported_preset_imports_again_under_a_new_name(signed_in, user):
    original = make_preset(name="Round trip", runtime="vllm", metadata={"tags": ["x"]}, created_by=user)
    exported = signed_in.get(f"/presets/{original.pk}/export/").content

    response = signed_in.post(
        IMPORT, {"file": upload(exported, "preset-round-trip.json"), "on_conflict": "rename"}, follow=True
    )

    assert flashed(response) == ["Imported 1 preset: “Round trip (imported)”."]
    copy = ParameterPreset.objects.get(name="Round trip (imported)")
    assert copy.content() | {"name": "Round trip"} == original.content()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, sorted([*system_preset_names(), "Mine"])),
        (
            {"category": "performance"},
            ["High Throughput", "High Throughput (vLLM)", "Low Latency", "Low Latency (vLLM)"],
        ),
        ({"is_system": "false"}, ["Mine"]),
        ({"search": "LATENCY", "runtime": "sglang"}, ["Low Latency"]),
        ({"runtime": "tensorrt"}, []),
    ],
    ids=["everything", "category", "user-only", "search-and-runtime", "bad-filter-exports-nothing"],
)
def test_export_shown_downloads_exactly_the_filtered_presets(signed_in, system_presets, user, query, expected):
    make_preset(name="Mine", category="custom", runtime="vllm", created_by=user)

    response = signed_in.get(EXPORT_SHOWN, query)

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="presets.json"'
    body = json.loads(response.content)
    assert body["version"] == "1.0"
    assert [preset["name"] for preset in body["presets"]] == expected
    assert all(
        set(preset) == {"name", "description", "category", "runtime", "parameters", "metadata"}
        for preset in body["presets"]
    )


def test_the_export_shown_link_downloads_what_the_list_shows(signed_in, system_presets):
    listed = signed_in.get("/presets/", {"category": "performance"})
    link = next(a for a in page(listed).find_all("a") if a.text == "Export shown").attrs["href"]

    body = json.loads(signed_in.get(link).content)

    shown = [
        row.find("a").text for row in page(listed).find("table", class_="presets-table").find("tbody").find_all("tr")
    ]
    assert [preset["name"] for preset in body["presets"]] == shown
    assert shown == ["High Throughput", "High Throughput (vLLM)", "Low Latency", "Low Latency (vLLM)"]


# After a refusal the chosen document is kept: a browser never fills a file input again


def kept(response) -> dict[str, str]:
    form = page(response).find("main").find("form")
    return {field: form.find("input", name=field).attrs.get("value", "") for field in ("document", "document_name")}


def file_help(response) -> str:
    return page(response).by_id("id_file_helptext").text


def test_a_name_clash_keeps_the_document_so_rename_needs_no_new_choice_of_the_file(signed_in, system_presets):
    content = json.dumps(bundle({"name": "balanced", "parameters": {"a": [1]}}, {"name": "Fresh", "parameters": {}}))
    content = content.replace('"parameters": {}', '"parameters": {"a": [2]}')

    refused = signed_in.post(IMPORT, {"file": upload(content, "mine.json"), "on_conflict": "fail"})
    again = signed_in.post(IMPORT, {**kept(refused), "on_conflict": "rename"}, follow=True)

    assert refused.status_code == 422
    assert kept(refused) == {"document": content, "document_name": "mine.json"}
    assert file_help(refused) == (
        f"Still chosen: “mine.json” ({len(content):,} bytes), kept from your last try. Import again to use it, "
        "or choose another file."
    )
    assert flashed(again) == ["Imported 2 presets: “balanced (imported)”, “Fresh”."]


def test_a_bad_document_is_kept_and_a_newly_chosen_file_replaces_it(signed_in):
    refused = signed_in.post(IMPORT, {"file": upload(document(parameters={"tp-size": [None]})), "on_conflict": "fail"})
    fixed = signed_in.post(
        IMPORT, {**kept(refused), "file": upload(document(name="Fixed")), "on_conflict": "fail"}, follow=True
    )

    assert problems(refused) == ["preset.parameters.tp-size[0]: null is not allowed"]
    assert "Still chosen: “presets.json”" in file_help(refused)
    assert flashed(fixed) == ["Imported 1 preset: “Fixed”."]
    assert not ParameterPreset.objects.filter(name="Imported").exists()


def test_a_kept_document_is_checked_again_and_kept_again(signed_in):
    refused = signed_in.post(IMPORT, {"file": upload(b"{not json"), "on_conflict": "fail"})
    again = signed_in.post(IMPORT, {**kept(refused), "on_conflict": "fail"})

    assert again.status_code == 422
    assert problems(again) == problems(refused)
    assert kept(again) == {"document": "{not json", "document_name": "presets.json"}


def test_a_kept_document_over_one_mebibyte_is_refused(signed_in):
    response = signed_in.post(IMPORT, {"document": "x" * (MiB + 1), "document_name": "big.json", "on_conflict": "fail"})

    assert response.status_code == 422
    assert [item.text for item in page(response).by_id("row-file").find_all("li")] == [
        "The file is 1,048,577 bytes; at most 1 MiB (1,048,576 bytes) is accepted."
    ]


def test_a_document_that_is_not_text_asks_for_the_file_again(signed_in):
    response = signed_in.post(IMPORT, {"file": upload(b"\xff\xfe{}"), "on_conflict": "fail"})

    assert response.status_code == 422
    assert kept(response) == {"document": "", "document_name": ""}
    assert file_help(response) == "Choose the file again to import it, once it is fixed."


# The import page refuses what a save would: values the preset's engine refuses, or every engine for any engine


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            document(runtime="sglang", parameters={"mem-fraction-static": [0.8, 9]}),
            ["preset.parameters.mem-fraction-static[1]: 9 is outside (0, 1]"],
            id="engine-preset",
        ),
        pytest.param(
            bundle(
                {"name": "Fine", "parameters": {"tp-size": [1]}},
                {"name": "Any", "runtime": None, "parameters": {"tp-szie": [2], "mem-fraction-static": ["abc"]}},
            ),
            ['presets[1].parameters.mem-fraction-static[0]: "abc" is not a number'],
            id="any-engine-preset-in-a-bundle",
        ),
    ],
)
def test_the_import_page_refuses_values_the_engines_refuse_and_creates_nothing(signed_in, content, expected):
    response = signed_in.post(IMPORT, {"file": upload(content), "on_conflict": "fail"})

    assert response.status_code == 422
    assert problems(response) == expected
    assert not ParameterPreset.objects.filter(name__in=["Imported", "Fine", "Any"]).exists()


def test_the_import_page_imports_an_any_engine_preset_with_only_an_unknown_flag(signed_in):
    response = signed_in.post(IMPORT, {"file": upload(document(parameters={"tp-szie": [2]})), "on_conflict": "fail"})

    assert response.status_code == 302
    assert ParameterPreset.objects.get(name="Imported").parameters == {"tp-szie": [2]}
