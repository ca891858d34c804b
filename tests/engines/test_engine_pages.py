"""The engines' flags to browse: the /engines/ page (with its htmx table fragment) and /api/engines/."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from engines.catalogue import DATA_DIR
from tests.html import Element, accessibility_problems, parse

pytestmark = pytest.mark.django_db

PAGE = "/engines/"
API = "/api/engines/"
HTMX = {"HX-Request": "true"}
SGLANG = json.loads((DATA_DIR / "sglang-0.5.23.json").read_text())
VLLM = json.loads((DATA_DIR / "vllm-0.33.0.json").read_text())


def flag_table(response) -> Element:
    return parse(response.content).by_id("flag-table")


def row(response, flag: str) -> dict[str, str]:
    """One flag's row as a reader sees it, by column heading."""
    table = flag_table(response)
    headings = [cell.text for cell in table.find("thead").find_all("th")]
    cells = [cell for cell in table.by_id(f"flag-{flag}").children if isinstance(cell, Element)]
    return dict(zip(headings, (cell.text for cell in cells), strict=True))


def listed_flags(response, group: str = "flag-table") -> list[str]:
    """The flags listed, in page order: the whole table, or one group (tuning-flags, other-flags)."""
    section = flag_table(response)
    if group == "tuning-flags":  # the tuning group is the table that follows its heading
        section = section.find("div", class_="table-scroll")
    elif group == "other-flags":
        section = section.by_id("other-flags")
    rows = section.find_all("tr")
    return [row.attrs["id"].removeprefix("flag-") for row in rows if row.attrs.get("id", "").startswith("flag-")]


def caption(response) -> str:
    return flag_table(response).find("p").text


# The page


def test_the_engines_page_sends_an_anonymous_visitor_to_log_in(client):
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/engines/"


def test_the_engines_page_lists_every_sglang_flag_by_default(signed_in):
    response = signed_in.get(PAGE)

    assert response.status_code == 200
    assert parse(response.content).find("h1").text == "Engine flags"
    assert caption(response) == f"sglang 0.5.23: {len(SGLANG['flags'])} flags."
    assert sorted(listed_flags(response)) == sorted(flag["name"] for flag in SGLANG["flags"])
    selected = parse(response.content).by_id("id_runtime").find("option", selected="")
    assert selected.text == "sglang"


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        pytest.param(
            "tp-size",
            {
                "Flag": "--tp-size",
                "Aliases": "tensor-parallel-size",
                "Kind": "integer",
                "Values": ">= 1",
                "Default": "1",
                "Help": "The tensor parallelism size.",
            },
            id="an-integer-with-its-alias-and-meaningful-minimum",
        ),
        pytest.param(
            "mem-fraction-static",
            {
                "Flag": "--mem-fraction-static",
                "Aliases": "—",
                "Kind": "float",
                "Values": "(0, 1]",
                "Default": "—",
                "Help": "The fraction of the memory used for static allocation "
                "(model weights and KV cache memory pool).",
            },
            id="a-fraction-with-its-open-lower-bound",
        ),
        pytest.param(
            "schedule-policy",
            {
                "Flag": "--schedule-policy",
                "Aliases": "—",
                "Kind": "choice",
                "Values": "lpm, random, fcfs, dfs-weight, lof, priority, routing-key, hrrn, shortest-prefill-first",
                "Default": "fcfs",
                "Help": "The scheduling policy of the requests.",
            },
            id="a-choice-with-its-choices",
        ),
        pytest.param(
            "enable-hierarchical-cache",
            {
                "Flag": "--enable-hierarchical-cache",
                "Aliases": "enable-hicache",
                "Kind": "switch",
                "Values": "—",
                "Default": "false",
                "Help": "Enable hierarchical cache",
            },
            id="a-switch",
        ),
    ],
)
def test_each_sglang_flag_shows_its_aliases_kind_values_default_and_help(signed_in, flag, expected):
    response = signed_in.get(PAGE)

    assert row(response, flag) == expected


