"""A grid checked against a catalogue: one error per bad value, warnings for unknown and deprecated flags."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engines.catalogue import Catalogue, for_engine, parse
from engines.checks import (
    ERROR,
    MAX_SUGGESTIONS,
    WARNING,
    Finding,
    check_every_engine,
    check_for_runtime,
    check_grid,
    errors,
    same_flag,
    warnings,
)
from engines.parsers import catalogue_from, flags_from_help


def make_catalogue() -> Catalogue:
    """A small sglang catalogue, parsed as a file is, so the meaningful bounds apply."""
    return parse(
        {
            "engine": "sglang",
            "version": "0.5.0",
            "flags": [
                {"name": "tp-size", "aliases": ["tensor-parallel-size"], "kind": "integer"},
                {"name": "mem-fraction-static", "kind": "float"},
                {"name": "schedule-conservativeness", "kind": "float"},
                {"name": "max-loras", "kind": "integer", "maximum": 8},
                {"name": "schedule-policy", "kind": "choice", "choices": ["lpm", "fcfs", "random"]},
                {"name": "enable-mixed-chunk", "kind": "switch"},
                {"name": "json-model-override-args", "kind": "json"},
                {"name": "served-model-name", "kind": "string"},
                {"name": "cuda-graph-bs", "kind": "list"},
                {"name": "disable-flashinfer", "kind": "switch", "deprecated": True},
            ],
        }
    )


def messages(grid: dict[str, list[Any]]) -> list[str]:
    return [str(finding) for finding in check_grid(grid, make_catalogue())]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        pytest.param({"tp-size": ["2"]}, 'tp-size[0]: "2" is not a whole number', id="integer-given-text"),
        pytest.param({"tp-size": [True]}, "tp-size[0]: true is not a whole number", id="integer-given-true"),
        pytest.param({"tp-size": [2.5]}, "tp-size[0]: 2.5 is not a whole number", id="integer-given-a-fraction"),
        pytest.param(
            {"mem-fraction-static": ["x"]}, 'mem-fraction-static[0]: "x" is not a number', id="float-given-text"
        ),
        pytest.param(
            {"mem-fraction-static": [False]}, "mem-fraction-static[0]: false is not a number", id="float-given-false"
        ),
        pytest.param(
            {"enable-mixed-chunk": [1]},
            "enable-mixed-chunk[0]: 1 is not true or false (a switch is on or off)",
            id="switch-given-1",
        ),
        pytest.param(
            {"enable-mixed-chunk": ["true"]},
            'enable-mixed-chunk[0]: "true" is not true or false (a switch is on or off)',
            id="switch-given-text",
        ),
        pytest.param(
            {"schedule-policy": ["dfs"]},
            'schedule-policy[0]: "dfs" is not one of: lpm, fcfs, random',
            id="choice-not-among-choices",
        ),
        pytest.param(
            {"schedule-policy": [True]},
            "schedule-policy[0]: true is not one of: lpm, fcfs, random",
            id="choice-given-a-boolean",
        ),
        pytest.param(
            {"json-model-override-args": ['{"rope": 2']},
            'json-model-override-args[0]: "{\\"rope\\": 2" is not valid JSON',
            id="json-text-invalid",
        ),
        pytest.param(
            {"json-model-override-args": [3]},
            "json-model-override-args[0]: 3 is not JSON text",
            id="json-given-a-number",
        ),
        pytest.param(
            {"served-model-name": [True]},
            "served-model-name[0]: true is a boolean; this flag takes a value",
            id="string-given-a-boolean",
        ),
        pytest.param(
            {"cuda-graph-bs": [False]},
            "cuda-graph-bs[0]: false is a boolean; this flag takes a value",
            id="list-given-a-boolean",
        ),
    ],
)
def test_a_value_of_the_wrong_kind_is_an_error_naming_flag_index_and_value(grid, message):
    findings = check_grid(grid, make_catalogue())

    assert [str(finding) for finding in findings] == [message]
    assert findings[0].level == ERROR


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        pytest.param({"mem-fraction-static": [9]}, "mem-fraction-static[0]: 9 is outside (0, 1]", id="above-a-range"),
        pytest.param(
            {"mem-fraction-static": [-0.5]}, "mem-fraction-static[0]: -0.5 is outside (0, 1]", id="below-a-range"
        ),
        pytest.param({"tp-size": [0]}, "tp-size[0]: 0 must be >= 1", id="below-a-minimum"),
        pytest.param(
            # sglang srt/arg_groups/validation_hook.py:314 asserts schedule_conservativeness >= 0
            {"schedule-conservativeness": [-0.5]},
            "schedule-conservativeness[0]: -0.5 must be >= 0",
            id="below-an-inclusive-zero",
        ),
        pytest.param({"max-loras": [9]}, "max-loras[0]: 9 must be <= 8", id="above-a-maximum"),
    ],
)
def test_a_value_out_of_bounds_is_an_error_showing_the_bounds(grid, message):
    assert messages(grid) == [message]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        pytest.param(0, False, id="0-refused"),
        pytest.param(0.0, False, id="0.0-refused"),
        pytest.param(0.0001, True, id="0.0001-accepted"),
        pytest.param(0.5, True, id="0.5-accepted"),
        pytest.param(1, True, id="1-accepted"),
        pytest.param(1.0001, False, id="1.0001-refused"),
    ],
)
def test_an_exclusive_minimum_refuses_the_minimum_itself_and_an_inclusive_maximum_allows_itself(value, accepted):
    assert (messages({"mem-fraction-static": [value]}) == []) is accepted


def test_each_bad_value_of_a_flag_is_reported_at_its_own_index():
    assert messages({"tp-size": [1, 0, 2, "4"]}) == [
        "tp-size[1]: 0 must be >= 1",
        'tp-size[3]: "4" is not a whole number',
    ]


def test_good_values_of_every_kind_give_no_findings():
    grid = {
        "tp-size": [1, 8],
        "mem-fraction-static": [0.85, 1],
        "schedule-conservativeness": [0.3, 2],
        "max-loras": [0, 8],
        "schedule-policy": ["lpm", "fcfs"],
        "enable-mixed-chunk": [True, False],
        "json-model-override-args": ['{"rope_scaling": {"factor": 2}}', "null"],
        "served-model-name": ["llama", 3],
        "cuda-graph-bs": ["1 2 4", 8],
    }

    assert check_grid(grid, make_catalogue()) == []


def test_an_unknown_flag_is_a_warning_with_the_closest_name():
    findings = check_grid({"enable-mixed-chunking": [True]}, make_catalogue())

    assert findings == [
        Finding(WARNING, "enable-mixed-chunking", "not a sglang 0.5.0 flag; did you mean enable-mixed-chunk?")
    ]


def test_an_unknown_flag_with_nothing_close_is_a_warning_without_a_suggestion():
    assert messages({"zzz-qqq-frobnicate": [1]}) == ["zzz-qqq-frobnicate: not a sglang 0.5.0 flag"]


def test_the_values_of_an_unknown_flag_are_not_checked():
    assert messages({"enable-mixed-chunking": [1, "x"]}) == [
        "enable-mixed-chunking: not a sglang 0.5.0 flag; did you mean enable-mixed-chunk?"
    ]


def test_a_deprecated_flag_is_a_warning_and_its_values_are_still_checked():
    findings = check_grid({"disable-flashinfer": [True, 1]}, make_catalogue())

    assert findings == [
        Finding(WARNING, "disable-flashinfer", "deprecated in sglang 0.5.0"),
        Finding(ERROR, "disable-flashinfer[1]", "1 is not true or false (a switch is on or off)"),
    ]


def test_an_alias_is_checked_as_the_flag_it_stands_for():
    assert messages({"tensor-parallel-size": [2, 4]}) == []
    assert messages({"tensor-parallel-size": [0, "2"]}) == [
        "tensor-parallel-size[0]: 0 must be >= 1",
        'tensor-parallel-size[1]: "2" is not a whole number',
    ]


def test_findings_come_in_grid_order_and_split_into_errors_and_warnings():
    findings = check_grid(
        {"tp-size": [0], "enable-mixed-chunking": [True], "mem-fraction-static": [9], "disable-flashinfer": [True]},
        make_catalogue(),
    )

    assert [finding.path for finding in findings] == [
        "tp-size[0]",
        "enable-mixed-chunking",
        "mem-fraction-static[0]",
        "disable-flashinfer",
    ]
    assert [finding.path for finding in errors(findings)] == ["tp-size[0]", "mem-fraction-static[0]"]
    assert [finding.path for finding in warnings(findings)] == ["enable-mixed-chunking", "disable-flashinfer"]


def test_a_finding_as_a_dict_has_its_level_path_and_message():
    assert Finding(ERROR, "tp-size[0]", "0 must be >= 1").as_dict() == {
        "level": "error",
        "path": "tp-size[0]",
        "message": "0 must be >= 1",
    }


def test_same_flag_maps_each_known_name_to_its_canonical_name_and_leaves_out_unknown_ones():
    names = ["tp-size", "tensor-parallel-size", "schedule-policy", "no-such-flag"]

    assert same_flag(names, make_catalogue()) == {
        "tp-size": "tp-size",
        "tensor-parallel-size": "tp-size",
        "schedule-policy": "schedule-policy",
    }


def test_same_flag_without_a_catalogue_joins_nothing():
    assert same_flag(["tp-size", "tensor-parallel-size"], None) == {}


HELP_TEXT = """\
usage: launch_server [-h] [--mem-fraction-static MEM_FRACTION_STATIC]

