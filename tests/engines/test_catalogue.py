"""Engine catalogues: the document format, lookups and suggestions, bounds, the newest file per engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

import engines.catalogue
from engines.catalogue import MEANINGFUL_BOUNDS, Catalogue, CatalogueError, Flag, dumps, for_engine, parse


def make_document(**overrides: Any) -> dict[str, Any]:
    """A small, valid sglang catalogue document; keyword arguments replace top-level keys."""
    document: dict[str, Any] = {
        "engine": "sglang",
        "version": "0.5.0",
        "source": "written by hand for the tests",
        "flags": [
            {"name": "tp-size", "aliases": ["tensor-parallel-size", "tp"], "kind": "integer", "default": 1},
            {"name": "mem-fraction-static", "kind": "float", "help": "Fraction of GPU memory."},
            {"name": "schedule-policy", "kind": "choice", "choices": ["lpm", "fcfs"], "default": "fcfs"},
            {"name": "enable-mixed-chunk", "kind": "switch", "default": False},
            {"name": "enable-prefix-caching", "kind": "switch", "negation": "no-enable-prefix-caching"},
            {"name": "json-model-override-args", "kind": "json", "default": "{}"},
            {"name": "cuda-graph-bs", "kind": "list"},
            {"name": "served-model-name", "kind": "string", "deprecated": True},
            {"name": "max-loras", "kind": "integer", "minimum": 0, "maximum": 8},
        ],
    }
    document.update(overrides)
    return document


def with_flags(*flags: dict[str, Any]) -> dict[str, Any]:
    return make_document(flags=list(flags))


def test_a_good_document_is_parsed_into_its_flags():
    catalogue = parse(make_document())

    assert catalogue.engine == "sglang"
    assert catalogue.version == "0.5.0"
    assert catalogue.source == "written by hand for the tests"
    assert sorted(catalogue.flags) == sorted(entry["name"] for entry in make_document()["flags"])
    assert catalogue.flags["tp-size"] == Flag(
        name="tp-size", kind="integer", aliases=("tensor-parallel-size", "tp"), default=1, minimum=1
    )
    assert catalogue.flags["schedule-policy"].choices == ("lpm", "fcfs")
    assert catalogue.flags["enable-prefix-caching"].negation == "no-enable-prefix-caching"
    assert catalogue.flags["served-model-name"].deprecated is True
    assert catalogue.flags["mem-fraction-static"].help == "Fraction of GPU memory."


def test_a_document_without_a_source_has_an_empty_one():
    document = make_document()
    del document["source"]

    assert parse(document).source == ""


def test_choices_are_kept_as_text_whatever_their_json_type():
    catalogue = parse(with_flags({"name": "page-size", "kind": "choice", "choices": [1, 16, 64]}))

    assert catalogue.flags["page-size"].choices == ("1", "16", "64")


def missing(key: str) -> dict[str, Any]:
    document = make_document()
    del document[key]
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(["not", "an", "object"], "catalogue: expected an object", id="not-an-object"),
        pytest.param(missing("engine"), "catalogue: engine is missing", id="no-engine"),
        pytest.param(missing("version"), "catalogue: version is missing", id="no-version"),
        pytest.param(missing("flags"), "catalogue: flags is missing", id="no-flags"),
        pytest.param(make_document(flags={"tp-size": {}}), "catalogue.flags: expected a list", id="flags-not-a-list"),
        pytest.param(
            with_flags({"name": "tp-size", "kind": "integer"}, {"kind": "integer"}),
            "catalogue.flags[1]: expected an object with a name",
            id="flag-without-a-name",
        ),
        pytest.param(
            with_flags("tp-size"), "catalogue.flags[0]: expected an object with a name", id="flag-not-an-object"
        ),
        pytest.param(
            with_flags({"name": 7, "kind": "integer"}),
            "catalogue.flags[0]: expected an object with a name",
            id="name-not-text",
        ),
        pytest.param(
            with_flags({"name": "tp_Size", "kind": "integer"}),
            "catalogue.flags[0].name: 'tp_Size' is not a flag name",
            id="bad-name",
        ),
        pytest.param(
            with_flags({"name": "--tp-size", "kind": "integer"}),
            "catalogue.flags[0].name: '--tp-size' is not a flag name",
            id="name-with-dashes",
        ),
        pytest.param(
            with_flags({"name": "tp-size", "kind": "int"}),
            "catalogue.flags[0].kind: expected one of integer, float, switch, choice, string, json, list, size",
            id="unknown-kind",
        ),
        pytest.param(
            with_flags({"name": "tp-size"}),
            "catalogue.flags[0].kind: expected one of integer, float, switch, choice, string, json, list, size",
            id="no-kind",
        ),
        pytest.param(
            with_flags({"name": "schedule-policy", "kind": "choice"}),
            "catalogue.flags[0].choices: a choice flag needs its list of choices",
            id="choice-without-choices",
        ),
        pytest.param(
            with_flags({"name": "schedule-policy", "kind": "choice", "choices": []}),
            "catalogue.flags[0].choices: a choice flag needs its list of choices",
            id="choice-with-no-choices",
        ),
        pytest.param(
            with_flags(
                {"name": "tp-size", "kind": "integer", "aliases": ["tp"]},
                {"name": "tensor-parallel-size", "kind": "integer", "aliases": ["tp"]},
            ),
            "sglang 0.5.0: tp names both tensor-parallel-size and tp-size",
            id="two-flags-claim-an-alias",
        ),
        pytest.param(
            with_flags(
                {"name": "tp-size", "kind": "integer"},
                {"name": "tensor-parallel-size", "kind": "integer", "aliases": ["tp-size"]},
            ),
            "sglang 0.5.0: tp-size names both tensor-parallel-size and tp-size",
            id="an-alias-claims-another-flags-name",
        ),
    ],
)
def test_a_bad_document_is_refused_with_a_message_naming_the_place(document, message):
    with pytest.raises(CatalogueError) as raised:
        parse(document)

    assert str(raised.value) == message


def test_the_place_in_a_message_starts_with_the_name_given_for_the_document():
    with pytest.raises(CatalogueError) as raised:
        parse(with_flags({"name": "tp-size", "kind": "int"}), "sglang-0.5.0.json")

    assert str(raised.value).startswith("sglang-0.5.0.json.flags[0].kind: ")


def test_a_flag_is_found_by_its_name_and_by_each_alias():
    catalogue = parse(make_document())
    tp_size = catalogue.flags["tp-size"]

    assert catalogue.lookup("tp-size") is tp_size
    assert catalogue.lookup("tensor-parallel-size") is tp_size
    assert catalogue.lookup("tp") is tp_size
    assert catalogue.lookup("tp-sizes") is None


@pytest.mark.parametrize(
    ("misspelt", "suggestion"),
    [
        pytest.param("enable-mixed-chunking", "enable-mixed-chunk", id="one-suffix-too-many"),
        pytest.param("mem-fraction-statc", "mem-fraction-static", id="a-letter-missing"),
        pytest.param("tensor-paralel-size", "tensor-parallel-size", id="an-alias"),
        pytest.param("zzzzqqqq", None, id="nonsense"),
        pytest.param("port", None, id="an-unrelated-flag"),
    ],
)
def test_suggest_names_the_closest_known_flag_or_nothing(misspelt, suggestion):
    assert parse(make_document()).suggest(misspelt) == suggestion


def test_meaningful_bounds_apply_to_a_flag_the_file_leaves_unbounded():
    flag = parse(make_document()).flags["mem-fraction-static"]

    assert (flag.minimum, flag.maximum, flag.exclusive_minimum) == (0, 1, True)
    assert flag.bounds_text == "(0, 1]"


def test_bounds_written_in_the_file_take_precedence_over_meaningful_ones():
    flag = parse(with_flags({"name": "tp-size", "kind": "integer", "minimum": 2, "maximum": 16})).flags["tp-size"]

    assert (flag.minimum, flag.maximum) == (2, 16)


def test_a_flag_without_meaningful_bounds_stays_unbounded():
    flag = parse(make_document()).flags["schedule-policy"]

    assert (flag.minimum, flag.maximum, flag.exclusive_minimum) == (None, None, False)


@pytest.mark.parametrize("name", sorted(MEANINGFUL_BOUNDS))
def test_every_meaningful_bound_reaches_the_flag_of_that_name(name):
    flag = parse(with_flags({"name": name, "kind": "float"})).flags[name]
    bounds = MEANINGFUL_BOUNDS[name]

    assert flag.minimum == bounds.get("minimum")
    assert flag.maximum == bounds.get("maximum")
    assert flag.exclusive_minimum is bool(bounds.get("exclusive_minimum"))


@pytest.mark.parametrize(
    ("bounds", "text"),
    [
        pytest.param({"minimum": 0, "maximum": 1, "exclusive_minimum": True}, "(0, 1]", id="exclusive-minimum"),
        pytest.param({"minimum": 0, "maximum": 1}, "[0, 1]", id="closed"),
        pytest.param({"minimum": 0.5, "maximum": 1.5}, "[0.5, 1.5]", id="fractions"),
        pytest.param({"minimum": 1.0}, ">= 1", id="minimum-a-whole-float"),
        pytest.param({"minimum": 0, "exclusive_minimum": True}, "> 0", id="exclusive-minimum-only"),
        pytest.param({"maximum": 10}, "<= 10", id="maximum-only"),
        pytest.param({}, "", id="unbounded"),
    ],
)
def test_bounds_text_reads_as_a_user_writes_bounds(bounds, text):
    assert Flag(name="some-size", kind="float", **bounds).bounds_text == text


def test_dumps_then_parse_gives_the_same_catalogue():
    catalogue = parse(make_document())

    again = parse(json.loads(dumps(catalogue)))

    assert again == catalogue
    assert list(again.flags.values()) == list(catalogue.flags.values())


def test_dumps_writes_flags_sorted_by_name_and_ends_with_a_newline():
    text = dumps(parse(make_document()))

    names = [entry["name"] for entry in json.loads(text)["flags"]]
    assert names == sorted(names)
    assert text.endswith("}\n")


def test_from_flags_round_trips_through_dumps():
    catalogue = Catalogue.from_flags(
        "vllm",
        "0.11.0",
        "by hand",
        [
            Flag(name="tensor-parallel-size", kind="integer", aliases=("tp",), minimum=1),
            Flag(name="enable-prefix-caching", kind="switch", negation="no-enable-prefix-caching", default=None),
            Flag(name="kv-cache-dtype", kind="choice", choices=("auto", "fp8"), default="auto"),
            Flag(name="cuda-graph-sizes", kind="list", default=[1, 2, 4]),
        ],
    )

    assert parse(json.loads(dumps(catalogue))) == catalogue


def test_dumps_then_parse_keeps_a_relaxed_meaningful_bound():
    catalogue = parse(with_flags({"name": "mem-fraction-static", "kind": "float", "exclusive_minimum": False}))
    assert catalogue.flags["mem-fraction-static"].bounds_text == "[0, 1]"

    assert parse(json.loads(dumps(catalogue))) == catalogue


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty engines/data/ in a temporary folder; for_engine's per-process cache cleared on both sides."""
    monkeypatch.setattr(engines.catalogue, "DATA_DIR", tmp_path)
    engines.catalogue.clear_cache()
    yield tmp_path
    engines.catalogue.clear_cache()


