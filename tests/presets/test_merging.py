"""The merge engine: the seed's examples, each conflict kind, type-aware values, the algebra."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import presets
from presets.merging import (
    Conflict,
    ConflictKind,
    DuplicatePresetError,
    MergeResult,
    MergeStrategy,
    PresetInput,
    count_combinations,
    format_values,
    grid_summary,
    merge,
)
from presets.validators import normalize_parameters


def make_input(name: str, parameters: Mapping[str, Any]) -> PresetInput:
    """A preset as the merge sees it, its parameters passed through the real boundary first."""
    return PresetInput(name, normalize_parameters(dict(parameters)))


def seed_a() -> PresetInput:
    return make_input("A", {"tp-size": [1, 2], "mem-fraction": [0.8]})


def seed_b() -> PresetInput:
    return make_input("B", {"tp-size": [2, 4], "schedule-policy": ["lpm"]})


SYSTEM_PRESETS_FILE = Path(presets.__file__).parent / "data" / "system_presets.json"


@cache
def _system_definitions() -> dict[str, dict[str, Any]]:
    document = json.loads(SYSTEM_PRESETS_FILE.read_text())
    return {definition["name"]: definition for definition in document["presets"]}


def system_preset(name: str) -> PresetInput:
    return make_input(name, _system_definitions()[name]["parameters"])


def conflicts_by_parameter(result: MergeResult) -> dict[str, Conflict]:
    found = {conflict.parameter: conflict for conflict in result.conflicts}
    assert len(found) == len(result.conflicts), "one conflict per flag at most"
    return found


def value_key(value: object) -> tuple[bool, object]:
    """An oracle independent of merging.identity: booleans apart from numbers, 1 == 1.0."""
    return (type(value) is bool, value)


def keys_of(values: Sequence[object]) -> list[tuple[bool, object]]:
    return [value_key(value) for value in values]


# The seed's "Merge Strategy Comparison" ------------------------------------------------


def test_union_of_the_seed_presets_combines_every_value_once_without_conflicts():
    result = merge([seed_a(), seed_b()], MergeStrategy.UNION)

    assert result.parameters == {"tp-size": [1, 2, 4], "mem-fraction": [0.8], "schedule-policy": ["lpm"]}
    assert list(result.parameters) == ["tp-size", "mem-fraction", "schedule-policy"]
    assert result.conflicts == []
    assert result.applied_presets == ["A", "B"]
    assert result.strategy is MergeStrategy.UNION


def test_union_is_the_default_strategy():
    assert merge([seed_a(), seed_b()]).parameters == merge([seed_a(), seed_b()], "union").parameters
    assert merge([seed_a(), seed_b()]).strategy is MergeStrategy.UNION


def test_intersection_of_the_seed_presets_keeps_only_the_shared_value():
    result = merge([seed_a(), seed_b()], MergeStrategy.INTERSECTION)

    assert result.parameters == {"tp-size": [2]}
    conflicts = conflicts_by_parameter(result)
    assert set(conflicts) == {"mem-fraction", "schedule-policy"}
    assert all(conflict.kind is ConflictKind.MISSING for conflict in conflicts.values())


def test_intersection_reports_which_preset_lacks_each_dropped_flag():
    conflicts = conflicts_by_parameter(merge([seed_a(), seed_b()], MergeStrategy.INTERSECTION))

    mem_fraction = conflicts["mem-fraction"]
    assert mem_fraction.presets == ("B",)
    assert mem_fraction.values == {"A": [0.8]}
    assert mem_fraction.reason == "mem-fraction is dropped: not set in B (only in A)"

    schedule_policy = conflicts["schedule-policy"]
    assert schedule_policy.presets == ("A",)
    assert schedule_policy.values == {"B": ["lpm"]}
    assert schedule_policy.reason == "schedule-policy is dropped: not set in A (only in B)"


def test_last_wins_of_the_seed_presets_lets_b_replace_tp_size():
    result = merge([seed_a(), seed_b()], MergeStrategy.LAST_WINS)

    assert result.parameters == {"tp-size": [2, 4], "mem-fraction": [0.8], "schedule-policy": ["lpm"]}
    [conflict] = result.conflicts
    assert conflict.kind is ConflictKind.OVERRIDDEN
    assert conflict.parameter == "tp-size"
    assert conflict.reason == "tp-size overridden by B (was [1, 2], now [2, 4])"
    assert conflict.overridden_by == "B"
    assert conflict.previous_values == (1, 2)
    assert conflict.new_values == (2, 4)
    assert conflict.presets == ("A", "B")
    assert conflict.values == {"A": [1, 2], "B": [2, 4]}


# The seed's user journey with the system presets ----------------------------------------


def test_system_presets_file_holds_the_presets_the_journey_uses():
    assert {"Memory Efficient", "High Throughput"} <= set(_system_definitions())


def test_union_of_high_throughput_and_memory_efficient_tries_every_gpu_count_and_memory_fraction():
    result = merge([system_preset("High Throughput"), system_preset("Memory Efficient")], "union")

    assert result.parameters == {
        "tp-size": [1, 2, 4],
        "mem-fraction-static": [0.7, 0.75, 0.9],
        "schedule-policy": ["fcfs"],
        "enable-mixed-chunk": [True],
        "chunked-prefill-size": [2048],
    }
    assert result.sources["tp-size"] == [["Memory Efficient"], ["High Throughput"], ["High Throughput"]]
    assert result.combinations == 3 * 3


def test_union_of_high_throughput_and_memory_efficient_warns_about_the_memory_fractions():
    result = merge([system_preset("High Throughput"), system_preset("Memory Efficient")], "union")

    conflicts = conflicts_by_parameter(result)
    # tp-size [2, 4] and [1] share no value either: the same warning, for the same reason.
    assert set(conflicts) == {"mem-fraction-static", "tp-size"}
    memory = conflicts["mem-fraction-static"]
    assert memory.kind is ConflictKind.DISJOINT
    assert "Memory Efficient wants 0.7, 0.75" in memory.reason
    assert "High Throughput wants 0.9" in memory.reason
    assert "union will try all three" in memory.reason
    assert memory.presets == ("High Throughput", "Memory Efficient")
    assert memory.values == {"High Throughput": [0.9], "Memory Efficient": [0.7, 0.75]}
    assert conflicts["tp-size"].kind is ConflictKind.DISJOINT


@pytest.mark.parametrize(
    ("order", "tp_size", "mem_fraction_static", "overridden_by"),
    [
        pytest.param(["High Throughput", "Memory Efficient"], [1], [0.7, 0.75], "Memory Efficient", id="memory-last"),
        pytest.param(["Memory Efficient", "High Throughput"], [2, 4], [0.9], "High Throughput", id="throughput-last"),
    ],
)
def test_last_wins_follows_the_order_the_user_chose(order, tp_size, mem_fraction_static, overridden_by):
    result = merge([system_preset(name) for name in order], MergeStrategy.LAST_WINS)

    assert result.parameters["tp-size"] == tp_size
    assert result.parameters["mem-fraction-static"] == mem_fraction_static
    # Flags only one preset sets survive whatever the order.
    assert result.parameters["chunked-prefill-size"] == [2048]
    assert result.parameters["enable-mixed-chunk"] == [True]
    assert {conflict.parameter for conflict in result.conflicts} == {"tp-size", "mem-fraction-static"}
    assert {conflict.overridden_by for conflict in result.conflicts} == {overridden_by}
    assert result.applied_presets == order


# Conflict kinds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "presets", "parameter", "kind"),
    [
        pytest.param(
            "union",
            [make_input("A", {"tp-size": [1]}), make_input("B", {"tp-size": [2]})],
            "tp-size",
            ConflictKind.DISJOINT,
            id="union-disjoint",
        ),
        pytest.param(
            "intersection",
            [make_input("A", {"tp-size": [1], "x": [1]}), make_input("B", {"tp-size": [1]})],
            "x",
            ConflictKind.MISSING,
            id="intersection-missing",
        ),
        pytest.param(
            "intersection",
            [make_input("A", {"tp-size": [1, 2]}), make_input("B", {"tp-size": [4]})],
            "tp-size",
            ConflictKind.NO_COMMON_VALUES,
            id="intersection-no-common-values",
        ),
        pytest.param(
            "last_wins",
            [make_input("A", {"tp-size": [1]}), make_input("B", {"tp-size": [2]})],
            "tp-size",
            ConflictKind.OVERRIDDEN,
            id="last-wins-overridden",
        ),
    ],
)
def test_each_strategy_reports_its_conflict_kind(strategy, presets, parameter, kind):
    [conflict] = merge(presets, strategy).conflicts

    assert conflict.parameter == parameter
    assert conflict.kind is kind


def test_intersection_drops_a_flag_with_no_common_value_and_says_what_each_wanted():
    a = make_input("A", {"tp-size": [1, 2], "mem-fraction": [0.8]})
    b = make_input("B", {"tp-size": [4], "mem-fraction": [0.8]})

    result = merge([a, b], "intersection")

    assert result.parameters == {"mem-fraction": [0.8]}
    [conflict] = result.conflicts
    assert conflict.reason == "tp-size is dropped: no value common to all presets (A wants 1, 2; B wants 4)"
    assert conflict.presets == ("A", "B")
    assert conflict.values == {"A": [1, 2], "B": [4]}


@pytest.mark.parametrize(
    ("a_values", "b_values"),
    [
        pytest.param([1, 2], [2, 3], id="one-shared-number"),
        pytest.param(["fcfs", "lpm"], ["lpm"], id="subset-of-strings"),
        pytest.param([1, 2], [2, 1], id="same-values-other-order"),
        pytest.param([1], [1.0], id="int-and-equal-float"),
    ],
)
def test_union_reports_no_conflict_when_the_presets_share_a_value(a_values, b_values):
    result = merge([make_input("A", {"x": a_values}), make_input("B", {"x": b_values})], "union")

    assert result.conflicts == []


def test_union_reports_a_flag_set_by_one_preset_only_as_no_conflict():
    result = merge([make_input("A", {"x": [1]}), make_input("B", {"y": [2]})], "union")

    assert result.conflicts == []
    assert result.parameters == {"x": [1], "y": [2]}


def test_union_flags_disjoint_when_one_of_three_presets_shares_nothing():
    presets = [
        make_input("A", {"x": [1, 2]}),
        make_input("B", {"x": [2]}),
        make_input("C", {"x": [5]}),
    ]

    [conflict] = merge(presets, "union").conflicts

    assert conflict.kind is ConflictKind.DISJOINT
    assert conflict.presets == ("A", "B", "C")
    assert conflict.reason == "x: A wants 1, 2; B wants 2; C wants 5 — union will try all three"


def test_union_calls_a_flag_disjoint_when_no_single_value_suits_every_preset():
    # Each pair shares a value, but no one value is wanted by all three: no experiment
    # satisfies every preset at once, which is what the user needs to know.
    presets = [
        make_input("A", {"x": [1, 2]}),
        make_input("B", {"x": [2, 3]}),
        make_input("C", {"x": [1, 3]}),
    ]

    [conflict] = merge(presets, "union").conflicts

    assert conflict.kind == "disjoint"
    assert conflict.presets == ("A", "B", "C")


@pytest.mark.parametrize(
    ("a_values", "b_values", "tries"),
    [
        pytest.param([1], [2], "both", id="two-values"),
        pytest.param([1], [2, 3], "all three", id="three-values"),
        pytest.param([1], list(range(2, 11)), "all ten", id="ten-values"),
        pytest.param([1], list(range(2, 12)), "all 11", id="eleven-values"),
    ],
)
def test_disjoint_reason_counts_what_union_will_try(a_values, b_values, tries):
    [conflict] = merge([make_input("A", {"x": a_values}), make_input("B", {"x": b_values})], "union").conflicts

    assert conflict.reason.endswith(f"— union will try {tries}")


@pytest.mark.parametrize(
    ("a_values", "b_values"),
    [
        pytest.param([1, 2], [1, 2], id="identical"),
        pytest.param([1, 2], [2, 1], id="other-order"),
        pytest.param([1], [1.0], id="int-and-equal-float"),
        pytest.param(["fcfs", True], [True, "fcfs"], id="mixed-types"),
    ],
)
def test_last_wins_does_not_call_an_equal_set_of_values_a_conflict(a_values, b_values):
    result = merge([make_input("A", {"x": a_values}), make_input("B", {"x": b_values})], "last_wins")

    assert result.conflicts == []
    assert result.parameters == {"x": b_values}
    assert result.sources == {"x": [["B"]] * len(b_values)}


def test_last_wins_calls_true_replacing_1_a_conflict():
    [conflict] = merge([make_input("A", {"x": [1]}), make_input("B", {"x": [True]})], "last_wins").conflicts

    assert conflict.reason == "x overridden by B (was [1], now [true])"


def test_last_wins_reports_each_override_against_the_preset_it_replaced():
    presets = [make_input("A", {"x": [1]}), make_input("B", {"x": [2]}), make_input("C", {"x": ["auto"]})]

    result = merge(presets, "last_wins")

    assert result.parameters == {"x": ["auto"]}
    assert [(c.presets, c.previous_values, c.new_values) for c in result.conflicts] == [
        (("A", "B"), (1,), (2,)),
        (("B", "C"), (2,), ("auto",)),
    ]
    assert result.conflicts[1].reason == "x overridden by C (was [2], now [auto])"


# Values: type-aware identity and order -------------------------------------------------


def test_union_keeps_true_and_1_apart():
    result = merge([make_input("A", {"x": [1]}), make_input("B", {"x": [True]})], "union")

    assert result.parameters["x"] == [1, True]
    assert [type(value) for value in result.parameters["x"]] == [int, bool]
    assert result.conflicts[0].kind is ConflictKind.DISJOINT


def test_union_treats_1_and_1_0_as_one_value_spelled_as_first_seen():
    result = merge([make_input("A", {"x": [1.0]}), make_input("B", {"x": [1, 0.5]})], "union")

    assert result.parameters["x"] == [0.5, 1.0]
    assert type(result.parameters["x"][1]) is float
    assert result.sources["x"] == [["B"], ["A", "B"]]
    assert result.conflicts == []


def test_intersection_keeps_true_and_1_apart():
    a = make_input("A", {"x": [1, True], "y": [False]})
    b = make_input("B", {"x": [True], "y": [0]})

    result = merge([a, b], "intersection")

    assert result.parameters == {"x": [True]}
    assert type(result.parameters["x"][0]) is bool
    assert [conflict.kind for conflict in result.conflicts] == [ConflictKind.NO_COMMON_VALUES]


def test_intersection_treats_1_and_1_0_as_one_value_spelled_by_the_first_preset():
    result = merge([make_input("A", {"x": [2.0, 1]}), make_input("B", {"x": [1.0, 2]})], "intersection")

    assert result.parameters["x"] == [2.0, 1]
    assert [type(value) for value in result.parameters["x"]] == [float, int]


def test_union_sorts_numbers_ascending_whatever_the_preset_order():
    result = merge([make_input("A", {"x": [8, 0.5]}), make_input("B", {"x": [4, -1, 2.5]})], "union")

    assert result.parameters["x"] == [-1, 0.5, 2.5, 4, 8]
    assert result.sources["x"] == [["B"], ["A"], ["B"], ["B"], ["A"]]


@pytest.mark.parametrize(
    ("a_values", "b_values", "merged"),
    [
        pytest.param(["lpm", "fcfs"], ["random", "fcfs"], ["lpm", "fcfs", "random"], id="strings"),
        pytest.param([True], [False], [True, False], id="booleans"),
        pytest.param([4, "auto"], [1, "auto"], [4, "auto", 1], id="numbers-mixed-with-text"),
        pytest.param([2, True], [1], [2, True, 1], id="numbers-mixed-with-booleans"),
    ],
)
def test_union_keeps_non_numeric_lists_in_first_seen_order(a_values, b_values, merged):
    result = merge([make_input("A", {"x": a_values}), make_input("B", {"x": b_values})], "union")

    assert result.parameters["x"] == merged


def test_intersection_keeps_the_first_presets_order():
    a = make_input("A", {"policy": ["random", "lpm", "fcfs"], "tp-size": [4, 1, 2]})
    b = make_input("B", {"policy": ["fcfs", "lpm", "random"], "tp-size": [1, 2, 4]})

    result = merge([a, b], "intersection")

    assert result.parameters == {"policy": ["random", "lpm", "fcfs"], "tp-size": [4, 1, 2]}


def test_intersection_reports_flags_only_later_presets_set_as_missing():
    presets = [
        make_input("A", {"tp-size": [1]}),
        make_input("B", {"tp-size": [1], "dtype": ["auto"]}),
        make_input("C", {"tp-size": [1], "dtype": ["auto"], "seed": [0]}),
    ]

    conflicts = conflicts_by_parameter(merge(presets, "intersection"))

    assert conflicts["dtype"].kind is ConflictKind.MISSING
    assert conflicts["dtype"].presets == ("A",)
    assert conflicts["dtype"].reason == "dtype is dropped: not set in A (only in B and C)"
    assert conflicts["seed"].presets == ("A", "B")
    assert conflicts["seed"].reason == "seed is dropped: not set in A and B (only in C)"


# Provenance, counts and edges ----------------------------------------------------------


@pytest.mark.parametrize("strategy", list(MergeStrategy), ids=str)
def test_sources_line_up_with_the_values(strategy):
    result = merge([seed_a(), seed_b()], strategy)

    assert set(result.sources) == set(result.parameters)
    for flag, values in result.parameters.items():
        assert len(result.sources[flag]) == len(values)


@pytest.mark.parametrize(
    ("strategy", "sources"),
    [
        pytest.param(
            "union",
            {"tp-size": [["A"], ["A", "B"], ["B"]], "mem-fraction": [["A"]], "schedule-policy": [["B"]]},
            id="union-names-every-contributor",
        ),
        pytest.param("intersection", {"tp-size": [["A", "B"]]}, id="intersection-names-every-preset"),
        pytest.param(
            "last_wins",
            {"tp-size": [["B"], ["B"]], "mem-fraction": [["A"]], "schedule-policy": [["B"]]},
            id="last-wins-names-the-winner",
        ),
    ],
)
def test_sources_name_the_presets_each_value_came_from(strategy, sources):
    assert merge([seed_a(), seed_b()], strategy).sources == sources


@pytest.mark.parametrize(
    ("grid", "combinations"),
    [
        pytest.param({}, 0, id="empty-grid-runs-nothing"),
        pytest.param({"x": [1]}, 1, id="one-value"),
        pytest.param({"x": [1, 2], "y": ["a", "b", "c"]}, 6, id="product"),
        pytest.param({"x": [1, 2], "y": ["a", "b", "c"], "z": [True, False]}, 12, id="three-flags"),
    ],
)
def test_combinations_is_the_product_of_the_value_counts(grid, combinations):
    assert count_combinations(grid) == combinations


def test_merge_result_counts_its_combinations():
    assert merge([seed_a(), seed_b()], "union").combinations == 3
    assert merge([seed_a(), seed_b()], "intersection").combinations == 1


@pytest.mark.parametrize("strategy", list(MergeStrategy), ids=str)
def test_an_empty_selection_merges_to_nothing(strategy):
    result = merge([], strategy)

    assert result.parameters == {}
    assert result.sources == {}
    assert result.conflicts == []
    assert result.applied_presets == []
    assert result.combinations == 0


@pytest.mark.parametrize("strategy", list(MergeStrategy), ids=str)
def test_a_single_preset_merges_to_itself(strategy):
    result = merge([seed_a()], strategy)

    assert result.parameters == seed_a().parameters
    assert result.conflicts == []
    assert result.sources == {"tp-size": [["A"], ["A"]], "mem-fraction": [["A"]]}


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(["A", "B", "A"], id="same-spelling"),
        pytest.param(["High Throughput", "high throughput"], id="other-case"),
    ],
)
def test_selecting_a_preset_twice_raises_duplicate_preset_error(names):
    presets = [make_input(name, {"x": [1]}) for name in names]

    with pytest.raises(DuplicatePresetError, match="is selected more than once") as raised:
        merge(presets)

    assert raised.value.name == names[-1]
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("strategy", ["newest", "UNION", "", "last-wins"])
def test_an_unknown_strategy_raises_value_error(strategy):
    with pytest.raises(ValueError, match="is not a valid MergeStrategy"):
        merge([seed_a()], strategy)


@pytest.mark.parametrize("strategy", list(MergeStrategy), ids=str)
def test_strategy_may_be_given_by_its_value(strategy):
    assert merge([seed_a(), seed_b()], str(strategy)).strategy is strategy


def test_each_strategy_has_a_one_line_summary():
    assert all(strategy.summary and "\n" not in strategy.summary for strategy in MergeStrategy)


def test_format_values_and_grid_summary_read_as_json_spellings():
    assert format_values([1, 0.5, True, "lpm"]) == "1, 0.5, true, lpm"
    assert grid_summary({"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]}) == (
        "tp-size 1, 2 · schedule-policy fcfs, lpm"
    )


# Serialised shapes ---------------------------------------------------------------------


def test_merge_result_as_dict_has_the_api_shape():
    data = merge([seed_a(), seed_b()], "last_wins").as_dict()

    assert data == {
        "parameters": {"tp-size": [2, 4], "mem-fraction": [0.8], "schedule-policy": ["lpm"]},
        "applied_presets": ["A", "B"],
        "conflicts": [
            {
                "parameter": "tp-size",
                "kind": "overridden",
                "reason": "tp-size overridden by B (was [1, 2], now [2, 4])",
                "presets": ["A", "B"],
                "values": {"A": [1, 2], "B": [2, 4]},
                "overridden_by": "B",
                "previous_values": [1, 2],
                "new_values": [2, 4],
            }
        ],
        "sources": {"tp-size": [["B"], ["B"]], "mem-fraction": [["A"]], "schedule-policy": [["B"]]},
        "combinations": 2,
    }
    assert json.loads(json.dumps(data)) == data


def test_conflict_as_dict_leaves_out_override_fields_for_other_kinds():
    data = merge([seed_a(), seed_b()], "intersection").as_dict()

    assert data["conflicts"][0] == {
        "parameter": "mem-fraction",
        "kind": "missing",
        "reason": "mem-fraction is dropped: not set in B (only in A)",
        "presets": ["B"],
        "values": {"A": [0.8]},
    }


def test_conflict_as_dict_leaves_out_empty_values():
    conflict = Conflict(parameter="x", kind=ConflictKind.DISJOINT, reason="x: differs")

    assert conflict.as_dict() == {"parameter": "x", "kind": "disjoint", "reason": "x: differs", "presets": []}


def test_conflict_as_dict_gives_lists_for_an_override_without_values():
    conflict = Conflict(parameter="x", kind=ConflictKind.OVERRIDDEN, reason="x overridden", overridden_by="B")

    assert conflict.as_dict() == {
        "parameter": "x",
        "kind": "overridden",
        "reason": "x overridden",
        "presets": [],
        "overridden_by": "B",
        "previous_values": [],
        "new_values": [],
    }


# The merge algebra, by property --------------------------------------------------------

flag_names = st.builds(str.__add__, st.sampled_from("abc"), st.text(alphabet="ab1.-", max_size=2))
scalars = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.5, 1.0, 2.0, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(alphabet="xyz", max_size=2),
)
grids = st.dictionaries(flag_names, st.lists(scalars, min_size=1, max_size=6), min_size=1, max_size=4).map(
    normalize_parameters
)
selections = st.lists(grids, min_size=1, max_size=4).map(
    lambda found: [PresetInput(f"P{index}", grid) for index, grid in enumerate(found)]
)
algebra = settings(max_examples=100, deadline=None)


def setters_of(presets: Sequence[PresetInput], flag: str) -> list[PresetInput]:
    return [preset for preset in presets if flag in preset.parameters]


@algebra
@given(selections)
def test_union_keeps_every_input_value_exactly_once(presets):
    result = merge(presets, "union")

    assert set(result.parameters) == {flag for preset in presets for flag in preset.parameters}
    for flag, values in result.parameters.items():
        merged = keys_of(values)
        assert len(merged) == len(set(merged))
        assert set(merged) == {key for preset in setters_of(presets, flag) for key in keys_of(preset.parameters[flag])}
        if all(type(value) in (int, float) for value in values):
            assert values == sorted(values)


@algebra
@given(selections)
def test_union_sources_name_exactly_the_presets_holding_each_value(presets):
    result = merge(presets, "union")

    for flag, values in result.parameters.items():
        assert result.sources[flag] == [
            [preset.name for preset in setters_of(presets, flag) if key in keys_of(preset.parameters[flag])]
            for key in keys_of(values)
        ]


@algebra
@given(selections)
def test_intersection_values_are_contained_in_every_input_preset(presets):
    result = merge(presets, "intersection")

    for flag, values in result.parameters.items():
        for preset in presets:
            assert set(keys_of(values)) <= set(keys_of(preset.parameters[flag]))


@algebra
@given(selections)
def test_intersection_keeps_every_value_all_presets_share(presets):
    result = merge(presets, "intersection")

    first = presets[0].parameters
    for flag, values in first.items():
        shared = [key for key in keys_of(values) if all(key in keys_of(p.parameters.get(flag, [])) for p in presets)]
        assert keys_of(result.parameters.get(flag, [])) == shared
    dropped = {flag for preset in presets for flag in preset.parameters} - set(result.parameters)
    assert {conflict.parameter for conflict in result.conflicts} == dropped


@algebra
@given(selections)
def test_last_wins_equals_the_last_preset_setting_each_flag(presets):
    result = merge(presets, "last_wins")

    expected = {}
    winners = {}
    for preset in presets:
        expected.update(preset.parameters)
        winners.update(dict.fromkeys(preset.parameters, preset.name))
    assert result.parameters == expected
    for flag, values in result.parameters.items():
        assert all(type(a) is type(b) for a, b in zip(values, expected[flag], strict=True))
        assert result.sources[flag] == [[winners[flag]]] * len(values)


@algebra
@given(grids, st.randoms(use_true_random=False))
def test_merging_a_preset_with_an_equivalent_copy_has_no_conflicts(grid, random):
    # The copy lists each value in another order and spells whole floats as integers.
    def respell(value):
        if type(value) is float and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value

    copy = {flag: random.sample([respell(value) for value in values], len(values)) for flag, values in grid.items()}
    presets = [PresetInput("Original", grid), PresetInput("Copy", copy)]

    for strategy in MergeStrategy:
        result = merge(presets, strategy)
        assert result.conflicts == []
        assert {flag: set(keys_of(values)) for flag, values in result.parameters.items()} == {
            flag: set(keys_of(values)) for flag, values in grid.items()
        }


@algebra
@given(selections, st.sampled_from(list(MergeStrategy)))
def test_combinations_equals_the_product_of_the_value_counts(presets, strategy):
    result = merge(presets, strategy)

    expected = math.prod(len(values) for values in result.parameters.values()) if result.parameters else 0
    assert result.combinations == expected
