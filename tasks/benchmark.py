"""A load generator for an OpenAI-compatible ``/v1/completions`` endpoint.

It sends a ``tasks.workload.Workload`` at each load (a concurrency, or a request rate in ``rate``
mode), warm-up first, and ``tasks.scoring`` scores the levels. Each request is streamed and asks for
usage (``stream_options.include_usage``). Per request:

- TTFT, time to first token: from sending the request to the first chunk carrying text (ms).
- TPOT, time per output token: (end − first token) / (output tokens − 1), the decode speed (ms);
  a one-token answer has none.
- E2E, end-to-end latency: from sending the request to the end of the stream (s).
- Prompt and output tokens: from the engine's final usage event. An engine that sends none has its
  output counted as the chunks carrying text (one token a chunk, an under-count when it sends
  several) and its prompt as the prompt's words; the level then says ``tokens_from="chunks"``.

and per level:

- Requests per second and output tokens per second: what the succeeded requests delivered,
  divided by the level's wall-clock duration (warm-up excluded).
- Success rate: succeeded / requests sent; a non-200 answer, a broken or unfinished stream, an
  engine error event, a connection error or a timeout is a failure.

TTFT, TPOT and E2E are summarised over the succeeded requests as p50, p90, p99 and mean.

Early stop (``early_stop=True`` with SLOs): a level starts no more requests once its SLO can no
longer be met (``tasks.scoring.EarlyStop``), says why in ``stopped_early`` and counts as
missing its SLOs. ``benchmark`` then runs none of the loads after a level that misses an SLO (give
them in rising order): its list of results simply ends there.

Goodput (``goodput_search``): the highest load meeting every SLO, found by doubling the load from
``start`` while every SLO holds, then bisecting between the last good and the first bad load.

The HTTP client is httpx (keep-alive, streaming); it ignores proxy settings (``trust_env=False``),
which must never see engine traffic. An open loop's connections are capped at ``MAX_CONNECTIONS``;
later arrivals wait in the client for one, and that wait counts in their TTFT, as a user's would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx

from tasks.scoring import EarlyStop, Slos, has_limits, meets_slos
from tasks.workload import Request, Workload, arrival_times, make_request

PERCENTILES = {"p50": 50, "p90": 90, "p99": 99}
MAX_CONNECTIONS = 256  # an open loop's cap: past it arrivals queue in the client, not in the kernel
STOP_POLL_S = 0.05  # how often a level looks at the stop event

type Summary = dict[str, float | None]


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0–100) by linear interpolation between the closest ranks.

    The rank of ``p`` in n sorted values is (n − 1) · p / 100, and a rank between two values takes
    the point between them (numpy's default, ``statistics.quantiles(method="inclusive")``):
    ``percentile([1, 2, 3, 4], 50) == 2.5``, ``percentile([1, 2, 3, 4], 90) == 3.7``.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0–100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> Summary:
    """p50, p90, p99 and mean of ``values``; each None when there are none."""
    if not values:
        return {name: None for name in (*PERCENTILES, "mean")}
    summary: Summary = {name: percentile(values, p) for name, p in PERCENTILES.items()}
    summary["mean"] = statistics.fmean(values)
    return summary


# Results


@dataclass(frozen=True)
class RequestResult:
    ok: bool
    error: str | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    output_tokens: int = 0
    prompt_tokens: int = 0
    from_usage: bool = False  # the tokens came from the engine's usage, not counted chunks


@dataclass(frozen=True)
class LevelResult:
    concurrency: float  # the level's load: requests in flight, or requests per second in rate mode
    requests: int  # sent and counted; fewer than asked when the level ran out of time or stopped early
    succeeded: int
    failed: int
    duration_s: float
    requests_per_s: float
    output_tokens_per_s: float
    success_rate: float
    ttft_ms: Summary
    tpot_ms: Summary
    e2e_s: Summary
    errors: dict[str, int] = field(default_factory=dict)  # why requests failed, with how many each
    mode: str = "concurrency"
    prompt_tokens: int = 0  # totals over the succeeded requests
    output_tokens: int = 0
    # "usage" when every succeeded request reported it, else "chunks" (as every level stored before it)
    tokens_from: str = "chunks"
    warmup: int = 0  # requests sent before the level, not counted
    stopped_early: str = ""  # why the level stopped starting requests before its SLO was surely missed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LevelResult:
        """A level as stored (``as_dict`` read back from JSON), also one stored before a field existed."""
        empty: Summary = {name: None for name in (*PERCENTILES, "mean")}
        known = {item.name for item in fields(cls)}
        summaries = {name: empty | dict(data.get(name) or {}) for name in ("ttft_ms", "tpot_ms", "e2e_s")}
        return cls(**({key: value for key, value in data.items() if key in known} | summaries))


def _level_result(
    load: float, workload: Workload, results: Sequence[RequestResult], duration: float, warmup: int, stopped: str
) -> LevelResult:
    good = [result for result in results if result.ok]
    tokens = sum(result.output_tokens for result in good)
    return LevelResult(
        concurrency=load,
        requests=len(results),
        succeeded=len(good),
        failed=len(results) - len(good),
        duration_s=duration,
        requests_per_s=len(good) / duration if duration > 0 else 0.0,
        output_tokens_per_s=tokens / duration if duration > 0 else 0.0,
        success_rate=len(good) / len(results) if results else 0.0,
        ttft_ms=summarize([r.ttft_s * 1000 for r in good if r.ttft_s is not None]),
        tpot_ms=summarize([r.tpot_s * 1000 for r in good if r.tpot_s is not None]),
        e2e_s=summarize([r.e2e_s for r in good if r.e2e_s is not None]),
        errors=dict(Counter(result.error for result in results if result.error)),
        mode=workload.mode,
        prompt_tokens=sum(result.prompt_tokens for result in good),
        output_tokens=tokens,
        tokens_from="usage" if all(result.from_usage for result in good) else "chunks",
        warmup=warmup,
        stopped_early=stopped,
    )


# Running a level


async def _run_load(
    client: httpx.AsyncClient,
    url: str,
    model: str,
    workload: Workload,
    load: float,
    count: int,
    salts: Iterator[int],
    slos: Slos | None,
    results: list[RequestResult],
) -> str:
    """Send up to ``count`` requests at ``load``, adding each result to ``results`` as it ends; none
    starts after ``max_seconds`` or once the SLO (when ``slos`` is given) can no longer be met, and
    then why is returned."""
    timeout = workload.request_timeout_s if workload.request_timeout_s is not None else workload.max_seconds
    started = time.perf_counter()
    deadline = started + workload.max_seconds
    stopped = ""
    numbers = iter(range(count))
    early = EarlyStop(count, slos) if slos else None

    def next_request() -> Request | None:
        index = next(numbers, None)
        if index is None or stopped or time.perf_counter() >= deadline:
            return None
        return make_request(workload, index, next(salts))

    async def send(request: Request) -> None:
        nonlocal stopped
        result = await _stream_completion(client, url, model, request, timeout)
        results.append(result)
        if early and not stopped:
            stopped = early.add(result)

    async def closed_loop_worker() -> None:
        while request := next_request():
            await send(request)

    async with asyncio.TaskGroup() as group:
        if workload.mode == "concurrency":
            for _ in range(min(int(load), count) or 1):
                group.create_task(closed_loop_worker())
        else:
            for at in arrival_times(load, count, workload.seed):
                if started + at >= deadline:
                    break
                await asyncio.sleep(max(started + at - time.perf_counter(), 0))
                if not (request := next_request()):
                    break
                group.create_task(send(request))
    return stopped


async def run_level(
    base_url: str,
    model: str,
    workload: Workload,
    load: float,
    *,
    slos: Slos | None = None,
    early_stop: bool = False,
    stop: threading.Event | None = None,
    salts: Iterator[int] | None = None,
) -> LevelResult:
    """Warm up, then run one level of ``workload.requests`` streamed completions at ``load``.

    Once ``stop`` is set (a cancelled experiment) the requests in flight are cancelled and the level
    holds those that finished. ``salts`` numbers the prompts' unique markers; give the same iterator
    to every level of a benchmark, so no prompt repeats another's.
    """
    if load <= 0:
        raise ValueError(f"a level's load must be positive, not {load}")
    url = _endpoint(base_url)
    salts = salts if salts is not None else itertools.count()
    size = max(int(load), 1) if workload.mode == "concurrency" else MAX_CONNECTIONS
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    early_slos = slos if early_stop and slos and has_limits(slos) else None
    warmed: list[RequestResult] = []
    counted: list[RequestResult] = []
    stopped = ""
    started = time.perf_counter()
    # asyncio.timeout bounds each whole request; httpx's own (5 s by default) would cut a long TTFT.
    async with httpx.AsyncClient(limits=limits, timeout=None, trust_env=False) as client:

        async def both() -> None:
            nonlocal started, stopped
            await _run_load(client, url, model, workload, load, workload.warmup_requests, salts, None, warmed)
            started = time.perf_counter()
            stopped = await _run_load(client, url, model, workload, load, workload.requests, salts, early_slos, counted)

        await _until_stopped(both(), stop)
    return _level_result(load, workload, counted, time.perf_counter() - started, len(warmed), stopped)


async def _until_stopped(work: Coroutine[Any, Any, None], stop: threading.Event | None) -> None:
    """Run ``work`` to its end, or cancel it once ``stop`` is set."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait([task], timeout=STOP_POLL_S)
        if stop is not None and stop.is_set() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if not task.cancelled():
        task.result()


