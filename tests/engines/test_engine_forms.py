"""What the shipped catalogues make of the forms the engines themselves accept: on/off switches,
human-readable sizes, values plugins register, and more than one version of an engine."""

from __future__ import annotations

import pytest

from engines.catalogue import Catalogue, Flag, for_engine, versions
from engines.checks import ERROR, WARNING, check_grid, same_flag, same_value
from engines.plan import Plan, command_arguments, rules_for
from presets.merging import PresetInput, merge


def shipped(engine: str, version: str | None = None) -> Catalogue:
    catalogue = for_engine(engine, version)
    assert catalogue is not None
    return catalogue


def vllm() -> Catalogue:
    return shipped("vllm")


def findings(grid, catalogue):
    return [(finding.level, str(finding)) for finding in check_grid(grid, catalogue)]


def test_the_newest_vllm_is_the_default_and_the_previous_one_loads_by_version():
    assert versions("vllm") == ["0.33.0", "0.34.0"]
    assert shipped("vllm").version == "0.34.0"
    assert shipped("vllm", "0.33.0").version == "0.33.0"
    assert for_engine("vllm", "0.32.0") is None
    assert for_engine("vllm", "../sglang-0.5.23") is None


def test_vllm_0_34_leaves_gpu_memory_utilization_unset_by_default():
    # vllm 0.34.0 config/cache.py: gpu_memory_utilization defaults to None (1.0 with the extensible KV cache)
    assert shipped("vllm", "0.33.0").flags["gpu-memory-utilization"].default == 0.92
    assert vllm().flags["gpu-memory-utilization"].default is None
    assert vllm().flags["enable-extensible-kv-cache"].negation == "disable-extensible-kv-cache"


@pytest.mark.parametrize("version", ["0.33.0", "0.34.0"])
def test_disable_x_is_the_enable_x_switch_turned_off_not_an_unknown_flag(version):
    # vllm/utils/argparse_utils.py:120-145 (EnableDisableAction): --disable-X sets X to False
    catalogue = shipped("vllm", version)

    assert catalogue.lookup("disable-prefix-caching") is None  # not an alias: it means the opposite
    assert catalogue.negated("disable-prefix-caching") is catalogue.flags["enable-prefix-caching"]
    assert catalogue.negated("no-enable-prefix-caching") is catalogue.flags["enable-prefix-caching"]
    assert findings({"disable-prefix-caching": [True, False]}, catalogue) == []


def test_both_forms_of_one_switch_in_a_grid_are_one_flag_given_twice():
    assert findings({"enable-prefix-caching": [True], "disable-prefix-caching": [True]}, vllm()) == [
        (ERROR, "disable-prefix-caching: the same vllm 0.34.0 flag as enable-prefix-caching; give its values once")
    ]


def test_the_off_form_takes_only_true_or_false():
    assert findings({"disable-prefix-caching": ["yes"]}, vllm()) == [
        (ERROR, 'disable-prefix-caching[0]: "yes" is not true or false (a switch is on or off)')
    ]


def test_a_switch_off_renders_as_the_engines_documented_disable_form():
    # vllm/utils/argparse_utils.py:139-140: --disable-X is in help, --no-enable-X is hidden
    assert command_arguments("enable-prefix-caching", False, vllm()) == ["--disable-prefix-caching"]
    assert command_arguments("disable-prefix-caching", True, vllm()) == ["--disable-prefix-caching"]


@pytest.mark.parametrize(
    ("engine", "flag", "value", "number"),
    [
        # vllm/utils/argparse_utils.py:30-74 human_readable_int: k = 1000, K = 1024
        ("vllm", "max-num-batched-tokens", "32k", 32_000),
        ("vllm", "max-num-batched-tokens", "32K", 32_768),
        ("vllm", "max-num-batched-tokens", "1.5k", 1_500),
        # vllm/utils/argparse_utils.py:77-94 human_readable_int_or_auto: auto and -1 are -1
        ("vllm", "max-model-len", "auto", -1),
        ("vllm", "max-model-len", -1, -1),
        ("vllm", "max-model-len", "128k", 128_000),
        # sglang srt/utils/common.py:3394-3424 human_readable_int: k = 1000, Ki = 1024, Mi = 2**20
        ("sglang", "context-length", "32k", 32_000),
        ("sglang", "context-length", "32Ki", 32_768),
        ("sglang", "max-total-tokens", "1Mi", 1_048_576),
    ],
)
def test_a_size_reads_as_the_engines_own_converter_reads_it(engine, flag, value, number):
    catalogue = shipped(engine)

    assert catalogue.flags[flag].size(value) == number
    assert findings({flag: [value]}, catalogue) == []


