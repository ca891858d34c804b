"""Planning a grid: counting without expanding, the constraints per engine, lazy expansion, launch commands."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from engines.catalogue import Catalogue, Flag, for_engine, parse
from engines.plan import (
    Plan,
    PlanSummary,
    PlanTooLarge,
    Rule,
    command_arguments,
    launch_command,
    rules_for,
    runnable,
    summarize,
)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def brute_force(grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule]) -> PlanSummary:
    """The plan counted the slow, obvious way: every combination, every rule, the first reason wins."""
    total = runnable_count = 0
    skipped: Counter[str] = Counter()
    for values in itertools.product(*grid.values()):
        combination = dict(zip(grid, values, strict=True))
        total += 1
        reasons = [reason for rule in rules if (reason := rule.reason(combination))]
        if reasons:
            skipped[reasons[0]] += 1
        else:
            runnable_count += 1
    return PlanSummary(total, runnable_count, skipped)


def twelve_by_ten(**first: list[Any]) -> dict[str, list[Any]]:
    """12 flags of 10 values each (10**12 combinations); ``first`` replaces flags at the front."""
    return {**first, **{f"knob-{index}": list(range(10)) for index in range(12 - len(first))}}


SMALL_GRIDS = [
    pytest.param(
        "sglang",
        8,
        {
            "tp-size": [1, 2, 4, 8, 16],
            "mem-fraction-static": [0.8, 0.9],
            "dp-size": [1, 2, 4],
            "pp-size": [1, 2],
            "schedule-policy": ["lpm", "fcfs"],
            "disable-radix-cache": [True, False],
        },
        id="sglang-every-rule",
    ),
    pytest.param(
        "sglang",
        2,
        {"dp-size": [1, 2, 4], "chunked-prefill-size": [4096, 8192]},
        id="sglang-dp-without-tp",
    ),
    pytest.param(
        "sglang",
        1,
        {"schedule-policy": ["lpm", "fcfs", "random"], "disable-radix-cache": [False, True], "page-size": [1, 16]},
        id="sglang-lpm-and-radix-only",
    ),
    pytest.param(
        "sglang",
        4,
        {"tp-size": [1, "2", 2.0, True, 4, 8], "pp-size": [1, 2]},
        id="sglang-sizes-that-are-not-whole-numbers",
    ),
    pytest.param(
        "vllm",
        4,
        {
            "tensor-parallel-size": [1, 2, 4, 8],
            "gpu-memory-utilization": [0.8, 0.9],
            "pipeline-parallel-size": [1, 2],
            "data-parallel-size": [1, 3],
            "schedule-policy": ["lpm"],
            "disable-radix-cache": [True],
        },
        id="vllm-parallel-sizes",
    ),
    pytest.param("vllm", 1, {"max-num-seqs": [64, 128, 256], "enforce-eager": [True, False]}, id="vllm-no-rule-read"),
    pytest.param("any", 1, {"tp-size": [1, 64], "schedule-policy": ["lpm"]}, id="an-engine-without-rules"),
]


@pytest.mark.parametrize(("engine", "gpus", "grid"), SMALL_GRIDS)
def test_summarize_counts_what_a_brute_force_expansion_counts(engine, gpus, grid):
    rules = rules_for(engine, gpus)

    summary = summarize(grid, rules)

    assert summary == brute_force(grid, rules)
    assert summary.runnable == sum(1 for _ in runnable(grid, rules))
    assert summary.skipped_count == summary.total - summary.runnable == sum(summary.skipped.values())


def test_skipped_combinations_are_counted_per_reason():
    grid = {"tp-size": [1, 2, 4, 8], "dp-size": [1, 2], "mem-fraction-static": [0.8, 0.9]}

    summary = summarize(grid, rules_for("sglang", 4))

    assert (summary.total, summary.runnable) == (16, 10)
    assert summary.skipped == {
        "tp-size × dp-size × pp-size = 8 GPUs, over the task's cap of 4 per experiment": 4,
        "tp-size × dp-size × pp-size = 16 GPUs, over the task's cap of 4 per experiment": 2,
    }


def test_vllm_counts_its_own_parallel_flags_against_the_gpus_and_has_no_sglang_rules():
    grid = {"tensor-parallel-size": [1, 2, 4], "data-parallel-size": [2], "schedule-policy": ["lpm"]}

    summary = summarize(grid, rules_for("vllm", 4))

    assert (summary.total, summary.runnable) == (3, 2)
    assert summary.skipped == {
        "tensor-parallel-size × data-parallel-size × pipeline-parallel-size = 8 GPUs, "
        "over the task's cap of 4 per experiment": 1
    }


def test_sglang_rules_ignore_vllm_spellings_of_other_flags():
    assert summarize({"tensor-parallel-size": [1, 2]}, rules_for("vllm", 1)).runnable == 1
    assert summarize({"data-parallel-size": [64]}, rules_for("sglang", 1)).runnable == 1


def test_an_empty_grid_plans_nothing():
    assert summarize({}, rules_for("sglang", 8)) == PlanSummary(0, 0)
    assert list(runnable({}, rules_for("sglang", 8))) == []  # as the summary says


def test_a_grid_of_a_trillion_combinations_is_counted_without_expanding_it():
    summary = summarize(twelve_by_ten(), rules_for("sglang", 8))

    assert summary == PlanSummary(10**12, 10**12)


def test_a_trillion_combinations_with_constraint_flags_are_counted_exactly():
    grid = twelve_by_ten(
        **{
            "tp-size": list(range(1, 11)),
            "dp-size": list(range(1, 11)),
            "pp-size": list(range(1, 11)),
            "schedule-policy": ["lpm", "fcfs", "random", "dfs-weight", "lof", "a", "b", "c", "d", "e"],
        }
    )
    fitting = sum(1 for tp, dp, pp in itertools.product(range(1, 11), repeat=3) if tp * dp * pp <= 8)

    summary = summarize(grid, rules_for("sglang", 8))

    assert math.prod(map(len, grid.values())) == 10**12
    assert summary.total == 10**12
    assert summary.runnable == fitting * 10**9
    assert sum(summary.skipped.values()) == 10**12 - fitting * 10**9


def test_runnable_yields_lazily_in_product_order_skipping_what_cannot_run():
    grid = {**{f"knob-{index}": list(range(10)) for index in range(11)}, "tp-size": [1, 16, 2, 32, 4, 8, 3, 5, 6, 7]}
    assert math.prod(map(len, grid.values())) == 10**12

    first = list(itertools.islice(runnable(grid, rules_for("sglang", 8)), 3))

    zeros = {f"knob-{index}": 0 for index in range(11)}
    assert first == [{**zeros, "tp-size": 1}, {**zeros, "tp-size": 2}, {**zeros, "tp-size": 4}]
    assert [list(combination) for combination in first] == [list(grid)] * 3


def test_runnable_varies_the_last_flag_fastest():
    grid = {"tp-size": [1, 2], "schedule-policy": ["lpm", "fcfs"]}

    assert list(runnable(grid, rules_for("sglang", 8))) == [
        {"tp-size": 1, "schedule-policy": "lpm"},
        {"tp-size": 1, "schedule-policy": "fcfs"},
        {"tp-size": 2, "schedule-policy": "lpm"},
        {"tp-size": 2, "schedule-policy": "fcfs"},
    ]


def test_a_parallel_size_written_under_its_alias_counts_against_the_gpus_given_same_flag():
    grid = {"tensor-parallel-size": [1, 16], "dp": [1, 2]}
    aliases = {"tensor-parallel-size": "tp-size", "dp": "dp-size"}

    summary = summarize(grid, rules_for("sglang", 8), aliases)

    assert (summary.total, summary.runnable) == (4, 2)
    assert summary.skipped == {
        "tp-size × dp-size × pp-size = 16 GPUs, over the task's cap of 8 per experiment": 1,
        "tp-size × dp-size × pp-size = 32 GPUs, over the task's cap of 8 per experiment": 1,
    }


def test_runnable_with_same_flag_yields_combinations_in_the_users_spelling():
    grid = {"tensor-parallel-size": [1, 16, 2], "schedule-policy": ["lpm"]}

    found = list(runnable(grid, rules_for("sglang", 8), {"tensor-parallel-size": "tp-size"}))

    assert found == [
        {"tensor-parallel-size": 1, "schedule-policy": "lpm"},
        {"tensor-parallel-size": 2, "schedule-policy": "lpm"},
    ]


def test_without_same_flag_an_alias_is_a_flag_the_rules_do_not_read():
    assert summarize({"tensor-parallel-size": [16]}, rules_for("sglang", 8)).runnable == 1


@pytest.mark.parametrize(
    ("engine", "gpus", "grid", "aliases"),
    [
        pytest.param(
            "sglang",
            4,
            {"tensor-parallel-size": [1, 2, 4, 8], "data-parallel-size": [1, 2], "pp-size": [1, 2]},
            {"tensor-parallel-size": "tp-size", "data-parallel-size": "dp-size", "pp-size": "pp-size"},
            id="sglang-long-spellings",
        ),
        pytest.param(
            "vllm",
            4,
            {"tp": [1, 2, 4, 8], "pp": [1, 2], "gpu-memory-utilization": [0.8, 0.9]},
            {"tp": "tensor-parallel-size", "pp": "pipeline-parallel-size"},
            id="vllm-short-spellings",
        ),
    ],
)
def test_summarize_with_same_flag_counts_as_the_canonical_grid_does(engine, gpus, grid, aliases):
    rules = rules_for(engine, gpus)
    canonical_grid = {aliases.get(flag, flag): values for flag, values in grid.items()}

    summary = summarize(grid, rules, aliases)

    assert summary == brute_force(canonical_grid, rules)
    assert summary.runnable == sum(1 for _ in runnable(grid, rules, aliases))


def launch_catalogue() -> Catalogue:
    return parse(
        {
            "engine": "any",
            "version": "1",
            "flags": [
                {"name": "tp-size", "kind": "integer"},
                {"name": "tensor-parallel-size", "kind": "integer", "aliases": ["tp"]},
                {"name": "mem-fraction-static", "kind": "float"},
                {"name": "gpu-memory-utilization", "kind": "float"},
                {"name": "enable-mixed-chunk", "kind": "switch"},
                {"name": "enable-prefix-caching", "kind": "switch", "negation": "no-enable-prefix-caching"},
                {"name": "served-model-name", "kind": "string"},
                {"name": "trust-remote-code-mode", "kind": "string"},
                {"name": "cuda-graph-bs", "kind": "list"},
                {"name": "json-model-override-args", "kind": "json"},
            ],
        }
    )


def test_an_sglang_launch_command_lists_each_flag_in_grid_order():
    combination = {"tp-size": 2, "mem-fraction-static": 0.9, "enable-mixed-chunk": True}

    command = launch_command("sglang", MODEL, combination, port=30001, catalogue=launch_catalogue())

    assert command == (
        f"sglang serve --model-path {MODEL} --host 127.0.0.1 --port 30001 "
        "--tp-size 2 --mem-fraction-static 0.9 --enable-mixed-chunk"
    )


def test_a_vllm_launch_command_serves_the_model_positionally():
    combination = {"tensor-parallel-size": 2, "gpu-memory-utilization": 0.9}

    command = launch_command("vllm", MODEL, combination, port="8001", catalogue=launch_catalogue())

    assert command == (
        f"vllm serve {MODEL} --host 127.0.0.1 --port 8001 --tensor-parallel-size 2 --gpu-memory-utilization 0.9"
    )


def test_the_port_defaults_to_30000():
    assert launch_command("vllm", MODEL, {}, catalogue=None) == f"vllm serve {MODEL} --host 127.0.0.1 --port 30000"


@pytest.mark.parametrize(
    ("combination", "arguments"),
    [
        pytest.param({"enable-mixed-chunk": False}, "", id="a-false-switch-is-omitted"),
        pytest.param({"enable-mixed-chunk": True}, " --enable-mixed-chunk", id="a-true-switch-is-bare"),
        pytest.param(
            {"enable-prefix-caching": False},
            " --no-enable-prefix-caching",
            id="a-false-switch-with-a-negation-uses-it",
        ),
        pytest.param(
            {"enable-prefix-caching": True}, " --enable-prefix-caching", id="a-true-switch-with-a-negation-is-bare"
        ),
        pytest.param(
            {"served-model-name": "my model"}, " --served-model-name 'my model'", id="a-value-with-spaces-is-quoted"
        ),
        pytest.param(
            {"served-model-name": "it's"}, " --served-model-name 'it'\"'\"'s'", id="a-quote-in-a-value-is-escaped"
        ),
        pytest.param({"trust-remote-code-mode": True}, " --trust-remote-code-mode true", id="true-to-a-valued-flag"),
        pytest.param({"trust-remote-code-mode": False}, " --trust-remote-code-mode false", id="false-to-a-valued-flag"),
        pytest.param({"tp-size": 4}, " --tp-size 4", id="an-integer"),
        pytest.param({"mem-fraction-static": 1e-05}, " --mem-fraction-static 1e-05", id="a-tiny-float"),
        pytest.param({"cuda-graph-bs": "1 2 4"}, " --cuda-graph-bs 1 2 4", id="a-list-flag-takes-several-words"),
        pytest.param({"cuda-graph-bs": 8}, " --cuda-graph-bs 8", id="a-list-flag-given-one-number"),
        pytest.param(
            {"json-model-override-args": '{"rope": 2}'},
            " --json-model-override-args '{\"rope\": 2}'",
            id="json-text-is-quoted",
        ),
        pytest.param({"unknown-flag": "x y"}, " --unknown-flag 'x y'", id="an-unknown-flag-is-passed-through"),
        pytest.param({"unknown-switch": True}, " --unknown-switch", id="true-to-an-unknown-flag-is-bare"),
        pytest.param({"unknown-switch": False}, "", id="false-to-an-unknown-flag-is-omitted"),
    ],
)
def test_each_flag_is_rendered_as_the_engine_reads_it(combination, arguments):
    command = launch_command("sglang", MODEL, combination, catalogue=launch_catalogue())

    prefix = f"sglang serve --model-path {MODEL} --host 127.0.0.1 --port 30000"
    assert command == prefix + arguments


def test_without_a_catalogue_booleans_are_bare_switches_or_nothing():
    command = launch_command("sglang", MODEL, {"enable-prefix-caching": False, "enable-x": True}, catalogue=None)

    assert command.endswith("--port 30000 --enable-x")


def test_a_model_path_with_spaces_is_quoted():
    sglang = launch_command("sglang", "/models/My Llama", {}, catalogue=None)
    vllm = launch_command("vllm", "/models/My Llama", {}, catalogue=None)

    assert sglang.startswith("sglang serve --model-path '/models/My Llama' --host")
    assert vllm.startswith("vllm serve '/models/My Llama' --host")


def test_an_alias_is_rendered_as_the_engines_own_long_name():
    catalogue = Catalogue.from_flags(
        "vllm", "0.11.0", "test", [Flag(name="tensor-parallel-size", kind="integer", aliases=("tp",))]
    )

    command = launch_command("vllm", MODEL, {"tp": 2}, catalogue=catalogue)

    assert command == f"vllm serve {MODEL} --host 127.0.0.1 --port 30000 --tensor-parallel-size 2"


# Indexing the plan: the n-th runnable combination, and a page from anywhere, without the walk.


def brute_force_plan(grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Every runnable combination in plan order, the slow, obvious way."""
    combinations = (dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values()))
    return [combination for combination in combinations if not any(rule.reason(combination) for rule in rules)]


