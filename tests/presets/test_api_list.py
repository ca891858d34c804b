"""GET /api/presets/: a plain JSON array, filtered, ordered and paginated by headers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from presets.models import ParameterPreset
from presets.serializers import PresetSerializer
from tests.factories import make_preset, make_token_key, system_preset_names

pytestmark = pytest.mark.django_db


def by_name(*names: str) -> list[str]:
    """``names`` in the list's default order: by name, ignoring case."""
    return sorted(names, key=str.casefold)


SYSTEM_NAMES = by_name(*system_preset_names())  # SGLang and vLLM
SGLANG_SYSTEM_NAMES = by_name(*system_preset_names("sglang"))
VLLM_SYSTEM_NAMES = by_name(*system_preset_names("vllm"))
NEXT_LINK = re.compile(r'<([^>]+)>; rel="next"')


def names(response) -> list[str]:
    return [row["name"] for row in response.json()]


def bulk_presets(count: int) -> None:
    """``count`` presets in one insert; bulk_create skips save(), so name_key is set here."""
    ParameterPreset.objects.bulk_create(
        ParameterPreset(
            name=f"Bulk {number:05}",
            name_key=f"Bulk {number:05}".casefold(),
            category="custom",
            parameters={"tp-size": [1, 2]},
        )
        for number in range(count)
    )


def next_link(response) -> str:
    match = NEXT_LINK.search(response.headers["Link"])
    assert match, response.headers["Link"]
    return match.group(1)


@pytest.fixture
def mixed_presets(system_presets) -> dict[str, ParameterPreset]:
    """The shipped SGLang and vLLM system presets, a user-made vLLM one and an any-engine one."""
    return {
        **system_presets,
        "vLLM Paged": make_preset(name="vLLM Paged", runtime="vllm", category="memory", description="Block size"),
        "Anywhere": make_preset(name="Anywhere", runtime="", category="general", description="Runs on ANY engine"),
    }


def test_the_list_is_a_plain_json_array_ordered_by_name(api, system_presets):
    response = api.get("/api/presets/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json(), list)
    assert names(response) == SYSTEM_NAMES


def test_each_listed_preset_is_shown_as_get_one_shows_it(api, system_presets):
    rows = api.get("/api/presets/").json()

    for row in rows:
        assert row == api.get(f"/api/presets/{row['id']}").json()


def test_an_empty_list_is_an_empty_array(api):
    response = api.get("/api/presets/")

    assert response.status_code == 200
    assert response.json() == []


def test_the_list_shows_every_users_presets(api, other_user, system_presets):
    make_preset(name="Grace's grid", created_by=other_user)

    assert "Grace's grid" in names(api.get("/api/presets/"))


def test_the_list_shows_runtime_null_for_any_engine_presets(api, mixed_presets):
    rows = {row["name"]: row for row in api.get("/api/presets/").json()}

    assert rows["Anywhere"]["runtime"] is None
    assert rows["vLLM Paged"]["runtime"] == "vllm"
    assert rows["Balanced"]["runtime"] == "sglang"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("category=memory", ["Memory Efficient", "Memory Efficient (vLLM)", "vLLM Paged"], id="category"),
        pytest.param("category=nothing", [], id="category-unknown"),
        pytest.param(
            "runtime=vllm", by_name("Anywhere", "vLLM Paged", *VLLM_SYSTEM_NAMES), id="runtime-vllm-and-any-engine"
        ),
        pytest.param("runtime=sglang", by_name("Anywhere", *SGLANG_SYSTEM_NAMES), id="runtime-sglang-and-any-engine"),
        pytest.param("runtime=any", ["Anywhere"], id="runtime-any-engine-only"),
        pytest.param("is_system=true", SYSTEM_NAMES, id="system"),
        pytest.param("is_system=false", ["Anywhere", "vLLM Paged"], id="user-made"),
        pytest.param("search=latency", ["Low Latency", "Low Latency (vLLM)"], id="search-name"),
        pytest.param("search=LATENCY", ["Low Latency", "Low Latency (vLLM)"], id="search-name-any-case"),
        pytest.param("search=smaller gpus", ["Memory Efficient", "Memory Efficient (vLLM)"], id="search-description"),
        pytest.param("search=any engine", ["Anywhere"], id="search-description-any-case"),
        pytest.param("search=zzz", [], id="search-no-match"),
        pytest.param(
            "category=performance&search=throughput", ["High Throughput", "High Throughput (vLLM)"], id="combined"
        ),
        pytest.param("runtime=vllm&is_system=false", ["Anywhere", "vLLM Paged"], id="runtime-and-user-made"),
    ],
)
def test_the_list_filters(api, mixed_presets, query, expected):
    response = api.get(f"/api/presets/?{query}")

    assert response.status_code == 200
    assert names(response) == expected


