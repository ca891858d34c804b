"""Merging presets that spell one engine flag two ways (an alias and its canonical name)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from engines.catalogue import parse
from engines.checks import same_flag
from presets.merging import ConflictKind, MergeStrategy, PresetInput, merge

TP_ALIASES = {"tensor-parallel-size": "tp-size", "tp-size": "tp-size"}


def preset(name: str, parameters: Mapping[str, Sequence[object]]) -> PresetInput:
    return PresetInput(name, {flag: list(values) for flag, values in parameters.items()})


def preset_a() -> PresetInput:
    return preset("A", {"tp-size": [1]})


def preset_b() -> PresetInput:
    return preset("B", {"tensor-parallel-size": [2, 4]})


def test_union_merges_an_alias_into_the_name_written_first():
    result = merge([preset_a(), preset_b()], MergeStrategy.UNION, same_flag=TP_ALIASES)

    assert result.parameters == {"tp-size": [1, 2, 4]}
    assert result.sources == {"tp-size": [["A"], ["B"], ["B"]]}
    assert result.notes == ["tensor-parallel-size in B is the same flag as tp-size: merged as tp-size"]
    assert result.applied_presets == ["A", "B"]


def test_in_the_reverse_order_the_alias_is_the_name_kept():
    result = merge([preset_b(), preset_a()], MergeStrategy.UNION, same_flag=TP_ALIASES)

    assert result.parameters == {"tensor-parallel-size": [1, 2, 4]}
    assert result.sources == {"tensor-parallel-size": [["A"], ["B"], ["B"]]}
    assert result.notes == ["tp-size in A is the same flag as tensor-parallel-size: merged as tensor-parallel-size"]


def test_union_of_the_joined_flag_reports_values_no_preset_shares_as_disjoint():
    result = merge([preset_a(), preset_b()], MergeStrategy.UNION, same_flag=TP_ALIASES)

    assert [(conflict.parameter, conflict.kind) for conflict in result.conflicts] == [
        ("tp-size", ConflictKind.DISJOINT)
    ]
    assert result.conflicts[0].presets == ("A", "B")


def test_a_value_both_spellings_share_is_kept_once_with_both_sources():
    result = merge(
        [preset("A", {"tp-size": [1, 2]}), preset("B", {"tensor-parallel-size": [2, 4]})],
        same_flag=TP_ALIASES,
    )

    assert result.parameters == {"tp-size": [1, 2, 4]}
    assert result.sources == {"tp-size": [["A"], ["A", "B"], ["B"]]}
    assert result.conflicts == []


def test_last_wins_treats_the_two_spellings_as_one_flag_and_reports_the_override():
    result = merge([preset_a(), preset_b()], MergeStrategy.LAST_WINS, same_flag=TP_ALIASES)

    assert result.parameters == {"tp-size": [2, 4]}
    assert result.sources == {"tp-size": [["B"], ["B"]]}
    [conflict] = result.conflicts
    assert conflict.kind is ConflictKind.OVERRIDDEN
    assert conflict.parameter == "tp-size"
    assert conflict.overridden_by == "B"
    assert (conflict.previous_values, conflict.new_values) == ((1,), (2, 4))
    assert result.notes == ["tensor-parallel-size in B is the same flag as tp-size: merged as tp-size"]


def test_intersection_treats_the_two_spellings_as_one_flag():
    result = merge(
        [preset("A", {"tp-size": [1, 2]}), preset("B", {"tensor-parallel-size": [2, 4]})],
        MergeStrategy.INTERSECTION,
        same_flag=TP_ALIASES,
    )

    assert result.parameters == {"tp-size": [2]}
    assert result.conflicts == []


@pytest.mark.parametrize(
    "same",
    [pytest.param(None, id="no-mapping"), pytest.param({}, id="empty-mapping")],
)
def test_without_same_flag_the_two_spellings_stay_two_flags(same):
    result = merge([preset_a(), preset_b()], MergeStrategy.UNION, same_flag=same)

    assert result.parameters == {"tp-size": [1], "tensor-parallel-size": [2, 4]}
    assert result.notes == []
    assert result.conflicts == []


def test_both_spellings_in_one_preset_become_one_flag():
    result = merge(
        [preset("A", {"tp-size": [1, 2], "tensor-parallel-size": [2, 8], "dp-size": [1]})],
        same_flag=TP_ALIASES,
    )

    assert result.parameters == {"tp-size": [1, 2, 8], "dp-size": [1]}
    assert result.notes == ["tensor-parallel-size in A is the same flag as tp-size: merged as tp-size"]


def test_flags_the_mapping_does_not_know_keep_their_own_name_and_order():
    result = merge(
        [preset("A", {"schedule-policy": ["lpm"], "tp-size": [1]}), preset("B", {"tensor-parallel-size": [2]})],
        same_flag=TP_ALIASES,
    )

    assert list(result.parameters) == ["schedule-policy", "tp-size"]


def test_as_dict_has_notes_only_when_aliases_were_joined():
    joined = merge([preset_a(), preset_b()], same_flag=TP_ALIASES).as_dict()
    apart = merge([preset_a(), preset_b()]).as_dict()
    same_spelling = merge([preset_a(), preset("B", {"tp-size": [2]})], same_flag=TP_ALIASES).as_dict()

    assert joined["notes"] == ["tensor-parallel-size in B is the same flag as tp-size: merged as tp-size"]
    assert "notes" not in apart
    assert "notes" not in same_spelling


def test_same_flag_from_a_catalogue_drives_the_merge():
    catalogue = parse(
        {
            "engine": "sglang",
            "version": "0.5.0",
            "flags": [{"name": "tp-size", "aliases": ["tensor-parallel-size"], "kind": "integer"}],
        }
    )
    presets = [preset_a(), preset_b(), preset("C", {"not-a-flag": ["x"]})]
    aliases = same_flag([flag for item in presets for flag in item.parameters], catalogue)

    result = merge(presets, same_flag=aliases)

    assert result.parameters == {"tp-size": [1, 2, 4], "not-a-flag": ["x"]}