INDEXED_GRIDS = [
    *SMALL_GRIDS,
    # Ruled flags between, before and after free ones, and a ruled flag whose value runs nowhere.
    pytest.param(
        "sglang",
        4,
        {
            "chunked-prefill-size": [1024, 2048],
            "tp-size": [8, 1, 2, 4],
            "page-size": [1, 16, 64],
            "dp-size": [3, 1, 2],
            "schedule-policy": ["lpm", "fcfs"],
            "disable-radix-cache": [True, False],
            "max-running-requests": [8, 16],
        },
        id="sglang-ruled-and-free-interleaved",
    ),
    pytest.param("sglang", 1, {"tp-size": [2, 4], "page-size": [1, 16]}, id="sglang-nothing-runs"),
]


@pytest.mark.parametrize(("engine", "gpus", "grid"), INDEXED_GRIDS)
def test_the_plan_finds_each_combination_by_its_number_as_the_walk_would(engine, gpus, grid):
    rules = rules_for(engine, gpus)
    expected = brute_force_plan(grid, rules)
    plan = Plan(grid, rules)

    assert plan.runnable == len(expected)
    assert [plan.at(number) for number in range(plan.runnable)] == expected
    for start in range(plan.runnable + 1):
        assert list(plan.combinations(start)) == expected[start:]
    with pytest.raises(IndexError):
        plan.at(plan.runnable)


