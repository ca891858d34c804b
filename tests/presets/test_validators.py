"""The one validator for preset content: parameters, names, metadata, and every message it gives."""

from __future__ import annotations

import math
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from presets.validators import (
    MAX_LISTED_PROBLEMS,
    MAX_METADATA_DEPTH,
    MAX_METADATA_SIZE,
    MAX_VALUES,
    InvalidParameters,
    Problem,
    clean_parameters,
    metadata_problems,
    name_problems,
    normalize_parameters,
    validate_metadata,
)

BAD_FLAG_NAME = (
    'not a valid flag name: use lowercase letters, digits, "-" and ".", '
    'starting with a letter or digit (a leading "--" is dropped, "_" becomes "-")'
)


def problems_of(raw: object) -> list[str]:
    """Every message normalize_parameters gives for ``raw``, as the user reads them."""
    with pytest.raises(InvalidParameters) as raised:
        normalize_parameters(raw)
    return [str(problem) for problem in raised.value.problems]


def nested_metadata(levels: int) -> dict[str, Any]:
    """``{"k": {"k": ... "leaf"}}`` with the leaf ``levels`` levels below the top."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


# normalize_parameters: the happy path --------------------------------------------------


def test_normalize_parameters_returns_the_stored_grid_shape():
    grid = normalize_parameters({"tp-size": [1, 2], "mem-fraction-static": [0.7, 0.75], "schedule-policy": ["lpm"]})

    assert grid == {"tp-size": [1, 2], "mem-fraction-static": [0.7, 0.75], "schedule-policy": ["lpm"]}


@pytest.mark.parametrize(
    ("key", "flag"),
    [
        pytest.param("--tp-size", "tp-size", id="leading-double-dash-dropped"),
        pytest.param("tp_size", "tp-size", id="underscore-becomes-dash"),
        pytest.param("--mem_fraction_static", "mem-fraction-static", id="both"),
        pytest.param("2d-grid", "2d-grid", id="starts-with-digit"),
        pytest.param("attention.backend", "attention.backend", id="dot-allowed"),
        pytest.param("--" + "x" * 100, "x" * 100, id="longest-name-after-stripping"),
    ],
)
def test_flag_names_are_stored_in_their_normal_spelling(key, flag):
    assert normalize_parameters({key: [1]}) == {flag: [1]}


@pytest.mark.parametrize(
    ("raw", "values"),
    [
        pytest.param("lpm", ["lpm"], id="string"),
        pytest.param(2, [2], id="integer"),
        pytest.param(0.5, [0.5], id="float"),
        pytest.param(False, [False], id="boolean"),
    ],
)
def test_a_bare_scalar_is_wrapped_into_a_one_item_list(raw, values):
    grid = normalize_parameters({"x": raw})

    assert grid == {"x": values}
    assert type(grid["x"][0]) is type(raw)


def test_a_tuple_of_values_is_stored_as_a_list():
    assert normalize_parameters({"x": (1, 2)}) == {"x": [1, 2]}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("x" * 500, id="longest-text"),
        pytest.param(2**63 - 1, id="largest-int64"),
        pytest.param(-(2**63), id="smallest-int64"),
        pytest.param(1e308, id="large-float"),
        pytest.param("🚀 ü", id="non-ascii-text"),
        pytest.param("", id="empty-text"),
    ],
)
def test_values_at_the_limits_are_accepted(value):
    assert normalize_parameters({"x": [value]}) == {"x": [value]}


def test_a_thousand_values_of_a_flag_and_two_hundred_flags_are_accepted():
    many_values = normalize_parameters({"tp-size": list(range(1000))})
    many_flags = normalize_parameters({f"flag-{index}": [1] for index in range(200)})

    assert len(many_values["tp-size"]) == 1000
    assert len(many_flags) == 200


# normalize_parameters: type-aware deduplication -------------------------------------------


def test_true_and_1_are_different_values():
    grid = normalize_parameters({"x": [1, True, 0, False]})

    assert grid == {"x": [1, True, 0, False]}
    assert [type(value) for value in grid["x"]] == [int, bool, int, bool]


@pytest.mark.parametrize(
    ("values", "kept"),
    [
        pytest.param([1, 1.0], [1], id="int-first"),
        pytest.param([1.0, 1], [1.0], id="float-first"),
        pytest.param([0, -0.0, 0.0], [0], id="zeros"),
        pytest.param([True, True, 1, 1.0], [True, 1], id="booleans-and-numbers"),
        pytest.param(["1", 1, "1"], ["1", 1], id="text-is-not-a-number"),
    ],
)
def test_equal_values_are_kept_once_in_their_first_spelling(values, kept):
    grid = normalize_parameters({"x": values})

    assert grid["x"] == kept
    assert [type(value) for value in grid["x"]] == [type(value) for value in kept]


# normalize_parameters: every problem ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "described"),
    [
        pytest.param([["tp-size", 1]], "a list", id="list"),
        pytest.param("tp-size=1", "a string", id="string"),
        pytest.param(None, "null", id="null"),
        pytest.param(3, "a number", id="number"),
        pytest.param(True, "a boolean", id="boolean"),
    ],
)
def test_parameters_must_be_an_object(raw, described):
    assert problems_of(raw) == [f"expected an object mapping flag names to lists of values, got {described}"]


def test_parameters_must_not_be_empty():
    assert problems_of({}) == ["at least one parameter is required"]


def test_more_than_two_hundred_parameters_are_refused():
    assert problems_of({f"flag-{index}": [1] for index in range(201)}) == [
        "at most 200 parameters are allowed, got 201"
    ]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("TP-size", id="uppercase"),
        pytest.param("tp size", id="space"),
        pytest.param("-tp", id="leading-dash"),
        pytest.param("---tp", id="leading-dash-after-stripping"),
        pytest.param("_tp", id="leading-underscore-becomes-dash"),
        pytest.param(".tp", id="leading-dot"),
        pytest.param("--", id="nothing-after-stripping"),
        pytest.param("tp/size", id="slash"),
        pytest.param("tp=1", id="equals"),
    ],
)
def test_invalid_flag_names_are_refused(key):
    assert problems_of({key: [1]}) == [f"{key}: {BAD_FLAG_NAME}"]


def test_an_empty_flag_name_is_refused_as_a_problem_of_the_whole_object():
    # Its path is the key itself, "", which Problem reads as the whole document.
    assert problems_of({"": [1]}) == [BAD_FLAG_NAME]


def test_a_flag_name_with_a_trailing_newline_is_refused():
    assert problems_of({"tp-size\n": [1]}) == [f"tp-size\n: {BAD_FLAG_NAME}"]


def test_a_too_long_flag_name_is_refused_with_a_shortened_path():
    assert problems_of({"x" * 101: [1]}) == ["x" * 39 + "…: flag name is longer than 100 characters"]


def test_flag_names_must_be_strings():
    assert problems_of({1: [1]}) == ["1: flag names must be strings"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("tp_size", "tp-size", id="underscore-and-dash"),
        pytest.param("tp-size", "--tp-size", id="with-and-without-dashes"),
    ],
)
def test_two_spellings_of_one_flag_are_that_flag_once_with_their_values_in_order(first, second):
    assert normalize_parameters({first: [1, 2], second: [2, 3]}) == {"tp-size": [1, 2, 3]}


def test_two_spellings_of_one_flag_together_hold_at_most_the_values_one_may():
    half = MAX_VALUES // 2 + 1
    assert problems_of({"tp-size": list(range(half)), "tp_size": list(range(half, 2 * half))}) == [
        f"tp_size: at most {MAX_VALUES} values are allowed, got {half} + {half}"
    ]


def test_an_empty_list_of_values_is_refused():
    assert problems_of({"tp-size": []}) == ["tp-size: an empty list is not allowed; give at least one value"]


def test_more_than_a_thousand_values_are_refused():
    assert problems_of({"tp-size": list(range(1001))}) == ["tp-size: at most 1000 values are allowed, got 1001"]


def test_a_grid_of_up_to_a_trillion_combinations_is_accepted():
    grid = {f"knob-{index}": list(range(1000)) for index in range(4)}  # exactly 10^12

    assert normalize_parameters(grid) == grid


@pytest.mark.parametrize(
    ("flags", "size"),
    [pytest.param(7, "about 10^21", id="7-by-1000"), pytest.param(200, "about 10^600", id="200-by-1000")],
)
def test_a_grid_of_more_than_a_trillion_combinations_is_refused_naming_the_limit(flags, size):
    grid = {f"knob-{index}": list(range(1000)) for index in range(flags)}

    assert problems_of(grid) == [
        f"the grid has {size} combinations; at most 1,000,000,000,000 (10^12) are allowed: give its flags fewer values"
    ]


def test_the_count_in_the_limits_message_is_exact_while_it_is_readable():
    grid = {"a": list(range(1000)), "b": list(range(1000)), "c": list(range(1000)), "d": list(range(750)), "e": [1, 2]}

    assert problems_of(grid) == [
        "the grid has 1,500,000,000,000 combinations; at most 1,000,000,000,000 (10^12) are allowed: "
        "give its flags fewer values"
    ]


def test_a_null_value_is_refused_with_its_index():
    assert problems_of({"tp-size": [1, None]}) == ["tp-size[1]: null is not allowed"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(None, "null is not allowed", id="null"),
        pytest.param({"a": 1}, "an object is not allowed; each value must be a string, number or boolean", id="object"),
    ],
)
def test_a_flag_set_to_null_or_an_object_is_refused_without_an_index(raw, message):
    assert problems_of({"tp-size": raw}) == [f"tp-size: {message}"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param([1], "a nested list is not allowed; each value must be a string, number or boolean", id="list"),
        pytest.param({"a": 1}, "an object is not allowed; each value must be a string, number or boolean", id="object"),
        pytest.param("x" * 501, "text is 501 characters long; at most 500 are allowed", id="long-text"),
        pytest.param(math.nan, "NaN is not allowed", id="nan"),
        pytest.param(math.inf, "Infinity is not allowed", id="infinity"),
        pytest.param(-math.inf, "Infinity is not allowed", id="minus-infinity"),
        pytest.param("a\x00b", "text contains a NUL or an unpaired surrogate character", id="nul"),
        pytest.param("a\ud800", "text contains a NUL or an unpaired surrogate character", id="lone-surrogate"),
        pytest.param(2**63, "integer is out of range (must fit in 64 bits)", id="int-above-64-bits"),
        pytest.param(-(2**63) - 1, "integer is out of range (must fit in 64 bits)", id="int-below-64-bits"),
        pytest.param(b"lpm", "bytes is not allowed; each value must be a string, number or boolean", id="bytes"),
    ],
)
def test_each_unstorable_value_is_refused_with_its_place(value, message):
    assert problems_of({"x": ["ok", value]}) == [f"x[1]: {message}"]


def test_a_bare_scalar_is_checked_as_the_first_value():
    assert problems_of({"x": math.nan}) == ["x[0]: NaN is not allowed"]


def test_every_problem_is_reported_at_once():
    raw = {
        "Bad": [1],
        "tp-size": [1, None, math.nan],
        "tp_size": [2],
        "mem-fraction": [],
        "policy": {"a": 1},
        "fine": [1],
    }

    assert problems_of(raw) == [
        f"Bad: {BAD_FLAG_NAME}",
        "tp-size[1]: null is not allowed",
        "tp-size[2]: NaN is not allowed",
        "mem-fraction: an empty list is not allowed; give at least one value",
        "policy: an object is not allowed; each value must be a string, number or boolean",
    ]


def test_invalid_parameters_is_a_value_error_reading_every_problem():
    with pytest.raises(InvalidParameters) as raised:
        normalize_parameters({"tp-size": [None], "x": []})

    assert isinstance(raised.value, ValueError)
    assert str(raised.value) == (
        "tp-size[0]: null is not allowed; x: an empty list is not allowed; give at least one value"
    )
    assert raised.value.problems[0] == Problem("tp-size[0]", "null is not allowed")


# Problem paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("problem", "prefix", "seen_as"),
    [
        pytest.param(Problem("tp-size[1]", "bad"), "parameters", "parameters.tp-size[1]: bad", id="flag-under-field"),
        pytest.param(Problem("[2]", "bad"), "presets", "presets[2]: bad", id="index-joins-without-dot"),
        pytest.param(Problem("", "bad"), "parameters", "parameters: bad", id="whole-becomes-the-prefix"),
        pytest.param(Problem("name", "bad"), "", "name: bad", id="no-prefix-changes-nothing"),
        pytest.param(
            Problem("tp-size", "bad"), "presets[0].parameters", "presets[0].parameters.tp-size: bad", id="deep"
        ),
    ],
)
def test_a_problem_under_a_prefix_reads_from_the_enclosing_document(problem, prefix, seen_as):
    assert str(problem.under(prefix)) == seen_as


def test_a_problem_without_a_path_reads_as_its_message():
    assert str(Problem("", "at least one parameter is required")) == "at least one parameter is required"


def test_parameter_problems_can_be_placed_inside_a_document():
    with pytest.raises(InvalidParameters) as raised:
        normalize_parameters({"tp-size": [1, None]})

    assert [str(problem.under("parameters")) for problem in raised.value.problems] == [
        "parameters.tp-size[1]: null is not allowed"
    ]


# Django adapters -----------------------------------------------------------------------


def test_clean_parameters_returns_the_normalised_grid():
    assert clean_parameters({"--tp_size": 2}) == {"tp-size": [2]}


def test_clean_parameters_raises_one_validation_error_with_every_message():
    with pytest.raises(ValidationError) as raised:
        clean_parameters({"tp-size": [1, None], "x": []})

    assert raised.value.messages == [
        "tp-size[1]: null is not allowed",
        "x: an empty list is not allowed; give at least one value",
    ]


def test_clean_parameters_errors_carry_the_invalid_parameters_code():
    with pytest.raises(ValidationError) as raised:
        clean_parameters({"tp-size": [None]})

    assert [error.code for error in raised.value.error_list] == ["invalid_parameters"]


def test_validate_metadata_accepts_an_object_and_refuses_a_list():
    validate_metadata({"author": "system"})
    validate_metadata(None)
    with pytest.raises(ValidationError) as raised:
        validate_metadata(["memory"])

    assert raised.value.messages == ["expected an object, got a list"]


# Names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        pytest.param("High Throughput", "High Throughput", id="as-is"),
        pytest.param("  High Throughput \n", "High Throughput", id="trimmed"),
        pytest.param(" " + "x" * 255 + " ", "x" * 255, id="longest-after-trimming"),
        pytest.param("Débit élevé ⚡", "Débit élevé ⚡", id="non-ascii"),
    ],
)
def test_a_valid_name_comes_back_trimmed(raw, name):
    assert name_problems(raw) == (name, [])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param("", "a name is required", id="empty"),
        pytest.param(" \t\n", "a name is required", id="only-whitespace"),
        pytest.param("x" * 256, "at most 255 characters are allowed, got 256", id="too-long"),
        pytest.param("a\x00b", "control characters are not allowed in a name", id="nul"),
        pytest.param("a\nb", "control characters are not allowed in a name", id="inner-newline"),
        pytest.param("a\x7fb", "control characters are not allowed in a name", id="delete"),
        pytest.param("a\ud800b", "control characters are not allowed in a name", id="lone-surrogate"),
        pytest.param(None, "expected a string, got null", id="null"),
        pytest.param(3, "expected a string, got a number", id="number"),
    ],
)
def test_an_invalid_name_is_refused(raw, message):
    _, problems = name_problems(raw)

    assert problems == [Problem("", message)]


# Metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(None, id="null"),
        pytest.param({}, id="empty"),
        pytest.param(
            {"author": "system", "tags": ["memory", "small-gpu"], "score": 0.5, "ok": True, "note": None},
            id="typical",
        ),
        pytest.param(nested_metadata(MAX_METADATA_DEPTH), id="deepest-allowed"),
        # Its size is counted about as JSON: the braces, the key, the quotes and separators besides the text.
        pytest.param({"k": "x" * (MAX_METADATA_SIZE - 9)}, id="largest-allowed"),
    ],
)
def test_valid_metadata_has_no_problems(metadata):
    assert metadata_problems(metadata) == []


@pytest.mark.parametrize(
    ("metadata", "described"),
    [
        pytest.param(["memory"], "a list", id="list"),
        pytest.param("memory", "a string", id="string"),
        pytest.param(3, "a number", id="number"),
    ],
)
def test_metadata_must_be_an_object(metadata, described):
    assert metadata_problems(metadata) == [Problem("", f"expected an object, got {described}")]


def test_metadata_nested_too_deep_is_refused_at_its_path():
    deep_path = ".".join(["k"] * (MAX_METADATA_DEPTH + 1))

    assert metadata_problems(nested_metadata(MAX_METADATA_DEPTH + 1)) == [
        Problem(deep_path, "nested deeper than 10 levels")
    ]


def test_metadata_lists_count_as_levels():
    value: Any = 1
    for _ in range(MAX_METADATA_DEPTH):
        value = [value]

    assert metadata_problems({"k": value}) == [
        Problem("k" + "[0]" * MAX_METADATA_DEPTH, "nested deeper than 10 levels")
    ]


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        pytest.param({"score": math.nan}, Problem("score", "NaN and Infinity are not allowed"), id="nan"),
        pytest.param({"scores": [1, math.inf]}, Problem("scores[1]", "NaN and Infinity are not allowed"), id="inf"),
        pytest.param(
            {"a": [{"b": "x\x00"}]},
            Problem("a[0].b", "text contains a NUL or an unpaired surrogate character"),
            id="nul",
        ),
        pytest.param(
            {"a": "\udfff"},
            Problem("a", "text contains a NUL or an unpaired surrogate character"),
            id="lone-surrogate",
        ),
        pytest.param({"a": {1: "x"}}, Problem("a", "invalid key 1"), id="non-string-key"),
        pytest.param({"a\x00": 1}, Problem("", "invalid key 'a\\x00'"), id="nul-in-key"),
        pytest.param({"a": {1, 2}}, Problem("a", "set is not a JSON value"), id="set"),
        pytest.param(
            {"seeds": [1, 2**63]}, Problem("seeds[1]", "integer is out of range (must fit in 64 bits)"), id="big-int"
        ),
        pytest.param(
            {"k": "x" * MAX_METADATA_SIZE},
            Problem("", "metadata is too large (at most 64 KiB as JSON)"),
            id="too-large-counting-keys",
        ),
    ],
)
def test_each_metadata_problem_is_reported_at_its_path(metadata, problem):
    assert metadata_problems(metadata) == [problem]


def test_metadata_of_many_numbers_is_as_large_as_its_json():
    assert metadata_problems({"seeds": list(range(100_000))}) == [
        Problem("", "metadata is too large (at most 64 KiB as JSON)")
    ]
    assert metadata_problems({"seeds": list(range(1000))}) == []


def test_every_metadata_problem_is_reported_at_once():
    problems = metadata_problems({"a": math.nan, "b": ["ok", "\x00"], "c": {"d": math.inf}})

    assert [problem.path for problem in problems] == ["a", "b[1]", "c.d"]


# Normalisation, by property --------------------------------------------------------------

raw_values = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5]),
    st.booleans(),
    st.text(alphabet="ab1", max_size=2),
)
raw_grids = st.dictionaries(
    st.builds(str.__add__, st.sampled_from(["", "--"]), st.sampled_from(["tp-size", "mem_fraction", "x.y"])),
    st.lists(raw_values, min_size=1, max_size=8),
    min_size=1,
).filter(lambda raw: len({key.removeprefix("--").replace("_", "-") for key in raw}) == len(raw))


@settings(max_examples=100, deadline=None)
@given(raw_grids)
def test_normalised_values_are_distinct_type_aware_and_normalising_again_changes_nothing(raw):
    grid = normalize_parameters(raw)

    originals = {key.removeprefix("--").replace("_", "-"): values for key, values in raw.items()}
    assert list(grid) == list(originals)
    for flag, values in grid.items():
        keys = [(type(value) is bool, value) for value in values]
        assert len(keys) == len(set(keys))
        assert set(keys) == {(type(value) is bool, value) for value in originals[flag]}
    again = normalize_parameters(grid)
    assert [(flag, [(type(v), v) for v in values]) for flag, values in again.items()] == [
        (flag, [(type(v), v) for v in values]) for flag, values in grid.items()
    ]


def test_a_form_lists_the_first_hundred_problems_of_a_grid_and_counts_the_rest():
    # 200 flags of 1,000 nulls: 200,000 problems, each a ValidationError made and rendered before.
    with pytest.raises(ValidationError) as raised:
        clean_parameters({f"flag-{index}": [None] * 1000 for index in range(200)})

    shown = raised.value.messages
    assert len(shown) == MAX_LISTED_PROBLEMS
    assert shown[0] == "flag-0[0]: null is not allowed"
    assert shown[-1] == "flag-0[99]: null is not allowed (and 199,900 more problems)"
