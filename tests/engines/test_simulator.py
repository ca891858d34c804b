"""The inference-server model behind the stand-in engine: the facts a tuner should find in it, and
the true optimum a search is judged against."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from engines.optimum import combinations, score, true_optimum
from engines.simulator import (
    CannotServe,
    Config,
    Workload,
    decode_ms,
    expected,
    first_token_ms,
    token_ms,
)

WORKLOAD = Workload(input_tokens=512, output_tokens=256)
SHARED = Workload(input_tokens=2048, output_tokens=128, shared_prefix=0.5)


def config(**flags: object) -> Config:
    return Config.from_flags(flags, "sglang")


@pytest.mark.parametrize(
    ("runtime", "flags"),
    [
        (
            "sglang",
            {
                "tp-size": 2,
                "dp-size": "2",
                "pp-size": 1,
                "mem-fraction-static": "0.8",
                "chunked-prefill-size": 4096,
                "schedule-policy": "lpm",
                "disable-radix-cache": True,
                "max-running-requests": 64,
                "stream-interval": 4,
            },
        ),
        (
            "vllm",
            {
                "tensor-parallel-size": "2",
                "data-parallel-size": 2,
                "gpu-memory-utilization": 0.8,
                "max-num-batched-tokens": "4K",
                "scheduling-policy": "lpm",
                "enable-prefix-caching": "false",
                "max-num-seqs": 64,
                "stream-interval": "4",
                "some-unknown-flag": "x",
            },
        ),
    ],
    ids=["sglang", "vllm"],
)
def test_either_engines_spelling_reads_as_one_configuration(runtime, flags):
    read = Config.from_flags(flags, runtime)
    assert read == Config(
        runtime=runtime,
        tp=2,
        dp=2,
        memory_fraction=0.8,
        chunked_prefill=4096,
        schedule_policy="lpm",
        prefix_cache=False,
        max_running=64,
        stream_interval=4,
    )
    assert read.gpus_needed == 4


def test_gpus_needed_counts_replicas_of_tp_by_pp_but_not_attention_dp():
    assert config(**{"tp-size": 2, "pp-size": 2, "dp-size": 3}).gpus_needed == 12
    assert config(**{"tp-size": 4, "dp-size": 4, "enable-dp-attention": True}).gpus_needed == 4


def test_each_engine_starts_with_its_own_defaults_and_either_turns_chunking_off():
    assert (Config.from_flags({}, "sglang").memory_fraction, Config.from_flags({}, "sglang").max_running) == (0.88, 0)
    assert (Config.from_flags({}, "vllm").memory_fraction, Config.from_flags({}, "vllm").max_running) == (0.9, 256)
    assert Config.from_flags({"chunked-prefill-size": -1}, "sglang").chunked_prefill == 0
    assert Config.from_flags({"disable-chunked-prefill": True}, "vllm").chunked_prefill == 0
    with pytest.raises(ValueError, match="'two' is not a whole number"):
        Config.from_flags({"tp-size": "two"}, "sglang")


def test_more_tensor_parallelism_decodes_faster_with_diminishing_returns():
    steps = [decode_ms(config(**{"tp-size": tp}), running=1) for tp in (1, 2, 4, 8)]
    assert steps == sorted(steps, reverse=True)
    gains = [slower / faster for slower, faster in itertools.pairwise(steps)]
    assert gains == sorted(gains, reverse=True), "each doubling buys less than the one before"
    assert gains[-1] < 2 * 0.75, "and well under twice as fast"
    # Per GPU, one request's throughput falls as tp grows: the communication is not free.
    per_gpu = [1 / (step * tp) for step, tp in zip(steps, (1, 2, 4, 8), strict=True)]
    assert per_gpu == sorted(per_gpu, reverse=True)


def test_beyond_the_kv_capacity_requests_queue_and_ttft_climbs():
    small = config(**{"mem-fraction-static": 0.5})
    slots = small.slots(512 + 256)
    assert 8 < slots < 32
    fits, full, over = (expected(small, WORKLOAD, load) for load in (slots // 2, slots, 2 * slots))
    assert (fits.waiting, full.waiting, over.waiting) == (0, 0, slots)
    assert full.ttft_ms < 1.5 * fits.ttft_ms
    assert over.ttft_ms > 10 * full.ttft_ms, "the queued half waits a whole request"
    assert over.output_tokens_per_s == pytest.approx(full.output_tokens_per_s), "throughput stops growing"
    # A larger memory fraction holds more requests: no queue at the same load.
    assert expected(config(**{"mem-fraction-static": 0.9}), WORKLOAD, 2 * slots).waiting == 0


def test_a_shared_prefix_is_cheapest_with_the_cache_and_lpm():
    def at_16(**flags: object):
        return expected(config(**flags), SHARED, 16)

    lpm = at_16(**{"schedule-policy": "lpm"})
    fcfs = at_16(**{"schedule-policy": "fcfs"})
    uncached = at_16(**{"schedule-policy": "lpm", "disable-radix-cache": True})
    assert lpm.ttft_ms < fcfs.ttft_ms < uncached.ttft_ms
    assert lpm.output_tokens_per_s > fcfs.output_tokens_per_s > uncached.output_tokens_per_s
    # Without a shared prefix lpm only costs its sorting.
    plain = Workload(input_tokens=2048, output_tokens=128)
    by_policy = {policy: expected(config(**{"schedule-policy": policy}), plain, 16) for policy in ("lpm", "fcfs")}
    assert by_policy["fcfs"].output_tokens_per_s > by_policy["lpm"].output_tokens_per_s


def test_a_smaller_prefill_chunk_trades_ttft_for_tpot_under_load():
    small, large = (config(**{"chunked-prefill-size": size}) for size in (128, 2048))
    assert first_token_ms(small, 2048, running=16) > first_token_ms(large, 2048, running=16)
    assert token_ms(small, 2048, 128, running=16) < token_ms(large, 2048, 128, running=16)
    # Alone, no other request's prefill stalls the decode.
    assert token_ms(large, 2048, 128, running=1) == decode_ms(large, running=1)


def test_a_longer_stream_interval_sends_fewer_chunks_and_decodes_faster():
    one, eight = (config(**{"stream-interval": k}) for k in (1, 8))
    assert decode_ms(eight, running=32) < decode_ms(one, running=32)


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        ({"weights-gb": 140}, "the weights take 140.00 GiB a GPU and memory fraction 0.88 gives 70.40"),
        ({"mem-fraction-static": 0.97}, "memory fraction 0.97 leaves no room for activations"),
        (
            {"chunked-prefill-size": 32768, "mem-fraction-static": 0.9},
            "a prefill chunk of 32768 tokens needs 16.00 GiB of activations and memory fraction 0.9 leaves 8.00",
        ),
    ],
    ids=["weights", "fraction", "activations"],
)
def test_out_of_memory_when_weights_or_activations_do_not_fit(flags, reason):
    assert config(**flags).out_of_memory() == reason
    with pytest.raises(CannotServe, match="out of memory"):
        expected(config(**flags), WORKLOAD, 1)


def test_weights_that_do_not_fit_one_gpu_fit_a_tensor_parallel_group():
    assert config(**{"weights-gb": 140, "tp-size": 4}).out_of_memory() is None


def test_a_request_larger_than_the_cache_cannot_be_served():
    tight = config(**{"mem-fraction-static": 0.201})  # room for about 80 tokens
    with pytest.raises(CannotServe, match="a request needs 768 tokens of KV cache"):
        expected(tight, WORKLOAD, 1)


def test_data_parallel_replicas_split_a_closed_loop():
    two = expected(config(**{"dp-size": 2}), WORKLOAD, 8)
    one = expected(config(), WORKLOAD, 4)
    assert two.output_tokens_per_s == pytest.approx(2 * one.output_tokens_per_s)
    assert two.tpot_ms == pytest.approx(one.tpot_ms)
    uneven = expected(config(**{"dp-size": 2}), WORKLOAD, 3)
    assert uneven.worst_tpot_ms > uneven.tpot_ms, "the replica with two requests is the slower"


def test_an_open_loop_serves_its_rate_until_capacity_then_queues_without_end():
    tp2 = config(**{"tp-size": 2})
    below = expected(tp2, WORKLOAD, 10, mode="rate")
    assert below.requests_per_s == pytest.approx(10)
    assert below.running == pytest.approx(10 * below.e2e_s)  # Little's law
    over = expected(tp2, WORKLOAD, 1000, mode="rate")
    assert math.isinf(over.ttft_ms)
    assert over.requests_per_s < 1000


GRID: dict[str, list[Any]] = {
    "tp-size": [1, 2, 4],
    "dp-size": [1, 2],
    "mem-fraction-static": [0.5, 0.8, 0.97],
    "schedule-policy": ["fcfs", "lpm"],
}


def brute_force(objective_of, gpu_cap: int) -> tuple[dict, float]:
    """The best combination by the model's own figures, read without the scoring module."""
    scored = []
    for combination in combinations(GRID):
        chosen = Config.from_flags(combination, "sglang")
        if chosen.gpus_needed > gpu_cap or chosen.out_of_memory():
            continue
        scored.append((objective_of(chosen), combination))
    value, best = max(scored, key=lambda pair: pair[0])  # max keeps the first of equals
    return best, value


