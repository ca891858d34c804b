"""The Presets pages: list, detail, create, edit, preview, duplicate and delete, without and with htmx."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from presets.models import SYSTEM_READ_ONLY, ParameterPreset
from tests.factories import make_preset, system_preset_names
from tests.html import Element, parse

pytestmark = pytest.mark.django_db

LIST = "/presets/"
CREATE = "/presets/new/"
PREVIEW = "/presets/preview/"
HTMX = {"HX-Request": "true"}


def edit_url(preset: ParameterPreset) -> str:
    return f"/presets/{preset.pk}/edit/"


def delete_url(preset: ParameterPreset) -> str:
    return f"/presets/{preset.pk}/delete/"


def duplicate_url(preset: ParameterPreset) -> str:
    return f"/presets/{preset.pk}/duplicate/"


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


def row_errors(response, field: str) -> list[str]:
    """The errors shown inside a field's row of the form."""
    row = page(response).by_id(f"row-{field}")
    return [item.text for item in row.find_all("li")]


def summary(response) -> Element | None:
    return page(response).find("div", class_="error-summary")


def list_rows(response) -> dict[str, Element]:
    """The rows of the presets table by preset name."""
    table = page(response).find("table", class_="presets-table")
    if table is None:
        return {}
    return {row.find("td").find("a").text: row for row in table.find("tbody").find_all("tr")}


def row_actions(row: Element) -> list[str]:
    cell = row.find("td", class_="row-actions")
    actions = [link.text.split()[0] for link in cell.find_all("a")]
    actions += [button.text.split()[0] for button in cell.find_all("button")]
    return sorted(actions)


def form_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "My grid",
        "description": "",
        "category": "custom",
        "runtime": "",
        "parameters": '{"tp-size": [1, 2]}',
        "metadata": "{}",
    }
    data.update(overrides)
    return data


def edit_data(preset: ParameterPreset, version: str, **overrides: str) -> dict[str, str]:
    """What the edit form sends back unchanged, plus ``overrides``."""
    data = {
        "name": preset.name,
        "description": preset.description,
        "category": preset.category,
        "runtime": preset.runtime,
        "parameters": json.dumps(preset.parameters),
        "metadata": json.dumps(preset.metadata),
        "version": version,
    }
    data.update(overrides)
    return data


def opened_version(response) -> str:
    """The hidden ``version`` of an edit form, as the browser would send it back."""
    return page(response).find("input", name="version").attrs["value"]


@pytest.fixture
def own_preset(user) -> ParameterPreset:
    return make_preset(
        name="Mine",
        description="My own grid",
        category="memory",
        runtime="sglang",
        parameters={"tp-size": [1, 2], "schedule-policy": ["fcfs"]},
        metadata={"author": "ada"},
        created_by=user,
    )


@pytest.fixture
def others_preset(other_user) -> ParameterPreset:
    return make_preset(name="Grace's grid", parameters={"tp-size": [4]}, created_by=other_user)


# The list


def test_list_shows_each_preset_with_its_columns(signed_in, system_presets, user):
    make_preset(name="Any engine grid", category="", runtime="", parameters={"max-num-seqs": [8]}, created_by=user)

    response = signed_in.get(LIST)

    assert response.status_code == 200
    rows = list_rows(response)
    assert set(rows) == {*system_presets, "Any engine grid"}
    balanced = system_presets["Balanced"]
    cells = rows["Balanced"].find_all("td")
    assert cells[0].find("a").attrs["href"] == f"/presets/{balanced.pk}/"
    assert cells[0].find("span", class_="badge").text == "System"
    assert [cell.text for cell in cells[1:5]] == [
        "general",
        "SGLang",
        "tp-size 1, 2 · mem-fraction-static 0.85 · schedule-policy fcfs, lpm",
        "4",
    ]
    assert cells[5].find("time").attrs["datetime"] == balanced.updated_at.isoformat()
    any_cells = rows["Any engine grid"].find_all("td")
    assert any_cells[0].find("span", class_="badge") is None
    assert [cell.text for cell in any_cells[1:3]] == ["—", "Any engine"]
    assert f"{len(system_presets) + 1} presets" in page(response).by_id("preset-table").text


