"""The stand-in engine as a process: it starts as a real engine would (or refuses to), streams as
vLLM and SGLang do, and serves at about the speed engines.simulator expects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings

from engines import simulator, standin
from tasks.benchmark import benchmark
from tasks.runner import EngineProcess, free_port
from tasks.workload import Workload

pytestmark = pytest.mark.engine

EXACT = {"AUTOTUNER_STANDIN_NOISE": "0"}


@contextmanager
def serving(*flags: str, tp: int = 1, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    with EngineProcess(standin.command(port, *flags, tp=tp), env=env or EXACT) as engine:
        url = f"http://127.0.0.1:{port}"
        engine.wait_until_healthy(url, timeout_s=10)
        yield url


def events(url: str, body: dict[str, Any]) -> list[Any]:
    """The data of every event of a streamed completion, ``[DONE]`` as the string."""
    request = urllib.request.Request(
        f"{url}/v1/completions",
        data=json.dumps({"model": "m", "stream": True, **body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        lines = [line.decode().strip() for line in response]
    return [json.loads(data) if data != "[DONE]" else data for line in lines if (data := line.removeprefix("data: "))]


@pytest.mark.parametrize(
    ("flags", "visible", "message"),
    [
        (["--tp-size", "2"], "0", "tp 2 × pp 1 × dp 1 requires 2 GPUs but only 1 are visible"),
        (["--tp-size", "2", "--dp-size", "2"], "0,1,2", "tp 2 × pp 1 × dp 2 requires 4 GPUs but only 3 are visible"),
        (["--tp-size", "1"], "", "requires 1 GPUs but only 0 are visible"),
    ],
    ids=["tp", "tp-and-dp", "none-visible"],
)
def test_too_few_visible_gpus_stop_the_engine_at_once(flags, visible, message):
    started = time.monotonic()
    shown = subprocess.run(
        [sys.executable, "-m", standin.MODULE, "--model-path", "m", "--port", str(free_port()), *flags],
        cwd=settings.BASE_DIR,
        env={"CUDA_VISIBLE_DEVICES": visible, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert shown.returncode == 1
    assert message in shown.stderr
    assert time.monotonic() - started < 5


def test_enough_visible_gpus_serve():
    with serving("--dp-size", "2", tp=2, env={**EXACT, "CUDA_VISIBLE_DEVICES": "4,5,6,7"}) as url:
        assert events(url, {"prompt": "hello", "max_tokens": 2})[-1] == "[DONE]"


@pytest.fixture(scope="module")
def grouped() -> Iterator[str]:
    with serving("--stream-interval", "4") as url:
        yield url


def test_usage_comes_last_and_only_when_asked(grouped):
    plain = events(grouped, {"prompt": "one two three", "max_tokens": 5})
    assert plain[-1] == "[DONE]"
    assert all(event["choices"] and "usage" not in event for event in plain[:-1])

    asked = events(grouped, {"prompt": "one two three", "max_tokens": 5, "stream_options": {"include_usage": True}})
    *tokens, usage, done = asked
    assert done == "[DONE]"
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    assert [event["choices"][0]["text"] for event in tokens] == [event["choices"][0]["text"] for event in plain[:-1]]


def test_a_stream_interval_sends_the_first_token_then_groups_of_that_many(grouped):
    texts = [event["choices"][0]["text"] for event in events(grouped, {"prompt": "a b", "max_tokens": 10})[:-1]]
    assert [len(text.split()) for text in texts] == [1, 4, 4, 1]
    assert "".join(texts) == standin.text(0, 10)


def test_a_request_larger_than_the_kv_cache_is_refused():
    # 0.201 of 80 GB less 16 GB of weights leaves room for about 80 tokens.
    with serving("--mem-fraction-static", "0.201") as url:
        body = json.dumps({"model": "m", "prompt": "word " * 100, "max_tokens": 4}).encode()
        request = urllib.request.Request(f"{url}/v1/completions", data=body)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400
    assert "the request needs 104 tokens of KV cache" in refused.value.read().decode()


def noise(monkeypatch, seed: str | None, run: str | None, port: int = 30000, **flags: object) -> list[float]:
    """The start's factor and its first three requests' time scales under this seed and run."""
    for name, value in (("AUTOTUNER_STANDIN_SEED", seed), ("AUTOTUNER_STANDIN_RUN", run)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    config = simulator.Config.from_flags(flags)
    engine = standin.Engine("m", config, noise=0.03, seed=standin.noise_seed(config, port))
    return [engine.factor, *(engine.arrive(["a", "prompt"])[1] for _ in range(3))]


def test_one_seed_and_run_give_the_same_noise_and_another_run_differs(monkeypatch):
    first = noise(monkeypatch, "7", "1")
    assert noise(monkeypatch, "7", "1", port=30001) == first
    assert len(set(first)) == 4, "each request has its own jitter"
    assert noise(monkeypatch, "7", "2")[0] != first[0]
    assert noise(monkeypatch, "8", "1")[0] != first[0]
    assert noise(monkeypatch, "7", "1", **{"tp-size": 2})[0] != first[0], "another configuration draws its own"
    # Without a run, the port tells two starts apart; without a seed, every start draws afresh.
    assert noise(monkeypatch, "7", None, port=1)[0] != noise(monkeypatch, "7", None, port=2)[0]
    assert noise(monkeypatch, None, "1")[0] != noise(monkeypatch, None, "1")[0]
    assert abs(first[0] - 1) < 0.2


@pytest.mark.parametrize(
    ("flags", "queued"),
    [
        ([], False),
        (["--tp-size", "2", "--stream-interval", "4"], False),
        # Two requests fit the KV cache: the other two of each round wait, and their TTFT includes it.
        (["--mem-fraction-static", "0.207"], True),
    ],
    ids=["default", "tp2-interval4", "queued"],
)
def test_a_benchmark_measures_about_what_the_simulator_expects(flags, queued):
    workload = Workload(input_tokens=64, output_tokens=64, requests=8, warmup_requests=4, max_seconds=20)
    config = simulator.Config.from_flags(standin.flag_values(flags)[1])

    with serving(*flags, tp=config.tp) as url:
        [level] = benchmark(url, "m", workload, [4])

    want = simulator.expected(config, workload, 4)
    assert level.succeeded == 8
    assert level.tokens_from == "usage"
    assert level.output_tokens_per_s == pytest.approx(want.output_tokens_per_s, rel=0.25)
    assert level.tpot_ms["p50"] == pytest.approx(want.tpot_ms, rel=0.25)
    assert want.waiting == (2 if queued else 0)
    if queued:  # otherwise a few milliseconds of HTTP on a busy machine are most of it
        assert level.ttft_ms["mean"] == pytest.approx(want.ttft_ms, rel=0.25)
