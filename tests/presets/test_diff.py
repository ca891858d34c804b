"""The diff between two versions of a preset: what a user reads when comparing history."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from presets.diff import ContentDiff, FieldChange, ParameterChange, diff_contents


def make_content(**overrides: Any) -> dict[str, Any]:
    content = {
        "name": "fast-decode",
        "description": "Small batches, low latency.",
        "category": "latency",
        "runtime": "sglang",
        "parameters": {"tp-size": [1, 2], "schedule-policy": ["lpm", "fcfs"], "mem-fraction-static": [0.8]},
        "metadata": {"author": "ops", "tags": ["decode"]},
    }
    return content | overrides


def with_parameters(**parameters: list[Any]) -> dict[str, Any]:
    return make_content(parameters={flag.replace("_", "-"): values for flag, values in parameters.items()})


def only_change(diff: ContentDiff) -> ParameterChange:
    assert len(diff.parameters_changed) == 1
    return diff.parameters_changed[0]


# Identity ------------------------------------------------------------------------------


def test_identical_contents_have_an_empty_diff():
    diff = diff_contents(make_content(), make_content())

    assert diff.is_empty
    assert diff.parameters_added == {}
    assert diff.parameters_removed == {}
    assert diff.parameters_changed == []
    assert diff.fields_changed == []
    assert diff.flags_reordered is False
    assert diff.summary() == "no change"


def test_a_copy_with_tuples_for_lists_is_no_change():
    old = make_content()
    new = make_content(parameters={flag: tuple(values) for flag, values in old["parameters"].items()})

    assert diff_contents(old, new).is_empty


# Flags ---------------------------------------------------------------------------------


def test_a_flag_only_in_the_new_version_is_added_with_its_values():
    old = with_parameters(tp_size=[1, 2])
    new = with_parameters(tp_size=[1, 2], chunked_prefill_size=[4096, 8192], enable_torch_compile=[True])

    diff = diff_contents(old, new)

    assert diff.parameters_added == {"chunked-prefill-size": [4096, 8192], "enable-torch-compile": [True]}
    assert list(diff.parameters_added) == ["chunked-prefill-size", "enable-torch-compile"]
    assert diff.parameters_removed == {}
    assert diff.parameters_changed == []
    assert not diff.is_empty


def test_a_flag_only_in_the_old_version_is_removed_with_its_values_in_old_order():
    old = with_parameters(schedule_policy=["lpm"], tp_size=[1, 2], max_running_requests=[64, 128])
    new = with_parameters(tp_size=[1, 2])

    diff = diff_contents(old, new)

    assert list(diff.parameters_removed.items()) == [
        ("schedule-policy", ["lpm"]),
        ("max-running-requests", [64, 128]),
    ]
    assert diff.parameters_added == {}
    assert diff.parameters_changed == []


def test_changed_flags_are_listed_in_the_new_versions_order():
    old = with_parameters(a=[1], b=[1], c=[1])
    new = with_parameters(c=[2], a=[2], b=[1])

    diff = diff_contents(old, new)

    assert [change.flag for change in diff.parameters_changed] == ["c", "a"]


def test_common_flags_in_another_order_are_reported_as_reordered():
    old = with_parameters(tp_size=[1], schedule_policy=["lpm"], mem_fraction_static=[0.8])
    new = with_parameters(schedule_policy=["lpm"], tp_size=[1], mem_fraction_static=[0.8])

    diff = diff_contents(old, new)

    assert diff.flags_reordered is True
    assert diff.parameters_changed == []
    assert not diff.is_empty
    assert diff.summary() == "flags reordered"


def test_adding_or_removing_a_flag_alone_does_not_reorder_the_others():
    old = with_parameters(a=[1], b=[1], c=[1])
    new = with_parameters(x=[1], a=[1], c=[1], y=[1])

    diff = diff_contents(old, new)

    assert diff.flags_reordered is False
    assert list(diff.parameters_added) == ["x", "y"]
    assert list(diff.parameters_removed) == ["b"]


# Values within a flag ------------------------------------------------------------------


def test_values_added_and_removed_keep_their_versions_order():
    old = with_parameters(tp_size=[8, 1, 4, 2])
    new = with_parameters(tp_size=[16, 2, 1, 32])

    change = only_change(diff_contents(old, new))

    assert change == ParameterChange("tp-size", added=[16, 32], removed=[8, 4], reordered=False)


@pytest.mark.parametrize(
    ("old_value", "new_value"),
    [(1, True), (True, 1), (1, 1.0), (1.0, 1), (True, 1.0), (1, "1"), (True, "true"), (0.0, -0.0)],
    ids=[
        "1-to-true",
        "true-to-1",
        "1-to-1.0",
        "1.0-to-1",
        "true-to-1.0",
        "1-to-string",
        "true-to-string",
        "0.0-to--0.0",
    ],
)
def test_values_with_another_json_spelling_are_a_change(old_value, new_value):
    change = only_change(diff_contents(with_parameters(flag=[old_value]), with_parameters(flag=[new_value])))

    assert change.added == [new_value]
    assert change.removed == [old_value]
    assert type(change.added[0]) is type(new_value)
    assert type(change.removed[0]) is type(old_value)


def test_one_true_and_one_point_zero_side_by_side_are_three_values():
    old = with_parameters(flag=[1, True])
    new = with_parameters(flag=[True, 1.0])

    change = only_change(diff_contents(old, new))

    assert change.added == [1.0]
    assert change.removed == [1]
    assert type(change.removed[0]) is int
    assert change.reordered is False


def test_the_same_values_in_another_order_are_only_reordered():
    old = with_parameters(schedule_policy=["lpm", "fcfs", "random"])
    new = with_parameters(schedule_policy=["fcfs", "random", "lpm"])

    diff = diff_contents(old, new)

    assert diff.parameters_changed == [ParameterChange("schedule-policy", added=[], removed=[], reordered=True)]
    assert diff.flags_reordered is False
    assert diff.summary() == "1 flag changed"


def test_a_flag_with_new_values_is_not_also_called_reordered():
    change = only_change(diff_contents(with_parameters(flag=[1, 2]), with_parameters(flag=[3, 2, 1])))

    assert change.added == [3]
    assert change.reordered is False


def test_a_value_is_compared_by_its_json_spelling_not_its_python_class():
    class Size(enum.IntEnum):
        SMALL = 1

    assert diff_contents(with_parameters(flag=[1, "a"]), with_parameters(flag=[Size.SMALL, "a"])).is_empty
    change = only_change(diff_contents(with_parameters(flag=[True]), with_parameters(flag=[Size.SMALL])))
    assert change.added == [Size.SMALL]
    assert change.removed == [True]


# Fields --------------------------------------------------------------------------------


def test_every_field_change_is_reported_in_a_fixed_order():
    old = make_content()
    new = make_content(
        metadata={"author": "ops", "tags": ["decode", "h100"]},
        runtime="vllm",
        category="throughput",
        description="Large batches.",
        name="fast-decode-v2",
    )

    diff = diff_contents(old, new)

    assert diff.fields_changed == [
        FieldChange("name", "fast-decode", "fast-decode-v2"),
        FieldChange("description", "Small batches, low latency.", "Large batches."),
        FieldChange("category", "latency", "throughput"),
        FieldChange("runtime", "sglang", "vllm"),
        FieldChange("metadata", {"author": "ops", "tags": ["decode"]}, {"author": "ops", "tags": ["decode", "h100"]}),
    ]
    assert diff.summary() == "name, description, category, runtime and metadata changed"


def test_a_change_to_runtime_alone_is_reported_alone():
    diff = diff_contents(make_content(runtime=""), make_content(runtime="vllm"))

    assert diff.fields_changed == [FieldChange("runtime", "", "vllm")]
    assert diff.parameters_changed == []


def test_metadata_key_order_alone_is_no_change():
    old = make_content(metadata={"author": "ops", "source": {"url": "x", "commit": "abc"}})
    new = make_content(metadata={"source": {"commit": "abc", "url": "x"}, "author": "ops"})

    assert diff_contents(old, new).is_empty


def test_metadata_values_compare_by_json_spelling():
    diff = diff_contents(make_content(metadata={"gpus": 1}), make_content(metadata={"gpus": True}))

    assert diff.fields_changed == [FieldChange("metadata", {"gpus": 1}, {"gpus": True})]


def test_missing_keys_count_as_their_empty_defaults():
    full = {"name": "", "description": "", "category": "", "runtime": "", "parameters": {}, "metadata": {}}

    assert diff_contents({}, full).is_empty
    assert diff_contents(full, {}).is_empty
    assert diff_contents({"metadata": None, "description": None}, full).is_empty


def test_a_missing_key_against_a_value_is_a_change_from_the_default():
    diff = diff_contents({"name": "fast"}, {"name": "fast", "description": "Now documented.", "metadata": {"a": 1}})

    assert diff.fields_changed == [
        FieldChange("description", "", "Now documented."),
        FieldChange("metadata", {}, {"a": 1}),
    ]


def test_missing_parameters_against_a_grid_adds_every_flag():
    diff = diff_contents({"name": "fast"}, {"name": "fast", "parameters": {"tp-size": [1, 2]}})

    assert diff.parameters_added == {"tp-size": [1, 2]}
    assert diff.summary() == "1 flag added"


# The API shape and the one-line summary ------------------------------------------------


def test_as_dict_is_json_and_round_trips_every_fact():
    old = make_content(
        parameters={"tp-size": [1, 2], "enable-x": [True], "policy": ["a", "b"], "gone": [0.5]},
        metadata={"b": 1, "a": 2},
    )
    new = make_content(
        name="renamed",
        parameters={"policy": ["b", "a"], "tp-size": [2, 1.0], "enable-x": [1], "fresh": ["on"]},
        metadata={"a": 2},
    )
    diff = diff_contents(old, new)

    data = json.loads(json.dumps(diff.as_dict()))

    assert data == {
        "parameters": {
            "added": {"fresh": ["on"]},
            "removed": {"gone": [0.5]},
            "changed": [
                {"flag": "policy", "added": [], "removed": [], "reordered": True},
                {"flag": "tp-size", "added": [1.0], "removed": [1], "reordered": False},
                {"flag": "enable-x", "added": [1], "removed": [True], "reordered": False},
            ],
        },
        "fields": [
            {"field": "name", "old": "fast-decode", "new": "renamed"},
            {"field": "metadata", "old": {"b": 1, "a": 2}, "new": {"a": 2}},
        ],
        "flags_reordered": True,
    }
    changed = data["parameters"]["changed"]
    assert type(changed[1]["added"][0]) is float  # 1.0 survives JSON as a float, not as 1
    assert changed[2]["added"][0] is not True  # 1 survives JSON as a number, not as true
    assert data == diff.as_dict()


def test_as_dict_of_no_change_still_has_every_key():
    assert diff_contents(make_content(), make_content()).as_dict() == {
        "parameters": {"added": {}, "removed": {}, "changed": []},
        "fields": [],
        "flags_reordered": False,
    }


@pytest.mark.parametrize(
    ("old", "new", "summary"),
    [
        ({"a": [1]}, {"a": [1], "b": [1]}, "1 flag added"),
        ({"a": [1]}, {"a": [1], "b": [1], "c": [1]}, "2 flags added"),
        ({"a": [1], "b": [1]}, {"a": [1]}, "1 flag removed"),
        ({"a": [1], "b": [1], "c": [1]}, {"a": [1]}, "2 flags removed"),
        ({"a": [1]}, {"a": [2]}, "1 flag changed"),
        ({"a": [1], "b": [1]}, {"a": [2], "b": [2]}, "2 flags changed"),
        ({"a": [1], "b": [1]}, {"a": [2], "c": [1]}, "1 flag added, 1 removed, 1 changed"),
        (
            {"a": [1], "b": [1], "c": [1], "d": [1]},
            {"a": [2], "b": [2], "c": [2], "e": [1], "f": [1]},
            "2 flags added, 1 removed, 3 changed",
        ),
        ({"a": [1], "b": [1]}, {"b": [1], "a": [1], "c": [1]}, "1 flag added, flags reordered"),
    ],
    ids=[
        "one-added",
        "two-added",
        "one-removed",
        "two-removed",
        "one-changed",
        "two-changed",
        "one-of-each",
        "several-of-each",
        "added-and-reordered",
    ],
)
def test_summary_counts_flags_in_singular_or_plural(old, new, summary):
    assert diff_contents({"parameters": old}, {"parameters": new}).summary() == summary


@pytest.mark.parametrize(
    ("changes", "summary"),
    [
        ({"name": "other"}, "name changed"),
        ({"name": "other", "description": "Other."}, "name and description changed"),
        ({"category": "other", "runtime": "vllm", "metadata": {}}, "category, runtime and metadata changed"),
    ],
    ids=["one-field", "two-fields", "three-fields"],
)
def test_summary_joins_changed_fields_as_a_sentence(changes, summary):
    assert diff_contents(make_content(), make_content(**changes)).summary() == summary


def test_summary_puts_flags_first_and_fields_after_a_semicolon():
    old = make_content(parameters={"a": [1], "b": [1], "c": [1], "d": [1]})
    new = make_content(
        name="other",
        description="Other.",
        parameters={"a": [2], "b": [2], "c": [2], "e": [1], "f": [1]},
    )

    assert diff_contents(old, new).summary() == "2 flags added, 1 removed, 3 changed; name and description changed"


# Large grids (their speed is printed by bench/history_bench.py, never asserted) ----------


def test_two_large_grids_that_differ_everywhere_report_every_flag_changed():
    # 50 flags × 100 values, every flag changed; floats and mixed types take the slower path.
    def grid(shift: int) -> dict[str, list[Any]]:
        return {
            f"flag-{flag}": [
                *(value / 4 for value in range(shift, shift + 40)),
                *range(shift, shift + 40),
                *(f"v{value}" for value in range(shift, shift + 19)),
                shift % 2 == 0,
            ]
            for flag in range(50)
        }

    old, new = make_content(parameters=grid(0)), make_content(parameters=grid(1))
    diff = diff_contents(old, new)

    assert len(diff.parameters_changed) == 50
    assert all(len(change.added) == 4 for change in diff.parameters_changed)  # 10.0, 40, "v19", False


# The diff, by property -----------------------------------------------------------------

flag_names = st.sampled_from(["tp-size", "dp-size", "schedule-policy", "mem-fraction-static", "enable-x", "chunk"])
scalars = st.one_of(
    st.sampled_from([0, 1, 2, 0.0, -0.0, 1.0, 2.0, 0.5, True, False, "1", "true", "lpm", "fcfs"]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
)
value_lists = st.lists(scalars, max_size=8, unique_by=json.dumps)
grids = st.dictionaries(flag_names, value_lists, max_size=6)
algebra = settings(max_examples=200, deadline=None)


def spellings(values: list[Any]) -> set[str]:
    return {json.dumps(value) for value in values}


@algebra
@given(grids, grids)
def test_applying_the_diff_to_the_old_grid_gives_the_new_grid_as_sets(old, new):
    diff = diff_contents({"parameters": old}, {"parameters": new})

    patched = {flag: spellings(values) for flag, values in old.items() if flag not in diff.parameters_removed}
    for change in diff.parameters_changed:
        patched[change.flag] = (patched[change.flag] - spellings(change.removed)) | spellings(change.added)
    for flag, values in diff.parameters_added.items():
        assert flag not in patched
        patched[flag] = spellings(values)

    assert patched == {flag: spellings(values) for flag, values in new.items()}


@algebra
@given(grids, grids)
def test_the_diff_agrees_with_comparing_json_spellings_one_by_one(old, new):
    diff = diff_contents({"parameters": old}, {"parameters": new})

    expected = []
    for flag, values in new.items():
        if flag in old and json.dumps(old[flag]) != json.dumps(values):
            before, after = spellings(old[flag]), spellings(values)
            expected.append(
                {
                    "flag": flag,
                    "added": [json.dumps(value) for value in values if json.dumps(value) not in before],
                    "removed": [json.dumps(value) for value in old[flag] if json.dumps(value) not in after],
                    "reordered": before == after,
                }
            )
    assert [
        {
            "flag": change.flag,
            "added": [json.dumps(value) for value in change.added],
            "removed": [json.dumps(value) for value in change.removed],
            "reordered": change.reordered,
        }
        for change in diff.parameters_changed
    ] == expected
    assert diff.is_empty == (json.dumps(old) == json.dumps(new))