def test_list_offers_edit_and_delete_only_on_the_users_own_presets(
    signed_in, system_presets, own_preset, others_preset
):
    rows = list_rows(signed_in.get(LIST))

    assert row_actions(rows["Mine"]) == ["Delete", "Duplicate", "Edit", "Export"]
    assert row_actions(rows["Grace's grid"]) == ["Duplicate", "Export"]
    assert row_actions(rows["Balanced"]) == ["Duplicate", "Export"]


def test_staff_see_edit_and_delete_on_other_users_presets_but_never_on_system_ones(
    client, staff_user, system_presets, others_preset
):
    client.force_login(staff_user)

    rows = list_rows(client.get(LIST))

    assert row_actions(rows["Grace's grid"]) == ["Delete", "Duplicate", "Edit", "Export"]
    assert row_actions(rows["Balanced"]) == ["Duplicate", "Export"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"category": "performance"},
            {"High Throughput", "Low Latency", "High Throughput (vLLM)", "Low Latency (vLLM)"},
        ),
        ({"runtime": "vllm"}, {"vLLM grid", "Any engine grid", *system_preset_names("vllm")}),
        ({"runtime": "any"}, {"Any engine grid"}),
        ({"is_system": "true"}, set(system_preset_names())),
        ({"is_system": "false"}, {"vLLM grid", "Any engine grid"}),
        ({"search": "BAL"}, {"Balanced", "Balanced (vLLM)"}),
        ({"search": "paged attention"}, {"vLLM grid"}),
        ({"category": "performance", "search": "latency"}, {"Low Latency", "Low Latency (vLLM)"}),
        ({"search": "nothing like this"}, set()),
    ],
    ids=[
        "category",
        "vllm-includes-any-engine",
        "any-engine-only",
        "system",
        "user",
        "search-name-ignores-case",
        "search-description",
        "filters-combine",
        "no-match",
    ],
)
def test_list_filters_narrow_the_table(signed_in, system_presets, user, query, expected):
    make_preset(name="vLLM grid", runtime="vllm", description="Tuned for Paged Attention", created_by=user)
    make_preset(name="Any engine grid", runtime="", created_by=user)

    response = signed_in.get(LIST, query)

    assert response.status_code == 200
    assert set(list_rows(response)) == expected
    if not expected:
        assert "No preset matches these filters." in page(response).by_id("preset-table").text


def test_list_keeps_the_chosen_filters_selected_in_the_form(signed_in, system_presets):
    document = page(signed_in.get(LIST, {"category": "memory", "runtime": "vllm", "is_system": "true", "search": "x"}))

    def selected(select_id: str) -> str:
        return document.by_id(select_id).find("option", selected="").attrs["value"]

    assert selected("id_category") == "memory"
    assert selected("id_runtime") == "vllm"
    assert selected("id_is_system") == "true"
    assert document.by_id("id_search").attrs["value"] == "x"


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"runtime": "tensorrt"}, "runtime: Select a valid choice. tensorrt is not one of the available choices."),
        ({"search": "x" * 201}, "search: Ensure this value has at most 200 characters (it has 201)."),
    ],
    ids=["unknown-runtime", "search-too-long"],
)
def test_a_bad_filter_value_shows_an_error_instead_of_a_server_error(signed_in, system_presets, query, error):
    response = signed_in.get(LIST, query)

    assert response.status_code == 200
    table = page(response).by_id("preset-table")
    assert "Some filters are not valid:" in table.text
    assert error in [item.text for item in table.find_all("li")]
    assert list_rows(response) == {}


def test_a_page_number_out_of_range_shows_the_last_page(signed_in, system_presets):
    response = signed_in.get(LIST, {"page": "99"})

    assert response.status_code == 200
    assert set(list_rows(response)) == set(system_presets)  # they all fit on one page


