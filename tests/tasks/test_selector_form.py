"""The preset selector's form (tasks.forms.PresetSelectionForm): what it keeps of the ids sent, in
order, what it says it left out, and how a chip action changes the selection."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from presets.merging import MergeStrategy
from tasks.forms import PresetSelectionForm


def selector(query: str) -> PresetSelectionForm:
    return PresetSelectionForm(QueryDict(query))


def test_ids_keep_the_order_sent_once_each_from_chips_or_a_link():
    assert selector("presets=3&presets=1&presets=3").ids == [3, 1]
    assert selector("presets=3,1,3").ids == [3, 1]


def test_what_is_not_a_preset_id_is_left_out_and_said():
    form = selector("presets=abc,2,0,-1,99999999999999999999")

    assert form.ids == [2]
    assert form.problems == [
        "“abc” is not a preset id.",
        "“0” is not a preset id.",
        "“-1” is not a preset id.",
        "“99999999999999999999” is not a preset id.",
    ]


def test_more_than_fifty_ids_keep_the_first_fifty_and_say_so():
    form = selector("presets=" + ",".join(str(number) for number in range(1, 53)))

    assert form.ids == list(range(1, 51))
    assert form.problems == ["At most 50 presets can be merged at once, got 52."]


@pytest.mark.parametrize(
    ("query", "strategy", "problems"),
    [
        pytest.param("strategy=last_wins", MergeStrategy.LAST_WINS, [], id="link"),
        pytest.param("merge_strategy=intersection", MergeStrategy.INTERSECTION, [], id="form"),
        pytest.param(
            "merge_strategy=best", MergeStrategy.UNION, ["Unknown merge strategy; using union."], id="unknown"
        ),
        pytest.param("", MergeStrategy.UNION, [], id="none"),
    ],
)
def test_the_strategy_comes_from_the_form_or_a_link_and_defaults_to_union(query, strategy, problems):
    form = selector(query)

    assert (form.strategy, form.problems) == (strategy, problems)


@pytest.mark.parametrize(
    ("action", "ids"),
    [
        pytest.param("add:4", [3, 1, 2, 4], id="add"),
        pytest.param("add:1", [3, 1, 2], id="add-again"),
        pytest.param("remove:1", [3, 2], id="remove"),
        pytest.param("left:2", [3, 2, 1], id="left"),
        pytest.param("left:3", [3, 1, 2], id="left-of-the-first"),
        pytest.param("right:3", [1, 3, 2], id="right"),
        pytest.param("right:x", [3, 1, 2], id="not-an-id"),
        pytest.param("refresh", [3, 1, 2], id="refresh"),
    ],
)
def test_a_chip_action_changes_the_selection(action, ids):
    form = selector(f"presets=3,1,2&action={action}")

    form.apply()

    assert form.ids == ids


def test_the_selector_is_on_when_ticked_or_when_a_link_names_presets():
    assert selector("presets=1").enabled
    assert not selector("presets=1&selector_present=1").enabled
    assert selector("presets=1&selector_present=1&use_presets=on").enabled
    assert not selector("").enabled