@pytest.fixture
def ordered_presets() -> None:
    """Three presets whose name, category, creation and update orders all differ."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for name, category, created, updated in [
        ("alpha", "c-general", 2, 1),
        ("Bravo", "a-memory", 3, 2),
        ("charlie", "b-performance", 1, 3),
    ]:
        preset = make_preset(name=name, category=category)
        ParameterPreset.objects.filter(pk=preset.pk).update(
            created_at=start + timedelta(days=created), updated_at=start + timedelta(days=updated)
        )


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        pytest.param("", ["alpha", "Bravo", "charlie"], id="default-name-ignoring-case"),
        pytest.param("name", ["alpha", "Bravo", "charlie"], id="name"),
        pytest.param("-name", ["charlie", "Bravo", "alpha"], id="name-descending"),
        pytest.param("category", ["Bravo", "charlie", "alpha"], id="category"),
        pytest.param("-category", ["alpha", "charlie", "Bravo"], id="category-descending"),
        pytest.param("created_at", ["charlie", "alpha", "Bravo"], id="created_at"),
        pytest.param("-created_at", ["Bravo", "alpha", "charlie"], id="created_at-descending"),
        pytest.param("updated_at", ["alpha", "Bravo", "charlie"], id="updated_at"),
        pytest.param("-updated_at", ["charlie", "Bravo", "alpha"], id="updated_at-descending"),
    ],
)
def test_the_list_orders(api, ordered_presets, ordering, expected):
    response = api.get(f"/api/presets/?ordering={ordering}")

    assert response.status_code == 200
    assert names(response) == expected


@pytest.mark.parametrize(
    ("query", "path"),
    [
        pytest.param("ordering=bogus", "ordering", id="ordering"),
        pytest.param("runtime=tensorrt", "runtime", id="runtime"),
        pytest.param("is_system=maybe", "is_system", id="is-system"),
        pytest.param("search=" + "x" * 201, "search", id="search-too-long"),
        pytest.param("page=0", "page", id="page-zero"),
        pytest.param("page=abc", "page", id="page-text"),
        pytest.param("page=-1", "page", id="page-negative"),
    ],
)
def test_a_bad_list_parameter_answers_400_naming_it(api, query, path):
    response = api.get(f"/api/presets/?{query}")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == [path]


# Pagination


def test_a_list_that_fits_has_no_next_link(api, system_presets):
    response = api.get("/api/presets/")

    assert "Link" not in response.headers
    assert names(response) == SYSTEM_NAMES


def test_more_presets_than_page_size_gives_a_next_link_and_the_total(api, system_presets):
    response = api.get("/api/presets/?page_size=3")

    assert response.status_code == 200
    assert names(response) == SYSTEM_NAMES[:3]
    assert response.headers["X-Total-Count"] == str(len(SYSTEM_NAMES))
    link = next_link(response)
    assert "page=2" in link
    assert "page_size=3" in link


def test_following_the_next_link_gives_the_rest_as_an_array(api, system_presets):
    first = api.get(f"/api/presets/?page_size={len(SYSTEM_NAMES) - 1}&ordering=-name")

    second = api.get(next_link(first))

    assert second.status_code == 200
    assert names(second) == ["Balanced"]
    assert second.headers["X-Total-Count"] == str(len(SYSTEM_NAMES))
    assert 'rel="next"' not in second.headers.get("Link", "")


def test_the_next_link_keeps_the_filters(api, mixed_presets):
    first = api.get("/api/presets/?page_size=1&runtime=vllm")

    second = api.get(next_link(first))

    shown = by_name("Anywhere", "vLLM Paged", *VLLM_SYSTEM_NAMES)
    assert names(first) == ["Anywhere"] == shown[:1]
    assert names(second) == ["Balanced (vLLM)"] == shown[1:2]  # without the filter: "Balanced", for SGLang
    assert first.headers["X-Total-Count"] == second.headers["X-Total-Count"] == str(len(shown))


def test_the_page_links_name_one_page_and_keep_every_other_value(api, mixed_presets):
    response = api.get("/api/presets/?page=2&runtime=vllm&page_size=1&search=L")

    links = dict(
        (rel, parse_qs(urlsplit(url).query)) for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response["Link"])
    )
    assert links["next"] == {"runtime": ["vllm"], "page_size": ["1"], "search": ["L"], "page": ["3"]}
    assert links["prev"] == {"runtime": ["vllm"], "page_size": ["1"], "search": ["L"], "page": ["1"]}


def test_a_page_past_the_end_is_an_empty_array(api, system_presets):
    response = api.get("/api/presets/?page=5&page_size=2")

    assert response.status_code == 200
    assert response.json() == []


def test_the_default_page_size_is_1000(api):
    bulk_presets(1001)

    response = api.get("/api/presets/")

    assert len(response.json()) == 1000
    assert response.headers["X-Total-Count"] == "1001"
    assert "page=2" in next_link(response)
    assert names(api.get(next_link(response))) == ["Bulk 01000"]


def test_page_size_goes_up_to_10000(api):
    bulk_presets(1001)

    response = api.get("/api/presets/?page_size=10000")

    assert response.status_code == 200
    assert len(response.json()) == 1001
    assert "Link" not in response.headers


@pytest.mark.parametrize("page_size", ["0", "10001", "abc", "-5", "1.5", "99999999999999999999999"])
def test_a_bad_page_size_answers_400_with_path_page_size(api, page_size):
    response = api.get(f"/api/presets/?page_size={page_size}")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["page_size"]


@pytest.mark.parametrize(
    ("query", "message"),
    [("page=", "expected a whole number from 1"), ("page_size=2&page_size=3", "give it once, got 2 values")],
    ids=["empty", "twice"],
)
@pytest.mark.parametrize("path", ["/api/presets/", "/api/tasks/"])
def test_a_page_parameter_empty_or_given_twice_answers_400_as_the_schema_says(api, path, query, message):
    response = api.get(f"{path}?{query}")

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["path"] == query.split("=")[0]
    assert error["message"].startswith(message)


@pytest.mark.parametrize("page", ["9223372036854775807", "99999999999999999999"])
def test_a_huge_page_number_never_answers_500(user, page):
    client = APIClient(raise_request_exception=False)
    client.force_login(user)

    response = client.get(f"/api/presets/?page={page}")

    assert response.status_code in (200, 400)


# Query count: constant, whatever the number of presets


@pytest.fixture
def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token_key(user)}")
    client.get("/api/engines/")  # a token's first use records when it was used; later ones within a minute do not
    return client


@pytest.mark.parametrize("count", [10, 10_000])
def test_the_list_runs_one_count_and_one_page_query_however_many_presets(token_client, count):
    bulk_presets(count)

    with CaptureQueriesContext(connection) as queries:
        response = token_client.get("/api/presets/?page_size=10000")

    listing = [query["sql"] for query in queries if "parameter_presets" in query["sql"]]
    assert response.status_code == 200
    assert len(response.json()) == count
    assert len(listing) == 2
    assert "COUNT(" in listing[0].upper()


# Ties and text that JSON must escape


@pytest.fixture
def varied_presets(system_presets) -> None:
    """Presets that tie on category and creation time, differ in case, engine and origin, hold
    LIKE's wildcards in their text, and one in the trash."""
    same_time = datetime(2026, 3, 1, tzinfo=UTC)
    for number, (name, description, category, runtime) in enumerate(
        [
            ("zeta 100% fast", "uses 50_50 split", "performance", "sglang"),
            ("Eta", "MEMORY saver", "memory", "vllm"),
            ("theta", "any engine at all", "memory", ""),
            ("Iota", r"back\slash", "memory", "sglang"),
            ("kappa", "Ünïcode ÉTÉ", "custom", ""),
            ("Lambda", "", "custom", "vllm"),
        ]
    ):
        preset = make_preset(name=name, description=description, category=category, runtime=runtime)
        ParameterPreset.objects.filter(pk=preset.pk).update(
            created_at=same_time + timedelta(days=number % 2), updated_at=same_time
        )
    make_preset(name="Trashed memory", category="memory").trash(by=None)