def test_htmx_list_request_answers_with_only_the_table_fragment(signed_in, system_presets):
    response = signed_in.get(LIST, {"search": "bal"}, headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="preset-table"')
    assert "<html" not in html
    assert "<h1" not in html
    assert set(list_rows(response)) == {"Balanced", "Balanced (vLLM)"}
    assert "HX-Request" in response["Vary"]


def test_list_page_without_htmx_is_the_whole_page(signed_in, system_presets):
    response = signed_in.get(LIST, {"search": "bal"})

    html = response.content.decode()
    assert "<html" in html
    assert page(response).find("h1").text == "Presets"
    assert set(list_rows(response)) == {"Balanced", "Balanced (vLLM)"}
    assert "HX-Request" in response["Vary"]


def test_list_shows_50_a_page_with_links_that_keep_the_filters(signed_in, user):
    ParameterPreset.objects.bulk_create(
        ParameterPreset(
            name=f"Memory {number:03}",
            name_key=f"memory {number:03}",
            category="memory",
            parameters={"tp-size": [1]},
            created_by=user,
        )
        for number in range(60)
    )
    make_preset(name="Elsewhere", category="performance")

    first = signed_in.get(LIST, {"category": "memory"})

    assert len(list_rows(first)) == 50
    assert "60 presets" in page(first).by_id("preset-table").text
    pagination = page(first).find("nav", class_="pagination")
    assert "Page 1 of 2" in pagination.text
    next_link = pagination.find("a")
    assert next_link.text == "Next"
    assert next_link.attrs["href"] == "?category=memory&page=2"
    assert next_link.attrs["hx-get"] == "?category=memory&page=2"

    second = signed_in.get(LIST, {"category": "memory", "page": "2"})

    assert sorted(list_rows(second)) == [f"Memory {number:03}" for number in range(50, 60)]
    links = page(second).find("nav", class_="pagination").find_all("a")
    assert [(link.text, link.attrs["href"]) for link in links] == [("Previous", "?category=memory&page=1")]


@pytest.mark.parametrize("count", [10, 1000], ids=["10-presets", "1000-presets"])
def test_list_runs_the_same_few_queries_however_many_presets_there_are(
    signed_in, user, other_user, django_assert_num_queries, count
):
    ParameterPreset.objects.bulk_create(
        ParameterPreset(
            name=f"Preset {number:04}",
            name_key=f"preset {number:04}",
            category=["memory", "performance", f"team {number % 7}"][number % 3],
            runtime=["", "sglang", "vllm"][number % 3],
            parameters={"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]},
            created_by=[user, other_user, None][number % 3],
        )
        for number in range(count)
    )

    # Session, user, count, the page of rows with their creators, the category choices.
    with django_assert_num_queries(5):
        response = signed_in.get(LIST)

    assert response.status_code == 200
    assert len(list_rows(response)) == min(count, 50)


def test_export_shown_link_carries_the_current_filters(signed_in, system_presets):
    response = signed_in.get(LIST, {"category": "performance", "search": "high", "page": "1"})

    export = next(link for link in page(response).find_all("a") if link.text == "Export shown")
    assert "download" in export.attrs
    assert export.attrs["href"] == "/presets/export/?category=performance&search=high"


# The detail page


def test_detail_shows_every_field_the_parameters_and_the_actions(signed_in, own_preset, user):
    response = signed_in.get(f"/presets/{own_preset.pk}/")

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Mine"
    assert document.find("p", class_="lead").text == "My own grid"
    facts = document.find("dl", class_="facts")
    assert dict(
        zip([term.text for term in facts.find_all("dt")], [value.text for value in facts.find_all("dd")], strict=True)
    ) == {
        "Category": "memory",
        "Runtime": "SGLang",
        "Combinations": "2",
        "Made by": "ada",
        "Created": own_preset.created_at.strftime("%Y-%m-%d %H:%M"),
        "Updated": own_preset.updated_at.strftime("%Y-%m-%d %H:%M"),
    }
    grid = document.find("table", class_="grid-table")
    assert [
        (row.find("th").text, [value.text for value in row.find_all("span")]) for row in grid.find_all("tr")[1:]
    ] == [
        ("--tp-size", ["1", "2"]),
        ("--schedule-policy", ["fcfs"]),
    ]
    assert json.loads(document.find("pre", class_="json").raw_text) == {"author": "ada"}
    actions = document.find("div", class_="actions")
    links = {link.text: link.attrs["href"] for link in actions.find_all("a")}
    assert links == {
        "Use in a new task": f"/tasks/new/?presets={own_preset.pk}",
        "Edit": f"/presets/{own_preset.pk}/edit/",
        "Export": f"/presets/{own_preset.pk}/export/",
        "History (v1)": f"/presets/{own_preset.pk}/history/",
        "Delete": f"/presets/{own_preset.pk}/delete/",
    }
    assert actions.find("form").attrs["action"] == f"/presets/{own_preset.pk}/duplicate/"
    assert actions.find("button").text == "Duplicate"


def test_detail_of_a_system_preset_says_it_is_read_only_and_offers_no_edit_or_delete(signed_in, system_presets):
    preset = system_presets["Balanced"]

    document = page(signed_in.get(f"/presets/{preset.pk}/"))

    assert document.find("h1").find("span", class_="badge").text == "System"
    assert "System presets are read-only; duplicate it to customize." in document.find("p", class_="note").text
    facts = document.find("dl", class_="facts")
    assert "system" in [value.text for value in facts.find_all("dd")]
    links = [link.text for link in document.find("div", class_="actions").find_all("a")]
    assert links == ["Use in a new task", "Export", "History (v1)"]
    assert document.find("div", class_="actions").find("button").text == "Duplicate"


def test_detail_of_another_users_preset_offers_no_edit_or_delete(signed_in, others_preset):
    document = page(signed_in.get(f"/presets/{others_preset.pk}/"))

    links = [link.text for link in document.find("div", class_="actions").find_all("a")]
    assert links == ["Use in a new task", "Export", "History (v1)"]
    assert "grace" in document.find("dl", class_="facts").text


def test_detail_without_metadata_says_none(signed_in, user):
    preset = make_preset(name="Bare", metadata={}, created_by=user)

    document = page(signed_in.get(f"/presets/{preset.pk}/"))

    assert document.find("pre", class_="json") is None
    metadata = next(section for section in document.find_all("section") if section.find("h2").text == "Metadata")
    assert metadata.find("p").text == "None."


def test_detail_of_an_unknown_preset_is_404(signed_in):
    assert signed_in.get("/presets/987654/").status_code == 404


# Creating a preset


def test_create_form_offers_every_field_with_runtime_choices_and_category_suggestions(signed_in):
    response = signed_in.get(CREATE)

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Create preset"
    for field in ["name", "description", "category", "runtime", "parameters", "metadata"]:
        assert document.by_id(f"row-{field}")
    runtime = document.find("select", name="runtime")
    assert [(option.attrs["value"], option.text) for option in runtime.find_all("option")] == [
        ("", "Any engine"),
        ("sglang", "SGLang"),
        ("vllm", "vLLM"),
    ]
    assert document.find("input", name="category").attrs["list"] == "category-suggestions"
    suggestions = document.by_id("category-suggestions")
    assert [option.attrs["value"] for option in suggestions.find_all("option")] == [
        "memory",
        "performance",
        "general",
        "custom",
    ]
    parameters = document.find("textarea", name="parameters")
    assert json.loads(parameters.raw_text) == {"tp-size": [1, 2]}
    assert parameters.attrs["hx-post"] == PREVIEW
    assert "Valid: 2 combinations." in document.by_id("parameters-preview").text


def test_create_stores_the_normalised_preset_and_redirects_to_it(signed_in, user):
    response = signed_in.post(
        CREATE,
        form_data(
            name="  Long context ",
            description="For 128k prompts",
            category="memory",
            runtime="vllm",
            parameters='{"--tp_size": 2, "max-num-seqs": [8, 16, 8]}',
            metadata='{"author": "ada", "tags": ["memory"]}',
        ),
    )

    preset = ParameterPreset.objects.get(name="Long context")
    assert response.status_code == 302
    assert response["Location"] == f"/presets/{preset.pk}/"
    assert preset.description == "For 128k prompts"
    assert preset.category == "memory"
    assert preset.runtime == "vllm"
    assert preset.parameters == {"tp-size": [2], "max-num-seqs": [8, 16]}
    assert preset.metadata == {"author": "ada", "tags": ["memory"]}
    assert preset.created_by == user
    assert preset.is_system is False
    assert flashed(signed_in.get(response["Location"])) == ["Created preset “Long context”."]


def test_create_with_empty_metadata_stores_an_empty_object(signed_in):
    response = signed_in.post(CREATE, form_data(metadata=""))

    assert response.status_code == 302
    assert ParameterPreset.objects.get(name="My grid").metadata == {}


def test_create_with_bad_parameters_is_refused_with_the_error_in_its_row_and_the_text_kept(signed_in):
    typed = '{"tp-size": [1, null],\n "schedule_policy": []}'

    response = signed_in.post(CREATE, form_data(parameters=typed))

    assert response.status_code == 422
    assert not ParameterPreset.objects.exists()
    document = page(response)
    top = document.find("form", class_="preset-form").find("div")
    assert top.attrs["class"] == "error-summary"
    assert top.text == "Please correct the error below."
    assert row_errors(response, "parameters") == [
        "tp-size[1]: null is not allowed",
        "schedule_policy: an empty list is not allowed; give at least one value",
    ]
    assert "has-errors" in document.by_id("row-parameters").attrs["class"]
    assert document.find("textarea", name="parameters").raw_text.strip() == typed
    assert document.find("input", name="name").attrs["value"] == "My grid"
    assert "tp-size[1]: null is not allowed" in document.by_id("parameters-preview").text


def test_create_with_a_json_syntax_error_says_the_line_and_column(signed_in):
    typed = '{\n  "tp-size": [1, 2],\n}'

    response = signed_in.post(CREATE, form_data(parameters=typed))

    assert response.status_code == 422
    assert row_errors(response, "parameters") == [
        "Not valid JSON: Expecting property name enclosed in double quotes (line 3, column 1)."
    ]
    assert page(response).find("textarea", name="parameters").raw_text.strip() == typed
    assert not ParameterPreset.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "   ", "This field is required."),
        ("parameters", "", 'Give at least one parameter, e.g. {"tp-size": [1, 2]}.'),
        ("parameters", "{}", "at least one parameter is required"),
        ("parameters", "[1, 2]", "expected an object mapping flag names to lists of values, got a list"),
        ("metadata", '["memory"]', "expected an object, got a list"),
        ("runtime", "tensorrt", "Select a valid choice. tensorrt is not one of the available choices."),
    ],
    ids=["blank-name", "no-parameters", "empty-parameters", "parameters-not-an-object", "metadata-list", "runtime"],
)
def test_create_with_a_bad_field_shows_the_error_in_that_fields_row(signed_in, field, value, error):
    response = signed_in.post(CREATE, form_data(**{field: value}))

    assert response.status_code == 422
    assert error in row_errors(response, field)
    assert summary(response).text == "Please correct the error below."
    assert not ParameterPreset.objects.exists()


