"""The engines' constraints between flags, each as the engine's own source states it.

Line references are to the published wheels: sglang-0.5.23 (``sglang/srt/...``) and vllm-0.34.0
(``vllm/...``). A rule either refuses a combination the engine refuses at start-up, or skips one
the engine quietly turns into another combination of the same grid, saying so.
"""

from __future__ import annotations

from typing import Any

import pytest

from engines.plan import rules_for, skip_reason, summarize


def reason(runtime: str, gpus: int, grid: dict[str, Any] | None = None, **combination: Any) -> str | None:
    values = {flag.replace("_", "-"): value for flag, value in combination.items()}
    return skip_reason(values, rules_for(runtime, gpus, grid))


# SGLang: GPUs and data parallelism


def test_sglang_dp_counts_replicas_of_tp_gpus_each_so_tp_1_dp_2_runs_on_2_gpus():
    # srt/server_args.py:581 compute_world_size = dp_size * tp_size * pp_size; dp-size no longer
    # has to divide tp-size (the replicas are whole copies).
    assert reason("sglang", 2, tp_size=1, dp_size=2) is None
    assert (
        reason("sglang", 2, tp_size=2, dp_size=2)
        == "tp-size × dp-size × pp-size = 4 GPUs, over the task's cap of 2 per experiment"
    )
    assert reason("sglang", 6, tp_size=2, dp_size=3) is None


def test_sglang_attention_dp_adds_no_gpus_and_must_divide_tp():
    # srt/server_args.py:587 "Attention DP runs inside the TP group, so it adds no GPUs";
    # srt/arg_groups/parallel_hook.py:326 assert tp_size % attn_dp_size == 0.
    assert reason("sglang", 4, tp_size=4, attn_dp_size=4) is None
    assert reason("sglang", 4, tp_size=4, attn_dp_size=2) is None
    assert reason("sglang", 4, tp_size=4, attn_dp_size=3) == (
        "SGLang needs tp-size divisible by the attention DP size (attn-dp-size)"
    )


def test_sglang_refuses_replicas_together_with_attention_dp():
    # srt/arg_groups/parallel_hook.py:287 attn_dp_size > 1 and dp_size > 1 raise ValueError.
    assert reason("sglang", 8, tp_size=2, dp_size=2, attn_dp_size=2) == (
        "SGLang refuses dp-size > 1 (data-parallel replicas) together with attn-dp-size > 1"
    )
    assert reason("sglang", 8, tp_size=2, dp_size=1, attn_dp_size=2) is None


def test_the_deprecated_enable_dp_attention_turns_dp_size_into_attention_groups():
    # srt/arg_groups/parallel_hook.py:52-57: --dp-size N --enable-dp-attention is --attn-dp-size N
    # with dp_size 1, so it needs tp-size GPUs, and tp-size divisible by N.
    assert reason("sglang", 4, tp_size=4, dp_size=4, enable_dp_attention=True) is None
    assert reason("sglang", 4, tp_size=4, dp_size=3, enable_dp_attention=True) == (
        "SGLang needs tp-size divisible by the attention DP size (attn-dp-size)"
    )
    assert reason("sglang", 2, tp_size=4, dp_size=4, enable_dp_attention=True) == (
        "tp-size × pp-size = 4 GPUs, over the task's cap of 2 per experiment"
    )


# SGLang: scheduling policies and caches


@pytest.mark.parametrize("policy", ["lpm", "dfs-weight", "hrrn"])
def test_a_cache_aware_policy_without_the_radix_cache_is_the_fcfs_run_again(policy):
    # srt/managers/schedule_policy.py:332-338: with the tree cache disabled these policies become
    # FCFS; SGLang does not refuse them. Skipped as duplicates only when fcfs is in the grid.
    grid = {"schedule-policy": [policy, "fcfs"], "disable-radix-cache": [True, False]}
    summary = summarize(grid, rules_for("sglang", 1, grid))

    assert (summary.total, summary.runnable) == (4, 3)
    assert summary.skipped == {"same as fcfs: SGLang falls back to fcfs without the radix cache": 1}


def test_a_cache_aware_policy_without_the_radix_cache_runs_when_fcfs_is_not_in_the_grid():
    grid = {"schedule-policy": ["lpm"], "disable-radix-cache": [True, False]}

    assert summarize(grid, rules_for("sglang", 1, grid)).runnable == 2


def test_shortest_prefill_first_without_the_radix_cache_is_refused():
    # srt/managers/schedule_policy.py:333-336 raises for shortest-prefill-first without prefix caching.
    assert reason("sglang", 1, schedule_policy="shortest-prefill-first", disable_radix_cache=True) == (
        "schedule-policy shortest-prefill-first needs the radix cache, which disable-radix-cache turns off"
    )
    assert reason("sglang", 1, schedule_policy="shortest-prefill-first", disable_radix_cache=False) is None