@pytest.mark.parametrize("gpu_cap", [1, 4, 8])
def test_the_true_optimum_of_throughput_is_the_brute_force_best_within_the_gpu_cap(gpu_cap):
    loads = [8, 32]
    best, value = brute_force(
        lambda chosen: max(expected(chosen, SHARED, load).output_tokens_per_s for load in loads), gpu_cap
    )

    optimum = true_optimum(
        GRID, runtime="sglang", workload=SHARED, objective="maximize_throughput", loads=loads, gpu_cap=gpu_cap
    )

    assert optimum.combination == best
    assert optimum.value == pytest.approx(value)
    assert Config.from_flags(optimum.combination, "sglang").gpus_needed <= gpu_cap
    assert optimum.score_of(optimum.combination) == optimum.value
    assert optimum.shortfall(optimum.value) == 0


def test_per_gpu_throughput_prefers_replicas_of_one_gpu():
    optimum = true_optimum(
        GRID, runtime="sglang", workload=SHARED, objective="maximize_throughput_per_gpu", loads=[8, 32], gpu_cap=8
    )
    assert optimum.combination["tp-size"] == 1
    assert optimum.combination["mem-fraction-static"] == 0.8


def test_the_true_goodput_is_the_highest_load_meeting_every_slo():
    slos = {"ttft_p90_ms": 100}

    def goodput(chosen: Config) -> int:
        return max(
            load for load in range(1, 257) if expected(chosen, SHARED, load).worst_ttft_ms <= slos["ttft_p90_ms"]
        )

    best, value = brute_force(goodput, gpu_cap=4)

    optimum = true_optimum(
        GRID, runtime="sglang", workload=SHARED, objective="maximize_goodput", loads=[1, 256], slos=slos, gpu_cap=4
    )

    assert (optimum.combination, optimum.value) == (best, value)
    assert 1 < value < 256


def test_a_lower_is_better_optimum_measures_shortfall_upwards():
    optimum = true_optimum(GRID, runtime="sglang", workload=SHARED, objective="minimize_ttft", loads=[8], gpu_cap=8)
    over_cap = {**optimum.combination, "tp-size": 4, "dp-size": 2}
    assert optimum.shortfall(optimum.value * 1.1) == pytest.approx(0.1)
    assert optimum.shortfall(None) == math.inf
    assert score(over_cap, runtime="sglang", workload=SHARED, objective="minimize_ttft", loads=[8], gpu_cap=4) is None


def test_a_grid_with_nothing_runnable_has_no_optimum():
    with pytest.raises(ValueError, match="no combination of the grid has a score"):
        true_optimum(
            {"mem-fraction-static": [0.97]},
            runtime="sglang",
            workload=WORKLOAD,
            objective="maximize_throughput",
            loads=[1],
        )
