"""No input makes the presets API answer 500: odd bodies, odd sizes, odd bytes, odd ids, odd query strings."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from presets.models import ParameterPreset
from tests.factories import make_preset

pytestmark = pytest.mark.django_db

MB = 1_000_000
TEN_MB_NAME = json.dumps({"name": "x" * 10 * MB, "parameters": {"tp-size": [1]}})


@pytest.fixture
def mine(user) -> ParameterPreset:
    return make_preset(name="Mine", description="Untouched", parameters={"tp-size": [1, 2]}, created_by=user)


WRITES = [
    pytest.param("post", "/api/presets/", id="create"),
    pytest.param("put", "/api/presets/{id}", id="put"),
    pytest.param("patch", "/api/presets/{id}", id="patch"),
    pytest.param("post", "/api/presets/merge", id="merge"),
    pytest.param("post", "/api/presets/import", id="import"),
]


def send(api: APIClient, method: str, path: str, mine: ParameterPreset, body: bytes | str, content_type: str):
    return getattr(api, method)(path.format(id=mine.pk), body, content_type=content_type)


def assert_unchanged(mine: ParameterPreset) -> None:
    mine.refresh_from_db()
    assert mine.description == "Untouched"
    assert mine.parameters == {"tp-size": [1, 2]}
    assert ParameterPreset.objects.count() == 1


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param("not json", id="text"),
        pytest.param("{'name': 'single quotes'}", id="python-dict"),
        pytest.param('{"name": "x",}', id="trailing-comma"),
        pytest.param("{", id="truncated"),
        pytest.param("1" * 5000, id="integer-of-5000-digits"),
        pytest.param("[" * 100_000, id="deeply-nested-arrays"),
        pytest.param('{"a":' * 100_000, id="deeply-nested-objects"),
    ],
)
def test_a_body_that_is_not_json_answers_400(api, mine, method, path, body):
    response = send(api, method, path, mine, body, "application/json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert_unchanged(mine)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="empty-array"),
        pytest.param([{"name": "In a list", "parameters": {"tp-size": [1]}}], id="array-of-objects"),
        pytest.param("a string", id="string"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="boolean"),
    ],
)
def test_json_that_is_not_an_object_answers_400(api, mine, method, path, body):
    response = send(api, method, path, mine, json.dumps(body), "application/json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert_unchanged(mine)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"name": "\xff\xfe", "parameters": {"tp-size": [1]}}', id="invalid-utf8"),
        pytest.param(b'{"name": "\xc3\x28"}', id="bad-continuation-byte"),
        pytest.param("{}".encode("utf-16"), id="utf16"),
    ],
)
def test_bytes_that_are_not_utf8_answer_400(api, mine, method, path, body):
    response = send(api, method, path, mine, body, "application/json")

    assert response.status_code == 400
    assert response.json()["detail"]
    assert_unchanged(mine)


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(TEN_MB_NAME, id="name-of-10-mb"),
        pytest.param(json.dumps({"preset_ids": [1], "merge_strategy": "x" * 10 * MB}), id="strategy-of-10-mb"),
        pytest.param(json.dumps({"version": "1.0", "preset": {"name": "x" * 10 * MB}}), id="document-of-10-mb"),
        pytest.param(json.dumps({"name": "x" * int(1.5 * MB), "parameters": {"tp-size": [1]}}), id="name-of-1.5-mb"),
    ],
)
def test_a_huge_string_answers_413_or_400(api, mine, method, path, body):
    response = send(api, method, path, mine, body, "application/json")

    assert response.status_code in (400, 413)
    assert response.json()["detail"]
    assert_unchanged(mine)


def test_a_body_of_10_mb_is_refused_as_too_large(api, mine):
    response = api.post("/api/presets/", TEN_MB_NAME, content_type="application/json")

    assert response.status_code == 413


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded", "application/octet-stream"],
)
def test_a_wrong_content_type_never_answers_500(api, mine, method, path, content_type):
    body = json.dumps({"name": "Typed", "parameters": {"tp-size": [1]}, "preset_ids": [mine.pk]})

    response = send(api, method, path, mine, body, content_type)

    assert 400 <= response.status_code < 500
    assert_unchanged(mine)


@pytest.mark.parametrize(("method", "path"), [param for param in WRITES if param.id != "import"])
def test_a_wrong_content_type_answers_415_where_only_json_is_read(api, mine, method, path):
    response = send(api, method, path, mine, "name=Typed", "text/plain")

    assert response.status_code == 415


def test_multipart_is_refused_by_create(api):
    upload = SimpleUploadedFile("p.json", b'{"name": "x", "parameters": {"a": [1]}}')

    response = api.post("/api/presets/", {"file": upload}, format="multipart")

    assert response.status_code == 415
    assert not ParameterPreset.objects.exists()


def test_a_huge_form_field_on_import_answers_413_or_400(api):
    response = api.post("/api/presets/import", {"document": "x" * 3 * MB}, format="multipart")

    assert response.status_code in (400, 413)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param('{"name": "Inf", "parameters": {"a": [1e999]}}', id="infinity"),
        pytest.param('{"name": "NaN", "parameters": {"a": [NaN]}}', id="nan"),
        pytest.param('{"name": "Neg", "parameters": {"a": [-Infinity]}}', id="minus-infinity"),
        pytest.param('{"name": "Sur", "parameters": {"a": ["\\ud800"]}}', id="lone-surrogate-value"),
        pytest.param('{"name": "\\ud800", "parameters": {"a": [1]}}', id="lone-surrogate-name"),
        pytest.param('{"name": "Nul", "parameters": {"a": ["\\u0000"]}}', id="nul-value"),
        pytest.param('{"name": "Key", "parameters": {"a": [1]}, "metadata": {"\\u0000": 1}}', id="nul-metadata-key"),
        pytest.param('{"name": "Big", "parameters": {"a": [1e308, 123456789012345678901234567890]}}', id="big-ints"),
        pytest.param('{"name": "Deep", "parameters": {"a": [1]}, "metadata": ' + "[" * 50 + "]" * 50 + "}", id="deep"),
    ],
)
def test_values_a_database_cannot_store_answer_400(api, body):
    response = api.post("/api/presets/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"]
    assert not ParameterPreset.objects.exists()


@pytest.mark.parametrize(
    "name",
    ["Größe 日本語", "🚀 Launch", "Ελληνικά", "עברית", "e\u0301 combining", "  spaced\u00a0nbsp  "],
    ids=["german-japanese", "emoji", "greek", "hebrew", "combining", "nbsp"],
)
def test_a_unicode_name_is_created_read_listed_and_exported(api, name):
    created = api.post("/api/presets/", {"name": name, "parameters": {"tp-size": [1]}}, format="json")

    assert created.status_code == 201
    preset_id = created.json()["id"]
    assert api.get(f"/api/presets/{preset_id}").json()["name"] == name.strip()
    assert [row["name"] for row in api.get("/api/presets/").json()] == [name.strip()]
    exported = api.get(f"/api/presets/{preset_id}/export")
    assert exported.status_code == 200
    assert json.loads(exported.content)["preset"]["name"] == name.strip()


# Ids and query strings


@pytest.mark.parametrize(
    "raw_id",
    ["abc", "0", "-1", "1e3", "%20", "99999999999999999999999999999", "1;DROP TABLE", "Ω"],
    ids=["text", "zero", "negative", "exponent", "space", "huge", "injection", "omega"],
)
def test_an_odd_id_answers_404(api, raw_id):
    response = api.get(f"/api/presets/{raw_id}")

    assert response.status_code == 404


ODD_DIGIT = "²"  # str.isdigit() says yes, int() says no


@pytest.mark.parametrize(
    "path",
    [
        f"/api/presets/{ODD_DIGIT}",
        f"/api/presets/{ODD_DIGIT}/export",
        f"/api/presets/?page={ODD_DIGIT}",
        f"/api/presets/?page_size={ODD_DIGIT}",
        f"/api/presets/export?ids={ODD_DIGIT}",
    ],
    ids=["get", "export", "page", "page-size", "bundle-ids"],
)
def test_a_superscript_digit_never_answers_500(api, path):
    response = api.get(path)

    assert response.status_code in (400, 404)


@pytest.mark.parametrize(
    "query",
    [
        "category=" + "x" * 5000,
        "search=%00",
        "search=" + "%25" * 100,
        "ordering=-",
        "ordering=name,name",
        "runtime=",
        "is_system=",
        "page_size=",
        "ids=",
        "page_size=10&page_size=20",
    ],
    ids=[
        "long-category",
        "nul-search",
        "percent-search",
        "dash-ordering",
        "repeated-ordering",
        "empty-runtime",
        "empty-is-system",
        "empty-page-size",
        "empty-ids",
        "repeated-page-size",
    ],
)
@pytest.mark.parametrize("path", ["/api/presets/", "/api/presets/export"], ids=["list", "bundle-export"])
def test_an_odd_query_string_never_answers_500(api, mine, path, query):
    response = api.get(f"{path}?{query}")

    assert response.status_code in (200, 400)