@pytest.mark.parametrize(("policy", "refused"), [("fcfs", False), ("lof", False), ("lpm", True), ("random", True)])
def test_priority_scheduling_needs_fcfs_or_lof(policy, refused):
    # srt/arg_groups/validation_hook.py:281-286 asserts schedule_policy in ["fcfs", "lof"].
    found = reason("sglang", 1, enable_priority_scheduling=True, schedule_policy=policy)

    assert found == (f"priority scheduling needs schedule-policy fcfs or lof, not {policy}" if refused else None)


def test_the_unified_cache_linker_needs_the_radix_cache():
    # srt/arg_groups/hicache_hook.py:44-49.
    assert reason("sglang", 1, enable_unified_cache_external_linker=True, disable_radix_cache=True) == (
        "enable-unified-cache-external-linker needs the radix cache, which disable-radix-cache turns off"
    )


@pytest.mark.parametrize(
    ("others", "expected"),
    [
        # srt/arg_groups/kv_cache_hook.py:434-438
        ({"enable_hierarchical_cache": True}, "enable-lmcache and enable-hierarchical-cache cannot be on together"),
        # kv_cache_hook.py:439-443
        (
            {"enable_unified_cache_external_linker": True},
            "enable-lmcache and enable-unified-cache-external-linker cannot be on together",
        ),
        # kv_cache_hook.py:444-445
        ({"disable_radix_cache": True}, "enable-lmcache needs the radix cache, which disable-radix-cache turns off"),
        # kv_cache_hook.py:449-452
        (
            {"speculative_algorithm": "EAGLE"},
            "enable-lmcache does not support speculative decoding (speculative-algorithm)",
        ),
        # kv_cache_hook.py:453-456
        ({"tp_size": 2, "attn_dp_size": 2}, "enable-lmcache does not support attention DP (attn-dp-size > 1)"),
        # kv_cache_hook.py:457-461
        ({"dcp_size": 2}, "enable-lmcache does not support dcp-size > 1"),
        # kv_cache_hook.py:462-465
        ({"enable_streaming_session": True}, "enable-lmcache and enable-streaming-session cannot be on together"),
        ({"tp_size": 2, "schedule_policy": "lpm"}, None),
    ],
)
def test_lmcache_excludes_what_sglang_says_it_cannot_run_with(others, expected):
    assert reason("sglang", 8, enable_lmcache=True, **others) == expected


# vLLM: scheduler limits


def test_vllm_needs_at_least_as_many_batched_tokens_as_sequences():
    # vllm/config/scheduler.py:375-380.
    assert reason("vllm", 1, max_num_batched_tokens=128, max_num_seqs=256) == (
        "max-num-batched-tokens (128) must be at least max-num-seqs (256)"
    )
    assert reason("vllm", 1, max_num_batched_tokens=256, max_num_seqs=256) is None


def test_vllm_without_chunked_prefill_needs_a_batch_as_long_as_the_context():
    # vllm/config/scheduler.py:362-373: only with chunked prefill off.
    assert reason("vllm", 1, max_num_batched_tokens=4096, max_model_len=8192, enable_chunked_prefill=False) == (
        "with chunked prefill off, max-num-batched-tokens (4096) must be at least max-model-len (8192)"
    )
    assert reason("vllm", 1, max_num_batched_tokens=4096, max_model_len=8192, enable_chunked_prefill=True) is None
    assert reason("vllm", 1, max_num_batched_tokens=4096, max_model_len=8192) is None
    # vllm/utils/argparse_utils.py EnableDisableAction: --disable-chunked-prefill is the same switch off.
    assert reason("vllm", 1, max_num_batched_tokens=4096, max_model_len=8192, disable_chunked_prefill=True) == (
        "with chunked prefill off, max-num-batched-tokens (4096) must be at least max-model-len (8192)"
    )


def test_vllm_reads_human_readable_sizes_as_it_compares_them():
    # vllm/engine/arg_utils.py human_readable_int: "4k" is 4000, "4K" is 4096; -1 max-model-len is the model's.
    assert reason("vllm", 1, max_num_batched_tokens="4k", max_model_len="8K", enable_chunked_prefill=False) == (
        "with chunked prefill off, max-num-batched-tokens (4000) must be at least max-model-len (8192)"
    )
    assert reason("vllm", 1, max_num_batched_tokens="4k", max_model_len=-1, enable_chunked_prefill=False) is None
    assert reason("vllm", 1, max_num_batched_tokens="1k", max_num_seqs=1024) == (
        "max-num-batched-tokens (1000) must be at least max-num-seqs (1024)"
    )