options:
  -h, --help            show this help message and exit
  --mem-fraction-static MEM_FRACTION_STATIC
                        The fraction of the memory used for static allocation.
  --tp-size TP_SIZE, --tensor-parallel-size TP_SIZE
                        The tensor parallelism size.
"""


def test_meaningful_bounds_are_checked_on_a_catalogue_read_from_help_text():
    written = catalogue_from("sglang", "0.5.0", "help", flags_from_help(HELP_TEXT))
    catalogue = parse(json.loads(json.dumps(written.as_document())))
    assert catalogue.flags["mem-fraction-static"].bounds_text == "(0, 1]"

    findings = check_grid({"mem-fraction-static": [9], "tp-size": [0]}, catalogue)

    assert [str(finding) for finding in findings] == [
        "mem-fraction-static[0]: 9 is outside (0, 1]",
        "tp-size[0]: 0 must be >= 1",
    ]


def test_text_given_to_a_bounded_flag_read_from_help_is_not_judged_by_the_bounds():
    catalogue = catalogue_from("sglang", "0.5.0", "help", flags_from_help(HELP_TEXT))
    catalogue = parse(json.loads(json.dumps(catalogue.as_document())))

    assert check_grid({"mem-fraction-static": ["0.9", "9"], "tp-size": ["auto"]}, catalogue) == []


# A grid for any engine, against every engine's catalogue


def make_vllm_catalogue() -> Catalogue:
    return parse(
        {
            "engine": "vllm",
            "version": "0.1.0",
            "flags": [
                {"name": "tensor-parallel-size", "aliases": ["tp"], "kind": "integer"},
                {"name": "schedule-policy", "kind": "choice", "choices": ["fcfs", "priority"]},
                {"name": "enable-mixed-chunk", "kind": "switch", "deprecated": True},
            ],
        }
    )


def any_engine(grid: dict[str, list[Any]]) -> list[tuple[str, str]]:
    return [
        (finding.level, str(finding)) for finding in check_every_engine(grid, [make_catalogue(), make_vllm_catalogue()])
    ]


def test_a_flag_no_engine_knows_is_a_warning_with_the_closest_name_any_engine_has():
    assert any_engine({"tp-szie": [2], "tensor-paralel-size": [2]}) == [
        (WARNING, "tp-szie: not a flag of any engine; did you mean tp-size?"),
        (WARNING, "tensor-paralel-size: not a flag of any engine; did you mean tensor-parallel-size?"),
    ]


def test_a_value_the_only_engine_with_the_flag_refuses_is_an_error():
    assert any_engine({"mem-fraction-static": ["abc", 0.5]}) == [
        (ERROR, 'mem-fraction-static[0]: "abc" is not a number'),
    ]


def test_a_value_every_engine_with_the_flag_refuses_is_an_error_naming_what_each_said():
    assert any_engine({"schedule-policy": ["lifo"], "tensor-parallel-size": [0.5]}) == [
        (
            ERROR,
            'schedule-policy[0]: sglang 0.5.0: "lifo" is not one of: lpm, fcfs, random; '
            'vllm 0.1.0: "lifo" is not one of: fcfs, priority',
        ),
        (ERROR, "tensor-parallel-size[0]: 0.5 is not a whole number"),
    ]


def test_a_value_only_some_engines_refuse_is_a_warning_naming_them():
    assert any_engine({"schedule-policy": ["fcfs", "priority", "lpm"]}) == [
        (WARNING, 'schedule-policy[1]: sglang 0.5.0 refuses it: "priority" is not one of: lpm, fcfs, random'),
        (WARNING, 'schedule-policy[2]: vllm 0.1.0 refuses it: "lpm" is not one of: fcfs, priority'),
    ]


def test_a_flag_one_engine_deprecates_is_a_warning():
    assert any_engine({"enable-mixed-chunk": [True]}) == [(WARNING, "enable-mixed-chunk: deprecated in vllm 0.1.0")]


def test_a_grid_every_engine_takes_has_no_findings():
    assert any_engine({"tp-size": [1, 2], "schedule-policy": ["fcfs"], "max-loras": [8]}) == []


def test_without_catalogues_an_any_engine_grid_has_no_findings():
    assert check_every_engine({"tp-szie": ["x"]}, []) == []


@pytest.mark.parametrize("runtime", ["sglang", ""], ids=["one-engine", "any-engine"])
def test_only_the_first_misspelt_flags_of_a_grid_get_a_did_you_mean(runtime):
    # A hint is a search through every flag name: a grid of hundreds of unknown flags gets them for
    # the first MAX_SUGGESTIONS only, so checking it stays cheap.
    known = [name for name in for_engine("sglang").flags if len(name) > 8][: MAX_SUGGESTIONS + 5]
    grid = {f"{name}x": [1] for name in known}

    findings = check_for_runtime(grid, runtime)

    hinted = [finding.path for finding in findings if "did you mean" in finding.message]
    assert hinted == [f"{name}x" for name in known[:MAX_SUGGESTIONS]]
