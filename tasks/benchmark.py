"""A load generator for an OpenAI-compatible ``/v1/completions`` endpoint, and the score of its results.

Each concurrency level sends a fixed number of streamed requests, that many in flight at once,
and measures per request:

- TTFT, time to first token: from sending the request to the first chunk carrying text (ms).
- TPOT, time per output token: (end − first token) / (output tokens − 1), the decode speed (ms);
  a one-token answer has none.
- E2E, end-to-end latency: from sending the request to the end of the stream (s).
- Output tokens: the chunks carrying text (the engines stream one token a chunk).

and per level:

- Requests per second and output tokens per second: what the succeeded requests delivered,
  divided by the level's wall-clock duration.
- Success rate: succeeded / requests sent; a non-200 answer, a broken or unfinished stream, a
  connection error or a timeout is a failure.

TTFT, TPOT and E2E are summarised over the succeeded requests as p50, p90, p99 and mean.
Only the standard library is used: raw HTTP/1.1 over ``asyncio.open_connection``, one
connection a request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

PERCENTILES = {"p50": 50, "p90": 90, "p99": 99}
PROMPT_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")

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


@dataclass(frozen=True)
class RequestResult:
    ok: bool
    error: str | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None
    output_tokens: int = 0


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    requests: int  # sent; fewer than asked when the level ran out of time
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_prompt(words: int, salt: int) -> str:
    # A distinct first word per request: an engine's prefix cache would otherwise skip the prefill
    # of every prompt after the first, and TTFT would measure the cache.
    body = " ".join(PROMPT_WORDS[i % len(PROMPT_WORDS)] for i in range(max(words - 1, 0)))
    return f"request-{salt} {body}".strip()


async def run_level(
    base_url: str,
    model: str,
    *,
    concurrency: int,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    max_seconds: float,
    request_timeout_s: float | None = None,
    stop: threading.Event | None = None,
) -> LevelResult:
    """Send ``requests`` streamed completions, ``concurrency`` at a time; start none after ``max_seconds``
    or once ``stop`` is set (a cancelled experiment).

    A request not finished within ``request_timeout_s`` (default ``max_seconds``) fails as a timeout.
    """
    if concurrency < 1 or requests < 0:
        raise ValueError("concurrency must be at least 1 and requests not negative")
    host, port, path = _endpoint(base_url)
    timeout = request_timeout_s if request_timeout_s is not None else max_seconds
    started = time.perf_counter()
    deadline = started + max_seconds
    sent = 0
    results: list[RequestResult] = []

    async def worker() -> None:
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline and not (stop and stop.is_set()):
            index = sent
            sent += 1  # no await between the check and this: the workers share one thread
            body = {
                "model": model,
                "prompt": make_prompt(input_tokens, index),
                "max_tokens": output_tokens,
                "stream": True,
                "temperature": 0,
                # vLLM and SGLang both honour it: every request then produces exactly max_tokens.
                "ignore_eos": True,
            }
            results.append(await _stream_completion(host, port, path, json.dumps(body).encode(), timeout))

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, requests) or 1):
            group.create_task(worker())
    duration = time.perf_counter() - started
    return _level_result(concurrency, results, duration)


def _level_result(concurrency: int, results: Sequence[RequestResult], duration: float) -> LevelResult:
    good = [result for result in results if result.ok]
    tokens = sum(result.output_tokens for result in good)
    return LevelResult(
        concurrency=concurrency,
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
    )


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
    levels: Sequence[int],
    *,
    requests: int,
    input_tokens: int,
    output_tokens: int,
    max_seconds: float,
    request_timeout_s: float | None = None,
    stop: threading.Event | None = None,
    on_level: Callable[[int], None] | None = None,
) -> list[LevelResult]:
    """Run each concurrency level in order, one after the other, calling ``on_level(concurrency)``
    before each; none starts once ``stop`` is set. Call it outside an event loop."""

    async def run_all() -> list[LevelResult]:
        results = []
        for level in levels:
            if stop and stop.is_set():
                break
            if on_level:
                on_level(level)
            results.append(
                await run_level(
                    base_url,
                    model,
                    concurrency=level,
                    requests=requests,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    max_seconds=max_seconds,
                    request_timeout_s=request_timeout_s,
                    stop=stop,
                )
            )
        return results

    return run_coroutine(run_all())


def _endpoint(base_url: str) -> tuple[str, int, str]:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{base_url!r} is not an http:// URL; engines are reached over plain HTTP")
    return parts.hostname, parts.port or 80, parts.path.rstrip("/") + "/v1/completions"


class _Failed(Exception):
    pass


async def _stream_completion(host: str, port: int, path: str, body: bytes, timeout: float) -> RequestResult:
    writer: asyncio.StreamWriter | None = None
    sent = time.perf_counter()
    first: float | None = None
    tokens = 0
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            status, headers = await _read_head(reader)
            if status != 200:
                raise _Failed(f"HTTP {status}")
            done = False
            async for data in _sse_data(_body(reader, headers)):
                if data == "[DONE]":
                    done = True
                    break
                text = _chunk_text(data)
                if text:
                    tokens += 1
                    if first is None:
                        first = time.perf_counter()
            if not done:
                raise _Failed("stream ended before [DONE]")
            if first is None:
                raise _Failed("no output tokens")
        end = time.perf_counter()
        tpot = (end - first) / (tokens - 1) if tokens > 1 else None
        return RequestResult(ok=True, ttft_s=first - sent, tpot_s=tpot, e2e_s=end - sent, output_tokens=tokens)
    except TimeoutError:
        return RequestResult(ok=False, error="timeout")
    except _Failed as failure:
        return RequestResult(ok=False, error=str(failure))
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
        return RequestResult(ok=False, error=f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    finally:
        if writer is not None:
            if first is None or tokens == 0:
                writer.transport.abort()  # nothing left worth reading; do not wait for the peer
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    parts = status_line.decode("latin-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise _Failed(f"not an HTTP response: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    while line := (await reader.readline()).strip():
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
    """The response body as it arrives: chunked, sized, or up to the connection's close."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return  # trailers, if any, are not read: the connection closes anyway
            chunk = await reader.readexactly(size + 2)
            yield chunk[:-2]
    elif "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
    else:
        while chunk := await reader.read(65536):
            yield chunk