def run_coroutine[T](coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, also from a thread that already runs an event loop (then in a fresh thread):
    a background job has none, but a caller inside async code (or a test session that drove a
    browser) may."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def benchmark(
    base_url: str,
    model: str,
    workload: Workload,
    loads: Sequence[float],
    *,
    slos: Slos | None = None,
    early_stop: bool = False,
    stop: threading.Event | None = None,
    on_level: Callable[[float], None] | None = None,
) -> list[LevelResult]:
    """Run each load in order, calling ``on_level(load)`` before each; none starts once ``stop`` is
    set. With ``early_stop`` and SLOs, a level stops once its SLO can no longer be met, and no load
    after a level missing an SLO runs. Call it outside an event loop."""
    salts = itertools.count()

    async def run_all() -> list[LevelResult]:
        results: list[LevelResult] = []
        for load in loads:
            if stop and stop.is_set():
                break
            if on_level:
                on_level(load)
            level = await run_level(
                base_url, model, workload, load, slos=slos, early_stop=early_stop, stop=stop, salts=salts
            )
            results.append(level)
            if early_stop and slos and has_limits(slos) and not meets_slos(level, slos):
                break
        return results

    return run_coroutine(run_all())


GOODPUT_WITHOUT_SLOS = "goodput is the highest load meeting every SLO: set at least one SLO"


