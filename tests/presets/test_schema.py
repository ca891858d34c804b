"""The OpenAPI schema and its docs page: valid, complete, and served without a CDN."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/presets/": {"get", "post"},
    "/api/presets/{id}/": {"get", "put", "patch", "delete"},
    "/api/presets/{id}/duplicate/": {"post"},
    "/api/presets/merge/": {"post"},
    "/api/presets/import/": {"post"},
    "/api/presets/{id}/export/": {"get"},
    "/api/presets/export/": {"get"},
}


@pytest.fixture
def schema(tmp_path) -> dict:
    """The schema as the spectacular command writes it, validated and with warnings as failures."""
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def test_the_schema_validates_without_warnings(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "autotuner API"


@pytest.mark.parametrize(("path", "methods"), PATHS.items(), ids=list(PATHS))
def test_the_schema_lists_every_path_and_method(schema, path, methods):
    assert path in schema["paths"]
    assert methods <= set(schema["paths"][path])


def test_every_operation_has_a_unique_id(schema):
    operation_ids = [
        operation["operationId"]
        for path in PATHS
        for method, operation in schema["paths"][path].items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]

    assert len(operation_ids) == len(set(operation_ids))


def test_the_list_documents_its_filters_and_pagination(schema):
    parameters = {parameter["name"] for parameter in schema["paths"]["/api/presets/"]["get"]["parameters"]}

    assert {"category", "runtime", "is_system", "search", "ordering", "page", "page_size"} <= parameters


def test_the_bundle_export_documents_ids(schema):
    parameters = {parameter["name"] for parameter in schema["paths"]["/api/presets/export/"]["get"]["parameters"]}

    assert "ids" in parameters


def test_import_documents_a_file_upload_and_a_json_body(schema):
    content = schema["paths"]["/api/presets/import/"]["post"]["requestBody"]["content"]

    assert {"multipart/form-data", "application/json"} <= set(content)


def test_the_schema_endpoint_answers_a_logged_in_user(api):
    response = api.get("/api/schema/")

    assert response.status_code == 200
    document = yaml.safe_load(response.content)
    assert set(PATHS) <= set(document["paths"])


def test_the_docs_page_answers(api):
    response = api.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger-ui" in response.content


def test_the_docs_page_loads_only_local_static_files(api):
    html = api.get("/api/docs/").content.decode()

    scripts = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)[\"']", html)
    links = re.findall(r"<link[^>]*\bhref=[\"']([^\"']+)[\"']", html)
    assert scripts
    # Swagger UI's start-up script comes from the page's own URL (drf-spectacular's split view).
    assert "/api/docs/?script=" in scripts
    for url in scripts + links:
        assert url.startswith("/static/") or url == "/api/docs/?script=", url
    assert not re.search(r"\bsrc=[\"']?(https?:)?//", html)
    assert not re.search(r"\bhref=[\"']?(https?:)?//", html)


def test_the_schema_describes_the_parameters_grid_as_the_validator_checks_it(schema):
    grid = schema["components"]["schemas"]["PresetRequest"]["properties"]["parameters"]
    values = grid["additionalProperties"]["anyOf"][0]

    assert (grid["type"], grid["minProperties"], grid["maxProperties"]) == ("object", 1, 200)
    assert re.fullmatch(grid["propertyNames"]["pattern"].strip("^$"), "--tp_size")
    assert not re.fullmatch(grid["propertyNames"]["pattern"].strip("^$"), "TP-SIZE")
    assert (values["type"], values["minItems"], values["maxItems"]) == ("array", 1, 1000)
    assert {option.get("type") for option in values["items"]["anyOf"]} == {"string", "number", "boolean"}


def test_the_list_is_documented_as_an_array_with_its_total_and_links_in_headers(schema):
    answer = schema["paths"]["/api/presets/"]["get"]["responses"]["200"]
    body = answer["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]

    assert body["type"] == "array"
    assert {"X-Total-Count", "Link"} <= set(answer["headers"])


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        ("/api/presets/", "post", {"201", "400", "401", "403", "409", "413", "415", "429"}),
        ("/api/presets/{id}/", "patch", {"200", "400", "401", "403", "404", "409", "412", "413", "415", "429"}),
        ("/api/presets/merge/", "post", {"200", "400", "401", "403", "404", "413", "415", "429"}),
    ],
)
def test_each_operation_documents_every_status_it_answers(schema, path, method, codes):
    assert set(schema["paths"][path][method]["responses"]) == codes


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_schema_and_its_docs_are_open_to_anyone_as_the_readme_says(client, path):
    assert client.get(path).status_code == 200


def test_every_other_api_path_needs_a_login(client):
    assert client.get("/api/presets/").status_code == 401
    assert client.get("/api/tasks/").status_code == 401
    assert client.get("/api/engines/").status_code == 401