async def _sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The ``data:`` payloads of a Server-Sent Events stream, whatever the chunk boundaries."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                yield line[5:].strip().decode()
    if pending.startswith(b"data:"):
        yield pending[5:].strip().decode()


def _chunk_text(data: str) -> str:
    event = json.loads(data)
    if not isinstance(event, dict):
        raise _Failed("a stream event is not a JSON object")
    if "error" in event:
        error = event["error"]
        raise _Failed(f"engine error: {error.get('message', error) if isinstance(error, dict) else error}")
    choices = event.get("choices") or []  # a usage-only event has none
    return (choices[0].get("text") or "") if choices else ""


# Scoring

OBJECTIVES = {
    # objective: (what it reads from a level, whether higher is better)
    "maximize_throughput": (lambda level: level.output_tokens_per_s, True),
    "minimize_latency": (lambda level: level.e2e_s["p50"], False),
    "minimize_ttft": (lambda level: level.ttft_ms["p50"], False),
    "minimize_tpot": (lambda level: level.tpot_ms["p50"], False),
}
SLO_NAMES = ("ttft_p90_ms", "tpot_p90_ms", "e2e_p99_s", "min_success_rate")


def slo_violations(level: LevelResult, slos: Mapping[str, float | None]) -> list[str]:
    """Each SLO the level misses, as ``p90 TTFT 412 ms > 300 ms``; a None limit is no limit."""
    unknown = set(slos) - set(SLO_NAMES)
    if unknown:
        raise ValueError(f"unknown SLO {', '.join(sorted(unknown))}; known: {', '.join(SLO_NAMES)}")
    found = []
    limits = [
        ("ttft_p90_ms", "p90 TTFT", level.ttft_ms["p90"], "ms"),
        ("tpot_p90_ms", "p90 TPOT", level.tpot_ms["p90"], "ms"),
        ("e2e_p99_s", "p99 E2E", level.e2e_s["p99"], "s"),
    ]
    for name, label, value, unit in limits:
        limit = slos.get(name)
        if limit is not None and value is not None and value > limit:
            found.append(f"{label} {_number(value)} {unit} > {_number(limit)} {unit}")
    minimum = slos.get("min_success_rate")
    if minimum is not None and level.success_rate < minimum:
        found.append(f"success rate {_number(level.success_rate * 100)}% < {_number(minimum * 100)}%")
    return found


@dataclass(frozen=True)
class Scored:
    value: float | None  # the objective at ``level``; None when no level meets every SLO
    level: LevelResult | None  # the level scored, or else the closest to meeting the SLOs
    reason: str | None  # why there is no value


def score(
    results: Sequence[LevelResult], objective: str, slos: Mapping[str, float | None]
) -> tuple[float | None, str | None]:
    """The objective's value at the best level that meets every SLO, or None and why none does
    (see ``score_levels``)."""
    scored = score_levels(results, objective, slos)
    return scored.value, scored.reason


def score_levels(results: Sequence[LevelResult], objective: str, slos: Mapping[str, float | None]) -> Scored:
    """The objective's value at the best level that meets every SLO, or None and why none does.

    Throughput (output tokens/s) is higher-better; latency (E2E p50, s), TTFT p50 and TPOT p50 (ms)
    are lower-better. A level where no request succeeded is never chosen. When every level misses
    an SLO, the reason names what the closest level missed (fewest misses, lowest level first):
    ``violates SLO (p90 TTFT 412 ms > 300 ms)``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    read, higher_is_better = OBJECTIVES[objective]
    candidates = [level for level in results if level.succeeded]
    if not candidates:
        return Scored(None, None, "no request succeeded" if results else "no benchmark results")
    violations = {id(level): slo_violations(level, slos) for level in candidates}
    meeting = [level for level in candidates if not violations[id(level)] and read(level) is not None]
    if meeting:
        best = (max if higher_is_better else min)(meeting, key=read)
        return Scored(read(best), best, None)
    closest = min(candidates, key=lambda level: (len(violations[id(level)]), level.concurrency))
    return Scored(None, closest, f"violates SLO ({'; '.join(violations[id(closest)])})")


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}".removesuffix(".0")
    return text if text != "-0" else "0"
