"""The benchmark client against small engines of our own and the stand-in engine, the workload it
sends, its percentile helper, and how a task's objective and SLOs score the levels."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engines import standin
from tasks.benchmark import LevelResult, benchmark, goodput_search, percentile, summarize
from tasks.runner import EngineProcess, free_port
from tasks.scoring import higher_is_better, score, slo_violations
from tasks.workload import Workload, arrival_times, make_request

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
OLD_KEYS = {"concurrency", "requests", "succeeded", "failed", "duration_s", "requests_per_s", "output_tokens_per_s"}
OLD_KEYS |= {"success_rate", "ttft_ms", "tpot_ms", "e2e_s", "errors"}


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


def test_throughput_per_gpu_divides_by_the_gpus_a_configuration_ran_on():
    assert score(LEVELS, "maximize_throughput_per_gpu", {}, gpus=4) == (pytest.approx(800.0), None)
    assert score(LEVELS, "maximize_throughput_per_gpu", {}) == (pytest.approx(3200.0), None)
    with pytest.raises(ValueError, match="at least 1 GPU"):
        score(LEVELS, "maximize_throughput_per_gpu", {}, gpus=0)


def test_goodput_scores_the_highest_load_meeting_every_slo():
    assert score(LEVELS, "maximize_goodput", {"ttft_p90_ms": 300}) == (8, None)
    assert higher_is_better("maximize_goodput")
    assert not higher_is_better("minimize_ttft")


def test_a_level_stopped_early_misses_its_slo_whatever_its_figures():
    stopped = make_level(8, stopped_early="5 of 40 requests over the p90 TTFT limit of 300 ms")
    assert slo_violations(stopped, {"ttft_p90_ms": 300}) == [
        "stopped early: 5 of 40 requests over the p90 TTFT limit of 300 ms"
    ]
    assert score([make_level(1), stopped], "maximize_throughput", {"ttft_p90_ms": 300}) == (100.0, None)


def test_a_stored_level_reads_back_also_from_before_the_new_fields():
    level = make_level(8, prompt_tokens=640, output_tokens=160, tokens_from="usage", warmup=2, mode="rate")
    assert LevelResult.from_dict(json.loads(json.dumps(level.as_dict()))) == level
    old = {key: value for key, value in make_level(8).as_dict().items() if key in OLD_KEYS} | {"gone": 1}
    restored = LevelResult.from_dict(old)
    assert (restored.concurrency, restored.output_tokens_per_s, restored.tokens_from) == (8, 800.0, "chunks")
    assert (restored.mode, restored.warmup, restored.stopped_early) == ("concurrency", 0, "")


# The workload


def test_lengths_stay_in_their_ranges_and_repeat_under_a_seed():
    workload = Workload(input_tokens=10, output_tokens=4, input_tokens_max=20, output_tokens_max=8, seed=3)
    requests = [make_request(workload, index, salt=index) for index in range(200)]
    words = [len(request.prompt.split()) for request in requests]
    assert (min(words), max(words)) == (10, 20)
    assert {request.max_tokens for request in requests} == set(range(4, 9))
    assert requests == [make_request(workload, index, salt=index) for index in range(200)]
    other = [make_request(replace(workload, seed=4), index, salt=index) for index in range(200)]
    assert [len(request.prompt.split()) for request in other] != words


def test_fixed_lengths_are_exact():
    request = make_request(Workload(input_tokens=12, output_tokens=5), 7, salt=7)
    assert (len(request.prompt.split()), request.max_tokens) == (12, 5)


def test_a_shared_prefix_is_the_same_words_for_every_request_and_the_rest_unique():
    workload = Workload(input_tokens=20, output_tokens=1, input_tokens_max=30, shared_prefix=0.5, seed=1)
    prompts = [make_request(workload, index % 10, salt=index).prompt.split() for index in range(40)]
    shortest = min(round(len(words) / 2) for words in prompts)
    assert shortest == 10
    assert len({tuple(words[:shortest]) for words in prompts}) == 1
    assert all(words[round(len(words) / 2)] == f"request-{salt}" for salt, words in enumerate(prompts))
    assert len({" ".join(words) for words in prompts}) == 40


def test_a_workload_refuses_what_cannot_be_sent():
    with pytest.raises(ValueError, match="mode 'burst' is not one of concurrency, rate; output_tokens_max"):
        Workload(input_tokens=8, output_tokens=8, output_tokens_max=4, mode="burst")


def test_poisson_arrivals_come_at_the_rate_and_repeat_under_a_seed():
    times = arrival_times(100, 5000, seed=2)
    gaps = [later - earlier for earlier, later in zip([0.0, *times], times, strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(0.01, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(0.01, rel=0.1)  # exponential: the spread is the mean
    assert times == arrival_times(100, 5000, seed=2) != arrival_times(100, 5000, seed=3)


# Against small engines of our own, in this process


@dataclass
class FakeEngine:
    """An OpenAI-compatible completions server on a loopback port, each answer ``max_tokens`` long."""

    tokens_per_chunk: int = 1
    usage: bool = True
    token_s: float = 0.001
    # Once more requests than this have been in flight together, and until the engine is idle again,
    # the first token takes busy_ttft_s: a capacity the client's timing cannot slip under.
    busy_above: int | None = None
    busy_ttft_s: float = 0.2
    bodies: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    busy_peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def complete(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.busy_peak = max(self.busy_peak, self.in_flight)
            busy = self.busy_above is not None and self.busy_peak > self.busy_above
        time.sleep(self.busy_ttft_s if busy else 0)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        tokens = body["max_tokens"]
        for start in range(0, tokens, self.tokens_per_chunk):
            count = min(self.tokens_per_chunk, tokens - start)
            time.sleep(self.token_s * count)
            # vLLM sends a null usage in every event before the last.
            send_event(handler, {"choices": [{"index": 0, "text": " tok" * count}], "usage": None})
        with self.lock:
            self.in_flight -= 1  # before the end, so the client's next request never finds this one in flight
            self.busy_peak = self.busy_peak if self.in_flight else 0
        if self.usage:
            usage = {"prompt_tokens": len(body["prompt"].split()), "completion_tokens": tokens}
            send_event(handler, {"choices": [], "usage": usage})
        send_event(handler, "[DONE]")
        handler.wfile.write(b"0\r\n\r\n")


def send_event(handler: BaseHTTPRequestHandler, event: object) -> None:
    data = f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode()
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()


@contextmanager
def serving(engine: FakeEngine) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body["model"] != "m":
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            engine.complete(self, body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_tokens_are_counted_exactly_from_usage_when_an_engine_sends_several_a_chunk():
    engine = FakeEngine(tokens_per_chunk=3, token_s=0.01)
    with serving(engine) as url:
        [level] = benchmark(url, "m", Workload(input_tokens=6, output_tokens=10, requests=4), [2])
    assert (level.succeeded, level.output_tokens, level.prompt_tokens, level.tokens_from) == (4, 40, 24, "usage")
    assert level.output_tokens_per_s == pytest.approx(40 / level.duration_s)
    # After the first chunk, 7 tokens take 70 ms: TPOT divides by the 9 tokens after the first, not by 3 chunks.
    assert 6 < (level.tpot_ms["p50"] or 0) < 12
    assert all(body["stream_options"] == {"include_usage": True} for body in engine.bodies)


def test_without_usage_the_chunks_are_counted_and_the_level_says_so():
    with serving(FakeEngine(tokens_per_chunk=3, usage=False)) as url:
        [level] = benchmark(url, "m", Workload(input_tokens=6, output_tokens=10, requests=4), [2])
    assert (level.succeeded, level.output_tokens, level.prompt_tokens, level.tokens_from) == (4, 16, 24, "chunks")


def test_warm_up_requests_reach_the_engine_but_no_figure():
    engine = FakeEngine()
    workload = Workload(input_tokens=4, output_tokens=5, requests=5, warmup_requests=3)
    with serving(engine) as url:
        levels = benchmark(url, "m", workload, [1, 2])
    assert len(engine.bodies) == 2 * (3 + 5)
    for level in levels:
        assert (level.requests, level.warmup, level.output_tokens) == (5, 3, 25)
    # Every prompt, warm-up or counted, at every level, is its own: no cache serves one from another.
    assert len({body["prompt"] for body in engine.bodies}) == 16


def test_an_open_loop_sends_at_its_rate_whatever_is_in_flight():
    engine = FakeEngine(token_s=0.05)  # each answer takes a quarter of a second
    workload = Workload(input_tokens=4, output_tokens=5, requests=20, mode="rate", seed=5)
    with serving(engine) as url:
        [level] = benchmark(url, "m", workload, [40])
    assert (level.concurrency, level.mode, level.succeeded) == (40, "rate", 20)
    last_arrival = arrival_times(40, 20, seed=5)[-1]
    assert last_arrival + 0.25 <= level.duration_s < last_arrival + 1.5
    # A closed loop of one would never have more than one in flight.
    assert engine.most_in_flight >= 4


def test_a_level_stops_early_once_its_slo_is_lost_and_higher_loads_do_not_run():
    engine = FakeEngine(token_s=0.02, busy_above=2, busy_ttft_s=0.3)
    slos = {"ttft_p90_ms": 150.0}
    workload = Workload(input_tokens=4, output_tokens=2, requests=20)
    with serving(engine) as url:
        levels = benchmark(url, "m", workload, [2, 8, 16], slos=slos, early_stop=True)
    assert [level.concurrency for level in levels] == [2, 8]
    assert (levels[0].requests, levels[0].stopped_early) == (20, "")
    # 3 requests over the limit are more than 10 % of 20: the level starts no more.
    assert levels[1].stopped_early == "3 of 20 requests over the p90 TTFT limit of 150 ms"
    assert levels[1].requests <= 12
    assert slo_violations(levels[1], slos)[-1] == f"stopped early: {levels[1].stopped_early}"


def test_a_level_stops_early_once_failures_exceed_what_the_success_rate_allows():
    workload = Workload(input_tokens=4, output_tokens=2, requests=20)
    with serving(FakeEngine()) as url:
        levels = benchmark(url, "other", workload, [2, 4], slos={"min_success_rate": 0.9}, early_stop=True)
    [level] = levels
    assert level.stopped_early == "3 of 20 requests failed, more than a success rate of 90% allows"
    assert level.requests <= 4


def test_without_early_stop_every_level_runs_in_full():
    workload = Workload(input_tokens=4, output_tokens=2, requests=10)
    with serving(FakeEngine(busy_above=2, busy_ttft_s=0.05)) as url:
        levels = benchmark(url, "m", workload, [2, 4], slos={"ttft_p90_ms": 10.0})
    assert [(level.requests, level.stopped_early) for level in levels] == [(10, ""), (10, "")]


def test_goodput_doubles_then_bisects_to_the_capacity_of_the_engine():
    slos = {"ttft_p90_ms": 150.0}
    # The warm-up opens the level's connections: its requests then all start at once.
    workload = Workload(input_tokens=4, output_tokens=2, requests=12, warmup_requests=8)
    seen: list[float] = []
    # Up to 7 in flight the first token comes at once; an 8th makes the rest of the level wait.
    with serving(FakeEngine(token_s=0.02, busy_above=7, busy_ttft_s=0.3)) as url:
        levels = goodput_search(url, "m", workload, slos=slos, start=1, ceiling=64, on_level=seen.append)
    assert [level.concurrency for level in levels] == seen == [1, 2, 4, 8, 6, 7]
    assert score(levels, "maximize_goodput", slos) == (7, None)


def test_goodput_stops_at_the_ceiling_when_every_load_holds():
    with serving(FakeEngine()) as url:
        levels = goodput_search(
            url, "m", Workload(input_tokens=4, output_tokens=2, requests=6), slos={"e2e_p99_s": 5}, start=2, ceiling=6
        )
    assert [level.concurrency for level in levels] == [2, 4, 6]


def test_goodput_without_an_slo_is_refused():
    workload = Workload(input_tokens=4, output_tokens=2)
    with pytest.raises(ValueError, match=r"^goodput is the highest load meeting every SLO: set at least one SLO$"):
        goodput_search("http://127.0.0.1:9", "m", workload, slos={"ttft_p90_ms": None}, start=1, ceiling=8)


def test_a_stop_cancels_the_requests_in_flight():
    stop = threading.Event()
    workload = Workload(input_tokens=4, output_tokens=200, requests=4)  # a second a request
    with serving(FakeEngine(token_s=0.005)) as url:
        threading.Timer(0.2, stop.set).start()
        started = time.perf_counter()
        levels = benchmark(url, "m", workload, [2, 4], stop=stop)
        assert time.perf_counter() - started < 0.6
    assert [(level.concurrency, level.requests) for level in levels] == [(2, 0)]


def test_no_request_starts_after_the_time_budget():
    # A request of 100 tokens takes over 0.1 s: two rounds of two start in 0.15 s.
    workload = Workload(input_tokens=4, output_tokens=100, requests=100, max_seconds=0.15, request_timeout_s=5)
    with serving(FakeEngine()) as url:
        [level] = benchmark(url, "m", workload, [2])
    assert 2 <= level.requests <= 6
    assert level.succeeded == level.requests


def test_a_slow_request_fails_as_a_timeout():
    workload = Workload(input_tokens=4, output_tokens=200, requests=2, max_seconds=5, request_timeout_s=0.05)
    with serving(FakeEngine()) as url:
        [level] = benchmark(url, "m", workload, [2])
    assert (level.succeeded, level.failed, level.success_rate) == (0, 2, 0.0)
    assert level.errors == {"timeout": 2}
    assert level.ttft_ms["p50"] is None


def test_an_unknown_model_fails_every_request_with_its_status():
    with serving(FakeEngine()) as url:
        [level] = benchmark(url, "other", Workload(input_tokens=4, output_tokens=4, requests=4), [2])
    assert (level.succeeded, level.failed) == (0, 4)
    assert level.errors == {"HTTP 404": 4}


def test_a_refused_connection_is_a_failure_not_an_exception():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    [level] = benchmark(url, "m", Workload(input_tokens=8, output_tokens=4, requests=3), [2])
    assert (level.requests, level.failed, level.success_rate) == (3, 3, 0.0)
    assert list(level.errors) == ["ConnectError: All connection attempts failed"]


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
    results = benchmark(
        engine_url, "m", Workload(input_tokens=64, output_tokens=16, requests=8, max_seconds=10), [1, 4]
    )
    assert [level.concurrency for level in results] == [1, 4]
    for level in results:
        assert (level.requests, level.succeeded, level.failed, level.success_rate) == (8, 8, 0, 1.0)
        assert level.errors == {}
        assert level.duration_s > 0
        assert level.requests_per_s == pytest.approx(8 / level.duration_s)
        assert level.output_tokens == 8 * 16
        assert level.output_tokens_per_s == pytest.approx(8 * 16 / level.duration_s)
        for summary in (level.ttft_ms, level.tpot_ms, level.e2e_s):
            assert_ordered(summary)
        assert level.as_dict()["ttft_ms"] == level.ttft_ms
    assert results[1].requests_per_s > results[0].requests_per_s, "four in flight finish sooner than one"


@pytest.mark.engine
def test_more_tensor_parallelism_gives_a_faster_tpot(engine_url):
    def mean_tpot(url: str) -> float:
        [level] = benchmark(url, "m", Workload(input_tokens=8, output_tokens=32, requests=4, max_seconds=10), [1])
        assert level.success_rate == 1.0
        assert level.tpot_ms["mean"] is not None
        return level.tpot_ms["mean"]

    with start_standin(tp=1) as tp1:
        single = mean_tpot(tp1)
    # The stand-in speeds decoding with tp; a quarter off leaves room for overhead.
    assert mean_tpot(engine_url) < 0.75 * single
