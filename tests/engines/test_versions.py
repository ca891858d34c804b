"""engines.versions: what changed in an engine's flags between two of its catalogues (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from engines.catalogue import Catalogue, for_engine, parse, versions
from engines.versions import Change, compare


def flag(name: str, **overrides: Any) -> dict[str, Any]:
    return {"name": name, "kind": "integer", "aliases": [], "default": None, "help": "", **overrides}


def make_catalogue(version: str, *flags: dict[str, Any], engine: str = "vllm") -> Catalogue:
    return parse({"engine": engine, "version": version, "source": "test", "flags": list(flags)})


def test_a_catalogue_compared_with_itself_has_no_differences():
    catalogue = make_catalogue("0.33.0", flag("max-num-seqs"), flag("port", default=8000))

    differences = compare(catalogue, catalogue)

    assert differences.is_empty
    assert (differences.added, differences.removed, differences.changed) == ((), (), ())


def test_flags_only_in_the_new_version_are_added_and_only_in_the_old_removed():
    old = make_catalogue("0.33.0", flag("port"), flag("old-logging", kind="switch"))
    new = make_catalogue("0.34.0", flag("port"), flag("max-num-inflight-kv-loads"), flag("cache-aware-admission"))

    differences = compare(old, new)

    assert [added.name for added in differences.added] == ["cache-aware-admission", "max-num-inflight-kv-loads"]
    assert [removed.name for removed in differences.removed] == ["old-logging"]
    assert differences.changed == ()
    assert (differences.engine, differences.old_version, differences.new_version) == ("vllm", "0.33.0", "0.34.0")


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param({"kind": "choice", "choices": ["eagle", "ngram"]}, {"kind": "string"},
                     [Change("kind", "choice", "string"), Change("choices", ("eagle", "ngram"), None)],
                     id="a-choice-that-lost-its-choices"),
        pytest.param({"kind": "float", "default": 0.9}, {"kind": "float", "default": None},
                     [Change("default", 0.9, None)], id="a-default-now-unset"),
        pytest.param({"default": 1}, {"default": 1.0}, [Change("default", 1, 1.0)], id="an-integer-now-a-float"),
        pytest.param({"kind": "choice", "choices": ["awq", "fp_quant"]},
                     {"kind": "choice", "choices": ["awq", "w4afp8"]},
                     [Change("choices", ("awq", "fp_quant"), ("awq", "w4afp8"))], id="choices"),
        pytest.param({"minimum": 0, "exclusive_minimum": True}, {"minimum": 0},
                     [Change("bounds", "> 0", ">= 0")], id="a-bound-relaxed"),
        pytest.param({}, {"maximum": 64}, [Change("bounds", None, "<= 64")], id="a-bound-added"),
        pytest.param({"aliases": ["tp"]}, {"aliases": ["tp", "tensor-parallel"]},
                     [Change("aliases", ("tp",), ("tp", "tensor-parallel"))], id="an-alias-added"),
        pytest.param({"kind": "switch", "negation": "no-enable-x"}, {"kind": "switch", "negation": "disable-x"},
                     [Change("negation", "no-enable-x", "disable-x")], id="the-off-form"),
        pytest.param({}, {"deprecated": True}, [Change("deprecated", False, True)], id="deprecated"),
        pytest.param({"help": "The size."}, {"help": "The size, in tokens."}, [], id="help-is-not-compared"),
    ],
)  # fmt: skip
def test_each_attribute_a_preset_relies_on_is_compared(before, after, expected):
    old = make_catalogue("0.33.0", flag("x", **before))
    new = make_catalogue("0.34.0", flag("x", **after))

    differences = compare(old, new)

    assert [list(item.changes) for item in differences.changed] == ([expected] if expected else [])
    assert (differences.added, differences.removed) == ((), ())


def test_a_list_attribute_tells_what_it_gained_and_lost():
    change = Change("choices", ("awq", "fp_quant", "fp8"), ("awq", "fp8", "lut_b_moe", "w4afp8"))

    assert (change.gained, change.lost) == (("lut_b_moe", "w4afp8"), ("fp_quant",))
    assert (Change("default", 0.9, None).gained, Change("choices", ("a",), None).lost) == ((), ())


def test_a_flag_renamed_with_its_old_name_kept_as_an_alias_is_changed_not_removed():
    old = make_catalogue("0.33.0", flag("max-seq-len-to-capture", default=8192))
    new = make_catalogue("0.34.0", flag("max-cuda-graph-len", aliases=["max-seq-len-to-capture"], default=8192))

    differences = compare(old, new)

    assert (differences.added, differences.removed) == ((), ())
    [renamed] = differences.changed
    assert (renamed.old.name, renamed.name) == ("max-seq-len-to-capture", "max-cuda-graph-len")
    assert renamed.changes == (
        Change("name", "max-seq-len-to-capture", "max-cuda-graph-len"),
        Change("aliases", (), ("max-seq-len-to-capture",)),
    )


def test_a_flag_folded_into_one_that_was_already_there_is_removed():
    old = make_catalogue("0.33.0", flag("tp-size"), flag("tp"))
    new = make_catalogue("0.34.0", flag("tp-size", aliases=["tp"]))

    differences = compare(old, new)

    assert [removed.name for removed in differences.removed] == ["tp"]
    assert [item.changes for item in differences.changed] == [(Change("aliases", (), ("tp",)),)]


def test_two_old_flags_kept_as_aliases_of_one_new_flag_rename_one_and_remove_the_other():
    old = make_catalogue("0.33.0", flag("a-len"), flag("b-len"))
    new = make_catalogue("0.34.0", flag("len", aliases=["a-len", "b-len"]))

    differences = compare(old, new)

    assert [item.old.name for item in differences.changed] == ["a-len"]
    assert [removed.name for removed in differences.removed] == ["b-len"]
    assert differences.added == ()


# The versions compared are looked up among the shipped ones: a version from a request never names a file.


@pytest.mark.parametrize(
    ("engine", "version"),
    [("vllm", "0.35.0"), ("vllm", "vllm-0.33.0"), ("vllm", "../vllm-0.33.0"), ("vllm", "*"), ("vllm", ""),
     ("sglang", "0.33.0"), ("tensorrt", "0.33.0")],
    ids=["not-shipped", "the-file-name", "a-path", "a-pattern", "empty", "another-engine-s", "no-such-engine"],
)  # fmt: skip
def test_a_version_not_shipped_for_that_engine_has_no_catalogue(engine, version):
    assert "0.33.0" in versions("vllm")
    assert for_engine(engine, version) is None


def test_the_two_shipped_vllm_versions_differ_as_the_release_notes_say():
    differences = compare(for_engine("vllm", "0.33.0"), for_engine("vllm", "0.34.0"))

    added = {flag.name for flag in differences.added}
    assert {"enable-extensible-kv-cache", "cache-aware-admission-window", "max-num-inflight-kv-loads"} <= added
    changed = {item.name: {change.attribute: change for change in item.changes} for item in differences.changed}
    assert changed["gpu-memory-utilization"]["default"].new is None
    assert set(changed["quantization"]["choices"].gained) >= {"lut_b_moe", "mxfp4_hadamard32", "w4afp8"}
    assert changed["quantization"]["choices"].lost == ("fp_quant",)