def goodput_search(
    base_url: str,
    model: str,
    workload: Workload,
    *,
    slos: Slos,
    start: float,
    ceiling: float,
    early_stop: bool = True,
    stop: threading.Event | None = None,
    on_level: Callable[[float], None] | None = None,
) -> list[LevelResult]:
    """Every level run, in order, finding the highest load meeting every SLO: from ``start``, the load
    doubles (up to ``ceiling``) while every SLO holds, then bisects between the last good and the
    first bad load, to one request in flight (concurrency) or under 5 % of the good load (rate)."""
    if not has_limits(slos):
        raise ValueError(GOODPUT_WITHOUT_SLOS)
    whole = workload.mode == "concurrency"
    if not 0 < start <= ceiling or (whole and (start != int(start) or ceiling != int(ceiling))):
        raise ValueError(f"goodput needs 0 < start <= ceiling ({start}, {ceiling}), whole numbers for concurrency")
    salts = itertools.count()
    results: list[LevelResult] = []

    async def meets(load: float) -> bool | None:
        if stop and stop.is_set():
            return None
        if on_level:
            on_level(load)
        level = await run_level(
            base_url, model, workload, load, slos=slos, early_stop=early_stop, stop=stop, salts=salts
        )
        results.append(level)
        return meets_slos(level, slos)

    async def search() -> None:
        good, bad = 0.0, None
        load, top = (int(start), int(ceiling)) if whole else (start, ceiling)
        while (outcome := await meets(load)) and load < top:
            good, load = load, min(load * 2, top)
        if outcome is None:
            return
        if outcome:
            return  # the ceiling holds
        bad = load
        while good and (bad - good > 1 if whole else bad - good >= 0.05 * good):
            middle = (good + bad) // 2 if whole else (good + bad) / 2
            if (outcome := await meets(middle)) is None:
                return
            good, bad = (middle, bad) if outcome else (good, middle)

    run_coroutine(search())
    return results