@pytest.mark.parametrize("query", ["ordering=category", "ordering=created_at", "ordering=-updated_at"])
def test_pages_of_tied_rows_neither_repeat_nor_skip_a_preset(api, varied_presets, query):
    whole = names(api.get(f"/api/presets/?{query}"))

    paged = []
    for page in range(1, len(whole) + 1):
        paged += names(api.get(f"/api/presets/?{query}&page_size=1&page={page}"))

    assert paged == whole


def test_a_listed_preset_reads_as_it_does_on_its_own(api, varied_presets):
    listed = api.get("/api/presets/").json()

    for row in listed:
        assert row == api.get(f"/api/presets/{row['id']}").json()
        assert list(row) == [field for field in PresetSerializer.Meta.fields if field != "change_note"]
    assert all(row["created_at"].endswith("Z") for row in listed)
    # Times to the second and to the microsecond, created and updated apart, read alike.
    assert any(row["updated_at"].endswith(":00Z") for row in listed)
    assert any(row["created_at"] != row["updated_at"] for row in listed)


def test_text_that_json_must_escape_lists_as_it_reads_on_its_own(api):
    # The list embeds stored JSON text as it is and encodes the rest itself: quotes, backslashes,
    # control and non-BMP characters and nested metadata must read as the preset's own endpoint gives them.
    make_preset(
        name='Quote " and back\\slash',
        description="line one\nline two\ttab \u0001 control, emoji 🚀, ÉTÉ, </script>",
        category="custom",
        runtime="vllm",
        metadata={"tags": ['a "b"', "ü"], "nested": {"n": 1.5, "none": None, "flag": True}},
    )

    (row,) = api.get("/api/presets/?category=custom").json()

    assert row == api.get(f"/api/presets/{row['id']}").json()
    assert row["name"] == 'Quote " and back\\slash'
    assert row["metadata"]["nested"] == {"n": 1.5, "none": None, "flag": True}