def write_catalogue(folder, engine: str, version: str) -> None:
    document = make_document(engine=engine, version=version)
    (folder / f"{engine}-{version}.json").write_text(json.dumps(document))


def test_for_engine_reads_the_highest_version_among_several_files(data_dir):
    for version in ("0.4.9", "0.10.0", "0.4.10", "0.9.1"):
        write_catalogue(data_dir, "sglang", version)
    write_catalogue(data_dir, "vllm", "0.11.0")

    catalogue = for_engine("sglang")

    assert catalogue is not None
    assert (catalogue.engine, catalogue.version) == ("sglang", "0.10.0")
    assert for_engine("vllm").version == "0.11.0"


def test_for_engine_reads_each_file_once_per_process(data_dir):
    write_catalogue(data_dir, "sglang", "0.5.0")
    first = for_engine("sglang")
    write_catalogue(data_dir, "sglang", "0.6.0")

    assert for_engine("sglang") is first


def test_for_engine_gives_nothing_for_an_engine_without_a_file(data_dir):
    write_catalogue(data_dir, "sglang", "0.5.0")

    assert for_engine("tensorrt-llm") is None


def test_for_engine_names_the_file_of_a_broken_catalogue(data_dir):
    (data_dir / "sglang-0.5.0.json").write_text(json.dumps(make_document(flags=[{"name": "x", "kind": "?"}])))

    with pytest.raises(CatalogueError, match=r"^sglang-0\.5\.0\.json\.flags\[0\]\.kind: "):
        for_engine("sglang")


def test_engines_lists_each_engine_with_a_file_once(data_dir):
    write_catalogue(data_dir, "vllm", "0.11.0")
    write_catalogue(data_dir, "sglang", "0.4.9")
    write_catalogue(data_dir, "sglang", "0.5.0")

    assert engines.catalogue.engines() == ["sglang", "vllm"]