@pytest.mark.parametrize(
    ("engine", "flag", "value", "message"),
    [
        ("vllm", "max-num-batched-tokens", "1Mi", '"1Mi" is not a whole number or a size such as 32k or 32K'),
        ("vllm", "max-num-batched-tokens", "1.5K", '"1.5K" is not a whole number or a size such as 32k or 32K'),
        ("vllm", "max-num-batched-tokens", "auto", '"auto" is not a whole number or a size such as 32k or 32K'),
        ("vllm", "max-model-len", -2, "-2 must be >= 1"),
        ("vllm", "max-num-batched-tokens", "0k", "0 must be >= 1"),  # the bounds judge the number
        ("sglang", "context-length", "32K", '"32K" is not a whole number or a size such as 32k or 32Ki'),
    ],
)
def test_a_size_the_engine_refuses_is_an_error(engine, flag, value, message):
    assert findings({flag: [value]}, shipped(engine)) == [(ERROR, f"{flag}[0]: {message}")]


@pytest.mark.parametrize("version", ["0.33.0", "0.34.0"])
@pytest.mark.parametrize("flag", ["quantization", "kv-cache-dtype"])
def test_a_value_vllm_does_not_list_is_a_warning_since_plugins_register_more(flag, version):
    # vllm config/model.py: quantization is QuantizationMethods | str at run time; config/cache.py: CacheDType | str
    catalogue = shipped("vllm", version)

    found = findings({flag: ["fp8", "my_plugin_method"]}, catalogue)

    assert [level for level, _ in found] == [WARNING]
    assert found[0][1].startswith(f'{flag}[1]: "my_plugin_method" is not a value vllm {version} knows')


def test_vllm_0_34_knows_the_quantization_methods_it_added():
    # vllm 0.34.0 model_executor/layers/quantization/__init__.py QUANTIZATION_METHODS
    known = vllm().flags["quantization"].choices or ()
    assert {"lut_b_moe", "mxfp4_hadamard32", "w4afp8"} <= set(known)
    assert "fp_quant" not in known
    assert "fp_quant" in (shipped("vllm", "0.33.0").flags["quantization"].choices or ())


@pytest.mark.parametrize("strategy", ["union", "intersection"])
def test_sizes_the_engine_reads_alike_merge_as_one_value(strategy):
    # sglang srt/utils/common.py:3394-3424: "32k" is 32000, "32Ki" is 32768
    presets = [
        PresetInput("Short", {"context-length": ["32k", 65536]}),
        PresetInput("Long", {"context-length": [32000, "64Ki"]}),
    ]
    sizes = same_value(["context-length"], shipped("sglang"))

    result = merge(presets, strategy, same_value=sizes)

    assert result.parameters["context-length"] == [32000, 65536]
    assert "context-length 32k in Short is 32000: merged as 32000" in result.notes


def test_without_the_engine_sizes_stay_as_written():
    presets = [PresetInput("Short", {"context-length": ["32k"]}), PresetInput("Long", {"context-length": [32000]})]

    assert merge(presets, "union").parameters["context-length"] == ["32k", 32000]


@pytest.mark.parametrize(("written", "flag"), [("tp", "tp-size"), ("dp", "dp-size")])
def test_sglang_tp_and_dp_are_the_parallel_sizes_with_a_note(written, flag):
    # sglang srt/server_args.py:679 builds a plain argparse.ArgumentParser (allow_abbrev): --tp is the
    # only unambiguous prefix of --tp-size, which ServerArgs.add_cli_args declares; --tp itself it does not.
    catalogue = shipped("sglang")

    assert catalogue.lookup(written) is catalogue.flags[flag]
    assert same_flag([written], catalogue) == {written: flag}
    assert findings({written: [2]}, catalogue) == [
        (
            WARNING,
            f"{written}: an abbreviation of {flag} that sglang 0.5.23 takes while no other flag starts with it; "
            f"counted as {flag}",
        )
    ]


def test_an_abbreviation_two_flags_begin_is_not_known():
    flags = [Flag(name="tp-size", kind="integer"), Flag(name="tpu-count", kind="integer")]

    assert Catalogue.from_flags("sglang", "1", "test", flags, abbreviations=["tp"]).lookup("tp") is None


def test_the_gpu_rule_counts_sglang_tp_and_dp():
    catalogue = shipped("sglang")
    grid = {"tp": [2, 4], "dp": [1, 2]}

    plan = Plan(grid, rules_for("sglang", 2), same_flag(list(grid), catalogue))

    assert list(plan.combinations()) == [{"tp": 2, "dp": 1}]  # tp × dp GPUs, at most the 2 there are
