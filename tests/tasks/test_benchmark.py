"""The benchmark client against the stand-in engine, its percentile helper, and how a task's
objective and SLOs score the levels."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from engines import standin
from tasks.benchmark import (
    LevelResult,
    benchmark,
    percentile,
    run_coroutine,
    run_level,
    score,
    slo_violations,
    summarize,
)
from tasks.runner import EngineProcess, free_port

# Percentiles


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([5.0], 99, 5.0),
        ([1, 2, 3, 4], 0, 1),
        ([1, 2, 3, 4], 50, 2.5),
        ([1, 2, 3, 4], 90, 3.7),
        ([1, 2, 3, 4], 100, 4),
        ([4, 1, 3, 2], 50, 2.5),
        ([10, 20, 30], 50, 20),
        ([10, 20, 30], 99, 29.8),
    ],
    ids=["one value", "p0 is the minimum", "p50 between two", "p90", "p100 is the maximum", "unsorted", "odd", "p99"],
)
def test_percentile_interpolates_linearly_between_closest_ranks(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected)


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summary_has_each_percentile_and_the_mean():
    assert summarize([1, 2, 3, 4]) == pytest.approx({"p50": 2.5, "p90": 3.7, "p99": 3.97, "mean": 2.5})
    assert summarize([]) == {"p50": None, "p90": None, "p99": None, "mean": None}


# Scoring


def make_level(concurrency: int = 1, **overrides: Any) -> LevelResult:
    fields: dict[str, Any] = {
        "concurrency": concurrency,
        "requests": 10,
        "succeeded": 10,
        "failed": 0,
        "duration_s": 1.0,
        "requests_per_s": 10.0,
        "output_tokens_per_s": 100.0 * concurrency,
        "success_rate": 1.0,
        "ttft_ms": {"p50": 10.0 * concurrency, "p90": 20.0 * concurrency, "p99": 30.0 * concurrency, "mean": 12.0},
        "tpot_ms": {"p50": 2.0 * concurrency, "p90": 3.0 * concurrency, "p99": 4.0 * concurrency, "mean": 2.5},
        "e2e_s": {"p50": 0.5 * concurrency, "p90": 0.8 * concurrency, "p99": 1.0 * concurrency, "mean": 0.6},
    }
    return LevelResult(**(fields | overrides))


LEVELS = [make_level(1), make_level(8), make_level(32)]


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("maximize_throughput", 3200.0),
        ("minimize_latency", 0.5),
        ("minimize_ttft", 10.0),
        ("minimize_tpot", 2.0),
    ],
    ids=["throughput takes the busiest level", "latency", "ttft", "tpot"],
)
def test_score_picks_the_best_level_for_the_objective(objective, expected):
    assert score(LEVELS, objective, {}) == (pytest.approx(expected), None)


def test_score_skips_levels_that_miss_an_slo():
    # Level 32 has p90 TTFT 640 ms and level 8 has 160 ms: under 300 ms only 1 and 8 count.
    assert score(LEVELS, "maximize_throughput", {"ttft_p90_ms": 300, "tpot_p90_ms": None}) == (800.0, None)


def test_score_names_the_slo_the_closest_level_violates():
    levels = [make_level(1, ttft_ms={"p50": 300.0, "p90": 412.0, "p99": 500.0, "mean": 320.0}), make_level(8)]
    slos = {"ttft_p90_ms": 300, "e2e_p99_s": 2}
    # Each level misses one SLO (level 8 its p99 E2E of 8 s); the tie goes to the lower level.
    assert slo_violations(levels[1], slos) == ["p99 E2E 8 s > 2 s"]
    assert score(levels, "minimize_ttft", slos) == (None, "violates SLO (p90 TTFT 412 ms > 300 ms)")


def test_every_missed_slo_is_named():
    level = make_level(4, success_rate=0.9, succeeded=9, failed=1)
    slos = {"ttft_p90_ms": 50, "tpot_p90_ms": 10.5, "e2e_p99_s": 2.5, "min_success_rate": 0.99}
    assert score([level], "maximize_throughput", slos) == (
        None,
        "violates SLO (p90 TTFT 80 ms > 50 ms; p90 TPOT 12 ms > 10.5 ms; p99 E2E 4 s > 2.5 s; success rate 90% < 99%)",
    )


def test_a_level_where_nothing_succeeded_is_never_chosen():
    empty = {"p50": None, "p90": None, "p99": None, "mean": None}
    broken = make_level(1, succeeded=0, failed=10, success_rate=0.0, ttft_ms=empty, tpot_ms=empty, e2e_s=empty)
    assert score([broken], "minimize_ttft", {}) == (None, "no request succeeded")
    assert score([broken, make_level(8)], "minimize_ttft", {}) == (80.0, None)
    assert score([], "minimize_ttft", {}) == (None, "no benchmark results")


def test_score_refuses_unknown_objectives_and_slos():
    with pytest.raises(ValueError, match="unknown objective"):
        score(LEVELS, "maximize_joy", {})
    with pytest.raises(ValueError, match="unknown SLO ttft_p95_ms"):
        score(LEVELS, "minimize_ttft", {"ttft_p95_ms": 10})


# Against the stand-in engine


@contextmanager
def start_standin(*flags: str, tp: int = 2) -> Iterator[str]:
    port = free_port()
    with EngineProcess(standin.command(port, *flags, tp=tp)) as engine:
        url = f"http://127.0.0.1:{port}"
        engine.wait_until_healthy(url, timeout_s=10)
        yield url


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    with start_standin() as url:
        yield url


def assert_ordered(summary: dict[str, float | None]) -> None:
    p50, p90, p99, mean = summary["p50"], summary["p90"], summary["p99"], summary["mean"]
    assert None not in (p50, p90, p99, mean)
    assert 0 < p50 <= p90 <= p99
    assert mean > 0


@pytest.mark.engine
def test_two_concurrency_levels_measure_every_request(engine_url):
    results = benchmark(engine_url, "m", [1, 4], requests=8, input_tokens=64, output_tokens=16, max_seconds=10)
    assert [level.concurrency for level in results] == [1, 4]
    for level in results:
        assert (level.requests, level.succeeded, level.failed, level.success_rate) == (8, 8, 0, 1.0)
        assert level.errors == {}
        assert level.duration_s > 0
        assert level.requests_per_s == pytest.approx(8 / level.duration_s)
        assert level.output_tokens_per_s == pytest.approx(8 * 16 / level.duration_s)
        for summary in (level.ttft_ms, level.tpot_ms, level.e2e_s):
            assert_ordered(summary)
        # The stand-in's TTFT at tp 2 is (20 ms + 0.64 ms) / 2.
        assert level.ttft_ms["p50"] >= 10
        assert level.as_dict()["ttft_ms"] == level.ttft_ms
    assert results[1].requests_per_s > results[0].requests_per_s, "four in flight finish sooner than one"


@pytest.mark.engine
def test_more_tensor_parallelism_gives_a_faster_tpot(engine_url):
    def mean_tpot(url: str) -> float:
        [level] = benchmark(url, "m", [1], requests=4, input_tokens=8, output_tokens=32, max_seconds=10)
        assert level.success_rate == 1.0
        assert level.tpot_ms["mean"] is not None
        return level.tpot_ms["mean"]

    with start_standin(tp=1) as tp1:
        single = mean_tpot(tp1)
    # The stand-in halves TPOT at tp 2 (2 ms → 1 ms); a quarter off leaves room for overhead.
    assert mean_tpot(engine_url) < 0.75 * single


@pytest.mark.engine
def test_no_request_starts_after_the_time_budget(engine_url):
    # At tp 2 a token takes 1 ms, so a request of 200 takes over 0.2 s: two rounds of two start in 0.3 s.
    sizes = {"requests": 100, "input_tokens": 8, "output_tokens": 200}
    result = run_coroutine(run_level(engine_url, "m", concurrency=2, **sizes, max_seconds=0.3, request_timeout_s=5))
    assert 2 <= result.requests <= 6
    assert result.succeeded == result.requests


@pytest.mark.engine
def test_a_slow_request_fails_as_a_timeout(engine_url):
    [level] = benchmark(
        engine_url, "m", [2], requests=2, input_tokens=8, output_tokens=200, max_seconds=5, request_timeout_s=0.05
    )
    assert (level.succeeded, level.failed, level.success_rate) == (0, 2, 0.0)
    assert level.errors == {"timeout": 2}
    assert level.ttft_ms["p50"] is None


@pytest.mark.engine
def test_an_unknown_model_fails_every_request_with_its_status(engine_url):
    [level] = benchmark(engine_url, "other", [2], requests=4, input_tokens=8, output_tokens=4, max_seconds=5)
    assert (level.succeeded, level.failed) == (0, 4)
    assert level.errors == {"HTTP 404": 4}


def test_a_refused_connection_is_a_failure_not_an_exception():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    [level] = benchmark(url, "m", [2], requests=3, input_tokens=8, output_tokens=4, max_seconds=5)
    assert (level.requests, level.failed, level.success_rate) == (3, 3, 0.0)
    assert [error.split(":")[0] for error in level.errors] == ["ConnectionRefusedError"]
