"""The engines' flags to browse: the /engines/ page (with its htmx table fragment), a version's
changes page, and /api/engines/."""

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
VLLM = json.loads((DATA_DIR / "vllm-0.34.0.json").read_text())  # the default for new presets and tasks
VLLM_033 = json.loads((DATA_DIR / "vllm-0.33.0.json").read_text())


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


def current_catalogue(response) -> tuple[str, str]:
    """The engine label and version the page's version links mark as shown."""
    [link] = parse(response.content).find("nav", class_="engine-versions").find_all("a", aria_current="page")
    return link.parent.find("span", class_="engine-label").text, link.text


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
    assert current_catalogue(response) == ("SGLang", "0.5.23")


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
    assert caption(response) == f"vllm {VLLM['version']}: {len(VLLM['flags'])} flags."
    assert sorted(listed_flags(response)) == sorted(flag["name"] for flag in VLLM["flags"])
    assert current_catalogue(response) == ("vLLM", VLLM["version"])
    assert row(response, "tensor-parallel-size")["Aliases"] == "tp"
    assert row(response, "gpu-memory-utilization")["Values"] == "(0, 1]"
    # A switch with an off form shows it next to its kind.
    assert row(response, "enable-chunked-prefill")["Kind"] == "switch (--disable-chunked-prefill)"
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


# Versions: the links that choose one, and an older version's page


def version_links(response) -> dict[str, list[str]]:
    """Each engine's version links as shown: ``{"vLLM": ["0.34.0 (default)", "0.33.0", "What changed"]}``."""
    nav = parse(response.content).find("nav", class_="engine-versions")
    found = {}
    for item in nav.find_all("li"):
        label = item.find("span", class_="engine-label").text
        found[label] = [link.text for link in item.find_all("a")]
    return found