def test_the_tuning_flags_come_first_and_the_others_wait_in_a_closed_group(signed_in):
    response = signed_in.get(PAGE)

    tuning, other = listed_flags(response, "tuning-flags"), listed_flags(response, "other-flags")
    assert listed_flags(response) == tuning + other
    assert tuning == sorted(tuning)
    assert {"tp-size", "dp-size", "mem-fraction-static", "schedule-policy", "chunked-prefill-size"} <= set(tuning)
    assert {"api-key", "host", "port", "log-level"} <= set(other)
    assert 10 < len(tuning) < len(other)
    section = flag_table(response)
    assert section.find("h2").text == f"Tuning flags ({len(tuning)})"
    group = section.by_id("other-flags")
    assert group.tag == "details"
    assert "open" not in group.attrs
    assert group.find("summary").text == f"Other flags ({len(other)})"


def test_a_search_shows_both_groups_open(signed_in):
    response = signed_in.get(PAGE, {"search": "cache"})

    assert "disable-radix-cache" in listed_flags(response, "tuning-flags")
    assert "enable-cache-report" in listed_flags(response, "other-flags")
    assert "open" in flag_table(response).by_id("other-flags").attrs


@pytest.mark.parametrize(
    ("runtime", "flag"), [("sglang", "tp-size"), ("sglang", "api-key"), ("vllm", "tensor-parallel-size")]
)
def test_each_flag_links_to_its_own_row_on_its_engine_s_page(signed_in, runtime, flag):
    response = signed_in.get(PAGE, {"runtime": runtime, "search": flag})

    link = flag_table(response).by_id(f"flag-{flag}").find("th").find("a")
    assert link.attrs["href"] == f"/engines/?runtime={runtime}#flag-{flag}"
    target = signed_in.get(link.attrs["href"].partition("#")[0])
    assert flag in listed_flags(target)


def test_vllm_s_tuning_flags_are_known_by_their_own_names(signed_in):
    tuning = listed_flags(signed_in.get(PAGE, {"runtime": "vllm"}), "tuning-flags")

    assert {"tensor-parallel-size", "gpu-memory-utilization", "max-num-seqs", "enable-prefix-caching"} <= set(tuning)
    assert "port" not in tuning