def test_the_browsable_list_and_creating_still_go_through_drf(api):
    browsable = api.get("/api/presets/", headers={"Accept": "text/html"})
    created = api.post("/api/presets/", {"name": "Made here", "parameters": {"tp-size": [1]}}, format="json")

    assert browsable.status_code == 200
    assert browsable["Content-Type"].startswith("text/html")
    assert created.status_code == 201
    assert names(api.get("/api/presets/?search=made+here")) == ["Made here"]


def test_the_browsable_list_shows_the_presets_and_its_filter_form(api, mixed_presets):
    # DRF's browsable API offers its filters only when the view answers with a list of presets.
    browsable = api.get("/api/presets/?runtime=vllm", headers={"Accept": "text/html"})

    assert browsable.context["filter_form"] is not None
    assert json.loads(browsable.context["content"]) == api.get("/api/presets/?runtime=vllm").json()
    assert "vLLM Paged" in names(api.get("/api/presets/?runtime=vllm"))


def test_the_browsable_api_shows_the_json_indented(api, mixed_presets):
    browsable = api.get("/api/presets/?runtime=vllm", headers={"Accept": "text/html"})

    assert browsable.context["content"].startswith('[\n  {\n    "id": ')


def test_the_list_asks_anonymous_clients_to_sign_in(system_presets):
    response = APIClient().get("/api/presets/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    ("page", "rows"),
    [
        pytest.param(1, 10, id="full-page"),
        pytest.param(3, 5, id="short-last-page"),
        pytest.param(4, 0, id="past-the-end"),
    ],
)
def test_the_total_is_right_on_every_kind_of_page(api, page, rows):
    bulk_presets(25)

    response = api.get(f"/api/presets/?page_size=10&page={page}")

    assert response.status_code == 200
    assert len(response.json()) == rows
    assert response.headers["X-Total-Count"] == "25"