def _endpoint(base_url: str) -> str:
    parts = httpx.URL(base_url)
    if parts.scheme != "http" or not parts.host:
        raise ValueError(f"{base_url!r} is not an http:// URL; engines are reached over plain HTTP")
    return str(parts.copy_with(path=parts.path.rstrip("/") + "/v1/completions"))


class _Failed(Exception):
    pass


async def _stream_completion(
    client: httpx.AsyncClient, url: str, model: str, request: Request, timeout: float
) -> RequestResult:
    body = {
        "model": model,
        "prompt": request.prompt,
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0,
        # vLLM and SGLang both honour it: every request then produces exactly max_tokens.
        "ignore_eos": True,
    }
    sent = time.perf_counter()
    first: float | None = None
    end: float | None = None
    chunks = 0
    usage: tuple[int, int] | None = None  # prompt and completion tokens, as the engine counted them
    try:
        async with asyncio.timeout(timeout), client.stream("POST", url, json=body) as response:
            if response.status_code != 200:
                raise _Failed(f"HTTP {response.status_code}")
            # The lines after [DONE] are read too: a response read to its end keeps its connection alive.
            async for line in response.aiter_lines():
                if not line.startswith("data:") or end is not None:
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    end = time.perf_counter()
                    continue
                text, usage = _event(data, usage)
                if text:
                    chunks += 1
                    if first is None:
                        first = time.perf_counter()
        if end is None:
            raise _Failed("stream ended before [DONE]")
        if first is None:
            raise _Failed("no output tokens")
    except (TimeoutError, httpx.TimeoutException):
        return RequestResult(ok=False, error="timeout")
    except _Failed as failure:
        return RequestResult(ok=False, error=str(failure))
    except (httpx.HTTPError, OSError, ValueError) as error:
        return RequestResult(ok=False, error=f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    prompt_tokens, tokens = usage or (len(request.prompt.split()), chunks)
    tpot = (end - first) / (tokens - 1) if tokens > 1 else None
    return RequestResult(
        ok=True,
        ttft_s=first - sent,
        tpot_s=tpot,
        e2e_s=end - sent,
        output_tokens=tokens,
        prompt_tokens=prompt_tokens,
        from_usage=usage is not None,
    )


def _event(data: str, usage: tuple[int, int] | None) -> tuple[str, tuple[int, int] | None]:
    """The text an SSE event carries, and the usage so far (an event's usage replaces the last; vLLM
    may send one in every event, with null when it has none)."""
    event = json.loads(data)
    if not isinstance(event, dict):
        raise _Failed("a stream event is not a JSON object")
    if "error" in event:
        error = event["error"]
        raise _Failed(f"engine error: {error.get('message', error) if isinstance(error, dict) else error}")
    reported = event.get("usage")
    if isinstance(reported, dict):
        prompt, completion = reported.get("prompt_tokens"), reported.get("completion_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            usage = (prompt, completion)
    choices = event.get("choices") or [{}]  # the usage event has none
    text = choices[0].get("text") if isinstance(choices, list) and isinstance(choices[0], dict) else None
    return (text if isinstance(text, str) else ""), usage