class CountingRule:
    """A rule that counts how often it is asked: the work a plan does, without a clock."""

    def __init__(self) -> None:
        self.calls = 0

    def reason(self, values: Mapping[str, Any]) -> str | None:
        self.calls += 1
        return "tp 8 needs more GPUs" if values.get("tp-size") == 8 else None


def test_a_page_far_into_a_huge_grid_costs_the_page_not_the_grid():
    # 10^8 combinations, and the flag that rules out a quarter of them is the first: every
    # combination under tp-size 8 is skipped as one subtree, never visited.
    counting = CountingRule()
    grid = {"tp-size": [1, 2, 8, 4], **{f"knob-{index}": list(range(10)) for index in range(8)}}
    rules = [Rule(("tp-size",), counting.reason)]

    plan = Plan(grid, rules)
    page = list(itertools.islice(plan.combinations(199_999_990), 20))

    assert counting.calls == 4  # each tp-size value judged once, when the plan was made
    assert (plan.total, plan.runnable) == (4 * 10**8, 3 * 10**8)
    assert page[9] == {"tp-size": 2, **{f"knob-{index}": 9 for index in range(8)}}  # the last under tp 2
    assert page[10] == {"tp-size": 4, **{f"knob-{index}": 0 for index in range(8)}}  # tp 8 skipped whole
    assert len(page) == 20
    assert plan.at(plan.runnable - 1) == {"tp-size": 4, **{f"knob-{index}": 9 for index in range(8)}}


def test_a_grid_whose_ruled_flags_have_too_many_value_combinations_is_refused():
    grid = {"tp-size": list(range(1, 501)), "dp-size": list(range(1, 501)), "page-size": [1]}

    with pytest.raises(PlanTooLarge) as refusal:
        Plan(grid, rules_for("sglang", 8))

    assert "tp-size, dp-size have 250,000 combinations of values" in str(refusal.value)
    assert "at most 100,000" in str(refusal.value)


@pytest.mark.parametrize(
    ("value", "arguments"),
    [(True, ["--disable-prefix-caching"]), (False, ["--enable-prefix-caching"])],
    ids=["off", "on"],
)
def test_a_switch_named_by_its_off_form_renders_as_vllm_reads_it(value, arguments):
    # vllm/utils/argparse_utils.py EnableDisableAction: --disable-X turns X off, --enable-X on.
    assert command_arguments("disable-prefix-caching", value, for_engine("vllm")) == arguments