def test_the_engines_page_links_every_version_shipped_newest_first(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm", "search": "tensor"})

    assert version_links(response) == {"SGLang": ["0.5.23"], "vLLM": ["0.34.0", "0.33.0", "What changed"]}
    nav = parse(response.content).find("nav", class_="engine-versions")
    hrefs = {link.text: link.attrs["href"] for link in nav.find_all("a")}
    # The default version's link names no version, so it follows the next release; each keeps the search.
    assert hrefs["0.34.0"] == "/engines/?runtime=vllm&search=tensor"
    assert hrefs["0.33.0"] == "/engines/?runtime=vllm&version=0.33.0&search=tensor"
    assert hrefs["What changed"] == "/engines/vllm/changes/"
    assert "(default)" in nav.find_all("li")[1].text


def test_an_older_version_shows_its_own_flags_and_says_which_is_the_default(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm", "version": "0.33.0"})

    assert response.status_code == 200
    assert caption(response) == f"vllm 0.33.0: {len(VLLM_033['flags'])} flags."
    assert sorted(listed_flags(response)) == sorted(flag["name"] for flag in VLLM_033["flags"])
    assert "enable-extensible-kv-cache" not in listed_flags(response)
    assert current_catalogue(response) == ("vLLM", "0.33.0")
    notice = parse(response.content).by_id("older-version")
    assert notice.text.startswith("This is vllm 0.33.0. New presets and tasks are checked against 0.34.0")
    assert notice.find("a").attrs["href"] == "/engines/vllm/changes/?from=0.33.0&to=0.34.0"


def test_the_search_and_each_flag_link_keep_the_older_version(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm", "version": "0.33.0", "search": "tensor"})

    form = parse(response.content).by_id("flag-filters")
    hidden = {field.attrs["name"]: field.attrs["value"] for field in form.find_all("input", type="hidden")}
    assert hidden == {"runtime": "vllm", "version": "0.33.0"}
    link = flag_table(response).by_id("flag-tensor-parallel-size").find("th").find("a")
    assert link.attrs["href"] == "/engines/?runtime=vllm&version=0.33.0#flag-tensor-parallel-size"


def test_the_default_version_s_page_names_no_version(signed_in):
    response = signed_in.get(PAGE, {"runtime": "vllm", "version": "0.34.0"})

    assert current_catalogue(response) == ("vLLM", "0.34.0")
    form = parse(response.content).by_id("flag-filters")
    assert [field.attrs["name"] for field in form.find_all("input", type="hidden")] == ["runtime"]
    assert parse(response.content).find("p", id="older-version") is None
    assert "enable-extensible-kv-cache" in listed_flags(response, "tuning-flags")


@pytest.mark.parametrize(
    ("runtime", "version"),
    [("vllm", "0.35.0"), ("sglang", "0.33.0"), ("vllm", "../vllm-0.33.0"), ("vllm", "0.33.0\x00")],
    ids=["not-shipped", "another-engine-s", "a-path", "a-nul"],
)
def test_a_version_not_shipped_is_a_404_that_names_the_shipped_ones(signed_in, runtime, version):
    response = signed_in.get(PAGE, {"runtime": runtime, "version": version})

    assert response.status_code == 404
    problem = parse(response.content).by_id("version-problem").text
    assert problem.startswith(f"{runtime} {version!r} is not shipped; shipped: ")
    assert problem.endswith(f"Showing the default, {'0.34.0' if runtime == 'vllm' else '0.5.23'}.")


# What changed between two versions


def changes_section(response) -> Element:
    return parse(response.content).by_id("changes")


def names(response, section: str) -> list[str]:
    """The flags one part of the changes page lists: e.g. tuning-added, other-changed."""
    heading = changes_section(response).by_id(section)
    table = heading.parent.children[heading.parent.children.index(heading) + 2]
    return [row.attrs["id"].partition("-")[2] for row in table.find_all("tr") if row.attrs.get("id")]


def changed(response, flag: str) -> dict[str, str]:
    """One changed flag's attributes as the page shows them, ``{"default": "0.92 → none"}``."""
    row = changes_section(response).by_id(f"changed-{flag}")
    return {item.attrs["data-attribute"]: item.text.partition(": ")[2] for item in row.find_all("li")}


def test_the_changes_page_compares_the_two_newest_versions_by_default(signed_in):
    response = signed_in.get("/engines/vllm/changes/")

    assert response.status_code == 200
    assert parse(response.content).find("h1").text == "vLLM: what changed from 0.33.0 to 0.34.0"
    for side, version in (("id_from", "0.33.0"), ("id_to", "0.34.0")):
        assert parse(response.content).by_id(side).find("option", selected="").text == version
    added = {flag["name"] for flag in VLLM["flags"]} - {flag["name"] for flag in VLLM_033["flags"]}
    summary = changes_section(response).by_id("changes-summary").text
    assert summary.startswith(f"{len(added)} flags added, 0 removed, ")
    assert sorted(names(response, "tuning-added") + names(response, "other-added")) == sorted(added)


def test_the_tuning_flags_changes_come_first(signed_in):
    response = signed_in.get("/engines/vllm/changes/")

    sections = [section.attrs["id"] for section in changes_section(response).find_all("section")[1:]]
    assert sections == ["tuning-changes", "other-changes"]
    assert {
        "enable-extensible-kv-cache",
        "cache-aware-admission-window",
        "cache-aware-admission-threshold",
        "max-num-inflight-kv-loads",
    } <= set(names(response, "tuning-added"))
    assert {"gpu-memory-utilization", "quantization"} <= set(names(response, "tuning-changed"))
    assert "checkpoint-prepare-on-startup" in names(response, "other-added")


def test_a_changed_default_and_changed_choices_show_old_and_new(signed_in):
    response = signed_in.get("/engines/vllm/changes/")

    old_default = next(flag["default"] for flag in VLLM_033["flags"] if flag["name"] == "gpu-memory-utilization")
    assert changed(response, "gpu-memory-utilization") == {"default": f"{old_default} → none"}
    quantization = changes_section(response).by_id("changed-quantization")
    assert {value.text for value in quantization.find_all("ins")} >= {"lut_b_moe", "mxfp4_hadamard32", "w4afp8"}
    assert [value.text for value in quantization.find_all("del")] == ["fp_quant"]
    # Read aloud, the struck and marked values say which were added and which removed.
    assert changed(response, "quantization")["choices"].startswith("added ")
    assert changed(response, "quantization")["choices"].endswith(" removed fp_quant")
    assert changed(response, "spec-method")["kind"] == "choice → string"
    link = quantization.find("th").find("a")
    assert link.attrs["href"] == "/engines/?runtime=vllm#flag-quantization"


def test_comparing_backwards_lists_the_new_flags_as_removed(signed_in):
    response = signed_in.get("/engines/vllm/changes/", {"from": "0.34.0", "to": "0.33.0"})

    assert response.status_code == 200
    assert "enable-extensible-kv-cache" in names(response, "tuning-removed")
    assert changed(response, "gpu-memory-utilization")["default"].startswith("none → ")
    # A removed flag links to its row in the version that still has it.
    link = changes_section(response).by_id("flag-enable-extensible-kv-cache").find("a")
    assert link.attrs["href"] == "/engines/?runtime=vllm#flag-enable-extensible-kv-cache"


def test_a_version_compared_with_itself_is_identical(signed_in):
    response = signed_in.get("/engines/vllm/changes/", {"from": "0.33.0", "to": "0.33.0"})

    assert response.status_code == 200
    assert changes_section(response).by_id("changes-summary").text == (
        "vLLM 0.33.0 compared with itself is identical; choose two different versions."
    )


def test_an_engine_with_one_version_has_nothing_to_compare(signed_in):
    response = signed_in.get("/engines/sglang/changes/")

    assert response.status_code == 200
    assert changes_section(response).by_id("changes-summary").text == (
        "Only SGLang 0.5.23 is shipped: there is nothing to compare it with."
    )


@pytest.mark.parametrize(
    ("query", "wrong"),
    [({"from": "0.32.0"}, ["from"]), ({"to": "latest"}, ["to"]),
     ({"from": "x" * 500, "to": "../0.33.0"}, ["from", "to"]), ({"from": "0.5.23"}, ["from"])],
    ids=["old-unknown", "new-unknown", "both-hostile", "another-engine-s"],
)  # fmt: skip
def test_a_version_not_shipped_is_a_404_page_naming_the_shipped_ones(signed_in, query, wrong):
    response = signed_in.get("/engines/vllm/changes/", query)

    assert response.status_code == 404
    problems = changes_section(response).find("div", class_="error-summary").find_all("li")
    assert [problem.text.partition(":")[0] for problem in problems] == wrong
    assert all(problem.text.endswith("is not shipped; shipped: 0.34.0, 0.33.0") for problem in problems)
    assert all(len(problem.text) < 120 for problem in problems)
    assert parse(response.content).by_id("id_from").find_all("option")[0].text == "0.34.0"


@pytest.mark.parametrize("runtime", ["tensorrt", "VLLM", "vllm-0.34.0"], ids=["unknown", "wrong-case", "versioned"])
def test_the_changes_page_of_an_unknown_engine_is_not_found(signed_in, runtime):
    assert signed_in.get(f"/engines/{runtime}/changes/").status_code == 404


def test_the_changes_page_sends_an_anonymous_visitor_to_log_in(client):
    response = client.get("/engines/vllm/changes/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/engines/vllm/changes/"


@pytest.mark.parametrize(
    "query", [{}, {"from": "0.34.0", "to": "0.33.0"}, {"from": "nope"}], ids=["default", "backwards", "unknown"]
)
def test_the_changes_page_passes_the_accessibility_check(signed_in, query):
    response = signed_in.get("/engines/vllm/changes/", query)

    assert accessibility_problems(response.content) == []


# The API


def test_the_api_lists_both_engines_with_every_version_shipped_newest_first(api):
    response = api.get(API)

    assert response.status_code == 200
    assert response.json() == [
        {
            "runtime": "sglang",
            "version": "0.5.23",
            "flags": len(SGLANG["flags"]),
            "versions": [{"version": "0.5.23", "flags": len(SGLANG["flags"]), "default": True}],
        },
        {
            "runtime": "vllm",
            "version": "0.34.0",
            "flags": len(VLLM["flags"]),
            "versions": [
                {"version": "0.34.0", "flags": len(VLLM["flags"]), "default": True},
                {"version": "0.33.0", "flags": len(VLLM_033["flags"]), "default": False},
            ],
        },
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
    assert flags["enable-chunked-prefill"]["negation"] == "disable-chunked-prefill"
    assert flags["enable-prefix-caching"]["negation"] == "disable-prefix-caching"
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


def test_the_api_returns_an_older_version_by_its_number(api):
    response = api.get("/api/engines/vllm/", {"version": "0.33.0", "search": "gpu-memory-utilization"})

    assert response.status_code == 200
    body = response.json()
    assert (body["engine"], body["version"]) == ("vllm", "0.33.0")
    expected = next(flag for flag in VLLM_033["flags"] if flag["name"] == "gpu-memory-utilization")
    assert body["flags"][0]["default"] == expected["default"]
    assert api.get("/api/engines/vllm/").json()["version"] == "0.34.0"


@pytest.mark.parametrize(
    "version", ["0.35.0", "0.5.23", "../vllm-0.33.0", "x" * 300], ids=["unknown", "sglang-s", "a-path", "long"]
)
def test_an_unknown_version_answers_a_json_404_at_the_version(api, version):
    response = api.get("/api/engines/vllm/", {"version": version})

    assert response.status_code == 404
    message = f"vllm {version[:40]!r} is not shipped; shipped: 0.34.0, 0.33.0"
    assert response.json() == {"detail": message, "errors": [{"path": "version", "message": message}]}


def test_an_unknown_engine_answers_a_json_404(api):
    response = api.get("/api/engines/nope")

    assert response.status_code == 404
    assert response.json() == {"detail": "No engine 'nope'; known: sglang, vllm"}


@pytest.mark.parametrize("url", [API, "/api/engines/sglang", "/api/engines/nope"], ids=["list", "one", "unknown"])
def test_the_engines_api_needs_a_login(url):
    response = APIClient().get(url)

    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