def test_create_with_several_bad_fields_says_errors_in_the_summary(signed_in):
    response = signed_in.post(CREATE, form_data(name="", parameters="nope"))

    assert response.status_code == 422
    assert summary(response).text == "Please correct the errors below."
    assert row_errors(response, "name") == ["This field is required."]
    assert len(row_errors(response, "parameters")) == 1


def test_create_with_a_name_taken_in_another_case_is_refused_in_the_name_row(signed_in, system_presets):
    response = signed_in.post(CREATE, form_data(name="balanced"))

    assert response.status_code == 422
    assert row_errors(response, "name") == ['A preset named "Balanced" already exists.']
    assert ParameterPreset.objects.count() == len(system_presets)


# The live parameters check


def test_preview_shows_each_problem_in_the_fragment(signed_in):
    response = signed_in.post(PREVIEW, {"parameters": '{"tp-size": [1, null], "--mem_fraction": {}}'}, headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="parameters-preview"')
    assert "<html" not in html
    fragment = page(response).by_id("parameters-preview")
    assert fragment.find("p").text == "Not valid yet:"
    assert [item.text for item in fragment.find_all("li")] == [
        "tp-size[1]: null is not allowed",
        "--mem_fraction: an object is not allowed; each value must be a string, number or boolean",
    ]


def test_preview_of_a_valid_grid_counts_the_combinations_and_shows_the_normalised_flags(signed_in):
    response = signed_in.post(
        PREVIEW, {"parameters": '{"--tp_size": [1, 2], "schedule-policy": ["fcfs", "lpm"]}'}, headers=HTMX
    )

    assert response.status_code == 200
    fragment = page(response).by_id("parameters-preview")
    assert fragment.find("p").text == "Valid: 4 combinations."
    assert [row.find("th").text for row in fragment.find("tbody").find_all("tr")] == [
        "--tp-size",
        "--schedule-policy",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"tp-size": [1,', "Not valid JSON: Expecting value (line 1, column 16)."),
        ("   ", "Type the parameters as a JSON object."),
    ],
    ids=["syntax-error", "empty"],
)
def test_preview_explains_text_that_is_not_a_grid(signed_in, text, problem):
    response = signed_in.post(PREVIEW, {"parameters": text}, headers=HTMX)

    assert response.status_code == 200
    assert [item.text for item in page(response).by_id("parameters-preview").find_all("li")] == [problem]


def test_preview_without_htmx_still_answers_with_the_fragment_and_writes_nothing(signed_in):
    response = signed_in.post(PREVIEW, {"parameters": '{"tp-size": [1]}'})

    assert response.status_code == 200
    assert "Valid: 1 combination." in page(response).by_id("parameters-preview").text
    assert not ParameterPreset.objects.exists()


def test_preview_only_answers_post(signed_in):
    assert signed_in.get(PREVIEW).status_code == 405


# Editing a preset


def test_edit_form_shows_the_stored_values_and_the_version_it_was_opened_at(signed_in, own_preset):
    response = signed_in.get(edit_url(own_preset))

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Edit “Mine”"
    assert document.find("input", name="name").attrs["value"] == "Mine"
    assert document.find("select", name="runtime").find("option", selected="").attrs["value"] == "sglang"
    assert json.loads(document.find("textarea", name="parameters").raw_text) == own_preset.parameters
    assert json.loads(document.find("textarea", name="metadata").raw_text) == own_preset.metadata
    assert opened_version(response) == own_preset.updated_at.isoformat()


def test_edit_saves_the_change_and_redirects_to_the_detail_page(signed_in, own_preset, user):
    version = opened_version(signed_in.get(edit_url(own_preset)))

    response = signed_in.post(
        edit_url(own_preset),
        edit_data(own_preset, version, name="Mine, tuned", runtime="", parameters='{"tp_size": [4]}'),
    )

    assert response.status_code == 302
    assert response["Location"] == f"/presets/{own_preset.pk}/"
    own_preset.refresh_from_db()
    assert own_preset.name == "Mine, tuned"
    assert own_preset.runtime == ""
    assert own_preset.parameters == {"tp-size": [4]}
    assert own_preset.created_by == user
    assert flashed(signed_in.get(response["Location"])) == ["Saved preset “Mine, tuned”."]


def test_edit_may_change_only_the_case_of_the_name(signed_in, own_preset):
    version = opened_version(signed_in.get(edit_url(own_preset)))

    response = signed_in.post(edit_url(own_preset), edit_data(own_preset, version, name="MINE"))

    assert response.status_code == 302
    own_preset.refresh_from_db()
    assert own_preset.name == "MINE"


def test_edit_to_a_name_another_preset_has_is_refused_in_the_name_row(signed_in, own_preset, others_preset):
    version = opened_version(signed_in.get(edit_url(own_preset)))

    response = signed_in.post(edit_url(own_preset), edit_data(own_preset, version, name="grace's GRID"))

    assert response.status_code == 422
    assert row_errors(response, "name") == ['A preset named "Grace\'s grid" already exists.']
    own_preset.refresh_from_db()
    assert own_preset.name == "Mine"


def test_a_refused_edit_still_names_the_stored_preset_in_its_heading(signed_in, own_preset, others_preset):
    version = opened_version(signed_in.get(edit_url(own_preset)))

    response = signed_in.post(edit_url(own_preset), edit_data(own_preset, version, name="Grace's grid"))

    assert response.status_code == 422
    assert page(response).find("h1").text == "Edit “Mine”"


def test_edit_with_bad_parameters_keeps_the_text_and_changes_nothing(signed_in, own_preset):
    version = opened_version(signed_in.get(edit_url(own_preset)))
    typed = '{"tp-size": [1, null]}'

    response = signed_in.post(edit_url(own_preset), edit_data(own_preset, version, parameters=typed))

    assert response.status_code == 422
    assert row_errors(response, "parameters") == ["tp-size[1]: null is not allowed"]
    assert page(response).find("textarea", name="parameters").raw_text.strip() == typed
    own_preset.refresh_from_db()
    assert own_preset.parameters == {"tp-size": [1, 2], "schedule-policy": ["fcfs"]}


def test_a_save_over_someone_elses_newer_save_is_refused_until_sent_again(signed_in, own_preset):
    opened = opened_version(signed_in.get(edit_url(own_preset)))
    first = signed_in.post(edit_url(own_preset), edit_data(own_preset, opened, description="First change"))
    assert first.status_code == 302

    stale = signed_in.post(
        edit_url(own_preset), edit_data(own_preset, opened, description="Second change", parameters='{"tp-size": [8]}')
    )

    assert stale.status_code == 422
    document = page(stale)
    nonfield = [item.text for item in summary(stale).find("ul", class_="nonfield").find_all("li")]
    assert len(nonfield) == 1
    assert nonfield[0].startswith("Someone else saved this preset since you opened it.")
    assert document.find("textarea", name="description").raw_text.strip() == "Second change"
    assert json.loads(document.find("textarea", name="parameters").raw_text) == {"tp-size": [8]}
    own_preset.refresh_from_db()
    assert own_preset.description == "First change"
    assert own_preset.parameters == {"tp-size": [1, 2], "schedule-policy": ["fcfs"]}
    current = opened_version(stale)
    assert current == own_preset.updated_at.isoformat()
    assert current != opened

    again = signed_in.post(
        edit_url(own_preset), edit_data(own_preset, current, description="Second change", parameters='{"tp-size": [8]}')
    )

    assert again.status_code == 302
    own_preset.refresh_from_db()
    assert own_preset.description == "Second change"
    assert own_preset.parameters == {"tp-size": [8]}


def test_staff_can_edit_another_users_preset_which_stays_theirs(client, staff_user, others_preset, other_user):
    client.force_login(staff_user)
    version = opened_version(client.get(edit_url(others_preset)))

    response = client.post(edit_url(others_preset), edit_data(others_preset, version, category="performance"))

    assert response.status_code == 302
    others_preset.refresh_from_db()
    assert others_preset.category == "performance"
    assert others_preset.created_by == other_user


@pytest.mark.parametrize("method", ["get", "post"])
def test_editing_another_users_preset_is_forbidden_and_changes_nothing(signed_in, others_preset, method):
    data = edit_data(others_preset, others_preset.updated_at.isoformat(), name="Taken over")

    response = getattr(signed_in, method)(edit_url(others_preset), data if method == "post" else None)

    assert response.status_code == 403
    assert "Only the preset's creator or staff can change it." in page(response).find("main").text
    others_preset.refresh_from_db()
    assert others_preset.name == "Grace's grid"


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("who", ["user", "staff_user", "superuser"])
def test_editing_a_system_preset_is_forbidden_for_everyone(client, system_presets, request, who, method):
    client.force_login(request.getfixturevalue(who))
    preset = system_presets["Balanced"]
    data = edit_data(preset, preset.updated_at.isoformat(), description="Changed")

    response = getattr(client, method)(edit_url(preset), data if method == "post" else None)

    assert response.status_code == 403
    assert SYSTEM_READ_ONLY in page(response).find("main").text
    preset.refresh_from_db()
    assert preset.description != "Changed"


def test_editing_an_unknown_preset_is_404(signed_in):
    assert signed_in.get("/presets/987654/edit/").status_code == 404
    assert signed_in.post("/presets/987654/edit/", form_data()).status_code == 404


# Duplicating a preset


def test_duplicate_makes_a_user_copy_and_redirects_to_it(signed_in, system_presets, user):
    original = system_presets["High Throughput"]

    response = signed_in.post(duplicate_url(original))

    copy = ParameterPreset.objects.get(name="High Throughput (copy)")
    assert response.status_code == 302
    assert response["Location"] == f"/presets/{copy.pk}/"
    assert copy.is_system is False
    assert copy.created_by == user
    assert copy.content() | {"name": original.name} == original.content()
    assert flashed(signed_in.get(response["Location"])) == ["Created “High Throughput (copy)”, your own copy to edit."]
    assert signed_in.get(edit_url(copy)).status_code == 200


def test_duplicating_twice_numbers_the_second_copy(signed_in, others_preset):
    signed_in.post(duplicate_url(others_preset))
    signed_in.post(duplicate_url(others_preset))

    assert sorted(ParameterPreset.objects.filter(created_by__username="ada").values_list("name", flat=True)) == [
        "Grace's grid (copy 2)",
        "Grace's grid (copy)",
    ]


def test_duplicate_refuses_get_and_copies_nothing(signed_in, own_preset):
    response = signed_in.get(duplicate_url(own_preset))

    assert response.status_code == 405
    assert ParameterPreset.objects.count() == 1


def test_duplicating_an_unknown_preset_is_404(signed_in):
    assert signed_in.post("/presets/987654/duplicate/").status_code == 404


# Deleting a preset


def test_delete_asks_for_confirmation_first(signed_in, own_preset):
    response = signed_in.get(delete_url(own_preset))

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Delete “Mine”?"
    assert document.find("form").attrs["method"] == "post"
    assert document.find("a", class_="button").attrs["href"] == f"/presets/{own_preset.pk}/"
    assert ParameterPreset.objects.filter(pk=own_preset.pk).exists()


def test_delete_removes_the_preset_and_returns_to_the_list(signed_in, own_preset):
    response = signed_in.post(delete_url(own_preset))

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert not ParameterPreset.objects.filter(pk=own_preset.pk).exists()
    assert flashed(signed_in.get(LIST)) == ["Deleted preset “Mine”."]


def test_delete_with_htmx_answers_with_a_client_redirect_to_the_list(signed_in, own_preset):
    response = signed_in.post(delete_url(own_preset), headers=HTMX)

    assert response.status_code == 200
    assert response["HX-Redirect"] == LIST
    assert not ParameterPreset.objects.filter(pk=own_preset.pk).exists()


def test_staff_can_delete_another_users_preset(client, staff_user, others_preset):
    client.force_login(staff_user)

    response = client.post(delete_url(others_preset))

    assert response.status_code == 302
    assert not ParameterPreset.objects.filter(pk=others_preset.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_deleting_another_users_preset_is_forbidden(signed_in, others_preset, method):
    response = getattr(signed_in, method)(delete_url(others_preset))

    assert response.status_code == 403
    assert ParameterPreset.objects.filter(pk=others_preset.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("who", ["user", "superuser"])
def test_deleting_a_system_preset_is_forbidden_with_the_read_only_message(client, system_presets, request, who, method):
    client.force_login(request.getfixturevalue(who))
    preset = system_presets["Balanced"]

    response = getattr(client, method)(delete_url(preset), headers=HTMX if method == "post" else {})

    assert response.status_code == 403
    assert SYSTEM_READ_ONLY in page(response).find("main").text
    assert "HX-Redirect" not in response
    assert ParameterPreset.objects.filter(pk=preset.pk, is_system=True).exists()


def test_deleting_an_unknown_preset_is_404(signed_in):
    assert signed_in.post("/presets/987654/delete/").status_code == 404


# Signed out


PAGES = [
    ("get", "/presets/"),
    ("get", "/presets/new/"),
    ("post", "/presets/new/"),
    ("get", "/presets/import/"),
    ("get", "/presets/export/"),
    ("post", "/presets/preview/"),
    ("get", "/presets/{pk}/"),
    ("get", "/presets/{pk}/edit/"),
    ("post", "/presets/{pk}/edit/"),
    ("post", "/presets/{pk}/duplicate/"),
    ("get", "/presets/{pk}/delete/"),
    ("post", "/presets/{pk}/delete/"),
    ("get", "/presets/{pk}/export/"),
]


@pytest.mark.parametrize(("method", "url"), PAGES, ids=[f"{method} {url}" for method, url in PAGES])
def test_signed_out_visitors_are_sent_to_log_in_and_change_nothing(client, own_preset, method, url):
    url = url.format(pk=own_preset.pk)
    data = form_data(name="Anonymous") if method == "post" else None

    response = getattr(client, method)(url, data)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"
    assert ParameterPreset.objects.get().content() == {
        "name": "Mine",
        "description": "My own grid",
        "category": "memory",
        "runtime": "sglang",
        "parameters": {"tp-size": [1, 2], "schedule-policy": ["fcfs"]},
        "metadata": {"author": "ada"},
    }


def test_a_deleted_creator_is_shown_as_such(signed_in, other_user, others_preset):
    get_user_model().objects.filter(pk=other_user.pk).delete()

    document = page(signed_in.get(f"/presets/{others_preset.pk}/"))

    assert "a deleted user" in document.find("dl", class_="facts").text


def test_the_preset_forms_json_editors_are_as_tall_as_their_text(signed_in, user):
    # presets.forms.JSONEditor: a line per line and one to type on, at least 4 rows, at most 30.
    preset = make_preset(created_by=user, parameters={"tp-size": [1, 2], "chunked-prefill-size": [4096]})
    many = make_preset(created_by=user, parameters={f"flag-{index}": [index] for index in range(40)})

    def rows(url: str) -> dict[str, int]:
        form = parse(signed_in.get(url).content)
        return {name: int(form.find("textarea", name=name).attrs["rows"]) for name in ("parameters", "metadata")}

    assert rows("/presets/new/") == {"parameters": 4, "metadata": 4}
    assert rows(f"/presets/{preset.pk}/edit/") == {"parameters": 5, "metadata": 4}
    assert rows(f"/presets/{many.pk}/edit/")["parameters"] == 30