def test_the_runtime_choice_shows_the_vllm_flags(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm"})

    assert response.status_code == 200
    assert caption(response) == f"vllm 0.33.0: {len(VLLM['flags'])} flags."
    assert sorted(listed_flags(response)) == sorted(flag["name"] for flag in VLLM["flags"])
    assert parse(response.content).by_id("id_runtime").find("option", selected="").text == "vllm"
    assert row(response, "tensor-parallel-size")["Aliases"] == "tp"
    assert row(response, "gpu-memory-utilization")["Values"] == "(0, 1]"
    # A switch with a --no- form shows it next to its kind.
    assert row(response, "enable-chunked-prefill")["Kind"] == "switch (--no-enable-chunked-prefill)"
    assert "tp-size" not in listed_flags(response)


@pytest.mark.parametrize("search", ["tensor", "TENSOR", "--tensor"], ids=["lower-case", "any-case", "with-dashes"])
def test_the_search_finds_a_flag_by_its_alias(signed_in, search):
    response = signed_in.get(PAGE, {"search": search})

    flags = listed_flags(response)
    assert "tp-size" in flags  # only its alias, tensor-parallel-size, and its help say "tensor"
    assert "mem-fraction-static" not in flags
    assert caption(response) == f"sglang 0.5.23: {len(flags)} flag{'s' if len(flags) > 1 else ''} matching “{search}”."
    assert parse(response.content).by_id("id_search").attrs["value"] == search


def test_the_search_keeps_to_the_chosen_engine(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm", "search": "prefix-caching"})

    assert "enable-prefix-caching" in listed_flags(response)
    assert all(flag in {entry["name"] for entry in VLLM["flags"]} for flag in listed_flags(response))


def test_a_search_that_matches_nothing_says_so(signed_in):
    response = signed_in.get(PAGE, {"search": "no-such-flag-anywhere"})

    assert listed_flags(response) == []
    assert flag_table(response).find("p", class_="empty").text == "No flag matches."


def test_an_htmx_request_gets_only_the_flag_table(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm", "search": "tensor"}, headers=HTMX)

    assert response.status_code == 200
    document = parse(response.content)
    top = [child for child in document.children if isinstance(child, Element)]
    assert [element.attrs.get("id") for element in top] == ["flag-table"]
    assert document.find("h1") is None
    assert document.find("form") is None
    assert "tensor-parallel-size" in listed_flags(response)
    assert "HX-Request" in response["Vary"]


def test_the_full_page_also_varies_on_hx_request(signed_in):
    response = signed_in.get(PAGE)

    assert "HX-Request" in response["Vary"]
    assert parse(response.content).find("form", id="flag-filters") is not None


@pytest.mark.parametrize("runtime", ["tensorrt", "SGLANG", "sglang-0.5.23"], ids=["unknown", "wrong-case", "versioned"])
def test_an_unknown_runtime_is_not_found(signed_in, runtime):
    response = signed_in.get(PAGE, {"runtime": runtime})

    assert response.status_code == 404


@pytest.mark.parametrize("query", [{}, {"runtime": "vllm", "search": "memory"}], ids=["sglang", "vllm-searched"])
def test_the_engines_page_passes_the_accessibility_check(signed_in, query):
    response = signed_in.get(PAGE, query)

    assert accessibility_problems(response.content) == []


# The API


def test_the_api_lists_both_engines_with_version_and_flag_count(api):
    response = api.get(API)

    assert response.status_code == 200
    assert response.json() == [
        {"runtime": "sglang", "version": "0.5.23", "flags": len(SGLANG["flags"])},
        {"runtime": "vllm", "version": "0.33.0", "flags": len(VLLM["flags"])},
    ]


@pytest.mark.parametrize("url", ["/api/engines/sglang", "/api/engines/sglang/"], ids=["no-slash", "slash"])
def test_the_api_returns_an_engines_catalogue_document(api, url):
    response = api.get(url)

    assert response.status_code == 200
    body = response.json()
    assert (body["engine"], body["version"], body["source"]) == ("sglang", "0.5.23", SGLANG["source"])
    flags = {flag["name"]: flag for flag in body["flags"]}
    assert sorted(flags) == sorted(flag["name"] for flag in SGLANG["flags"])
    assert flags["tp-size"] == {
        "name": "tp-size",
        "aliases": ["tensor-parallel-size"],
        "kind": "integer",
        "choices": None,
        "default": 1,
        "help": "The tensor parallelism size.",
        "deprecated": False,
        "negation": None,
        "minimum": 1,
        "exclusive_minimum": False,
    }
    assert flags["mem-fraction-static"]["minimum"] == 0
    assert flags["mem-fraction-static"]["maximum"] == 1
    assert flags["mem-fraction-static"]["exclusive_minimum"] is True
    assert "fcfs" in flags["schedule-policy"]["choices"]


def test_the_api_returns_the_vllm_catalogue_with_negations(api):
    response = api.get("/api/engines/vllm")

    flags = {flag["name"]: flag for flag in response.json()["flags"]}
    assert flags["enable-chunked-prefill"]["negation"] == "no-enable-chunked-prefill"
    assert flags["enable-prefix-caching"]["negation"] == "no-enable-prefix-caching"
    assert flags["tensor-parallel-size"]["aliases"] == ["tp"]


def test_the_api_search_filters_the_flags(api):
    response = api.get("/api/engines/sglang", {"search": "mem"})

    assert response.status_code == 200
    flags = response.json()["flags"]
    names = [flag["name"] for flag in flags]
    assert "mem-fraction-static" in names
    assert "tp-size" not in names
    assert len(names) < len(SGLANG["flags"])
    for flag in flags:
        assert "mem" in " ".join([flag["name"], *flag["aliases"], flag["help"].lower()])


def test_an_unknown_engine_answers_a_json_404(api):
    response = api.get("/api/engines/nope")

    assert response.status_code == 404
    assert response.json() == {"detail": "No engine 'nope'; known: sglang, vllm"}


@pytest.mark.parametrize("url", [API, "/api/engines/sglang", "/api/engines/nope"], ids=["list", "one", "unknown"])
def test_the_engines_api_needs_a_login(url):
    response = APIClient().get(url)

    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
