"""A stand-in inference engine: an OpenAI-compatible completions server that serves, in real time,
as engines/simulator.py models an inference server with its launch flags. Try the whole flow
without a GPU (``AUTOTUNER_STANDIN_ENGINE=1`` launches it for every task), and test the runner, the
benchmark and a search against a real process whose best configuration is known.

Run it from the project's root with either engine's flags (unknown flags are ignored):

    python -m engines.standin --model-path M --host H --port P --tp-size 2 --mem-fraction-static 0.8
    python -m engines.standin serve M --host H --port P --tensor-parallel-size 2 --gpu-memory-utilization 0.8

``serve M`` reads the flags as vLLM's, ``--model-path M`` as SGLang's. It reads the flags the
simulator names (parallel sizes, memory fraction, chunked prefill, scheduling policy, prefix cache,
running requests, stream interval) and its own: ``--weights-gb`` (16), ``--gpu-memory-gb`` (80),
``--kv-mb-per-token`` (2), ``--ttft-ms`` (10, the fixed part of every time to first token),
``--tpot-ms`` (2, a decode step at tp 1) and ``--startup-seconds``.

Starting, as a real engine starts:

- With ``CUDA_VISIBLE_DEVICES`` naming fewer GPUs than tp × pp × dp it exits at once with status 1
  ("... requires N GPUs but only M are visible"); unset, any number is visible.
- Out of memory (the simulator's ``out_of_memory``) it exits with status 1 and a CUDA
  out-of-memory message after a moment (a real engine crashes after loading its weights).
- Otherwise it serves after ``--startup-seconds`` (default ``AUTOTUNER_STANDIN_STARTUP_SECONDS``, or 0.3).

Serving:

- ``GET /health`` → 200, ``GET /v1/models`` → ``{"data": [{"id": model}]}``
- ``POST /v1/completions`` → one JSON, or Server-Sent Events with ``"stream": true``. It always
  writes ``max_tokens`` tokens (default 16), as with ``ignore_eos``. A prompt's tokens are its
  words. ``stream-interval`` k sends the first token at once and then k tokens a chunk;
  ``"stream_options": {"include_usage": true}`` adds a last event with ``"choices": []`` and
  ``"usage"`` (prompt, completion and total tokens) before ``[DONE]``, as vLLM and SGLang do.
- Requests go to the replica (of ``dp``) with the fewest; one whose KV cache is full waits, in
  arrival order, before its prefill starts. A request larger than the whole cache gets a 400.
- The prefix cache matches a prompt's words in blocks of 16 against every prompt seen before.

Noise, multiplicative on every time: one factor per engine start, 1 + noise · N(0, 1), and a
per-request jitter a third as wide. ``AUTOTUNER_STANDIN_NOISE`` sets the noise (default 0.03; 0
serves exactly by the model). ``AUTOTUNER_STANDIN_SEED`` makes it deterministic: the start's factor
is drawn from the seed, the run (``AUTOTUNER_STANDIN_RUN``, else the port) and the configuration, so
two starts of one configuration differ unless they share a run, and each request's jitter from
that and its arrival number. Without a seed every start draws afresh.

Only the standard library: it starts without Django, as a real engine starts without the app.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from argparse import Namespace
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engines import simulator

MODULE = "engines.standin"  # what python -m runs
STARTUP_SECONDS = 0.3
NOISE = 0.03
PREFIX_BLOCK = 16  # words a prefix cache entry covers
MAX_PREFIX_ENTRIES = 1_000_000  # then the cache starts afresh
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog")
SHORT_FLAG = re.compile(r"-[A-Za-z][\w-]*")


def command(port: int, *flags: str, tp: int = 2) -> list[str]:
    """The SGLang-style command the tests start the stand-in with, on 127.0.0.1:port."""
    words = ["--model-path", "m", "--host", "127.0.0.1", "--port", str(port), "--tp-size", str(tp)]
    return [sys.executable, "-m", MODULE, *words, *flags]


def flag_values(argv: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """(positional words, flags): ``--name value``, ``--name=value``, and a bare ``--name`` (True),
    as argparse would read a switch; the last of a flag given twice wins."""
    words: list[str] = []
    flags: dict[str, Any] = {}
    index = 0
    while index < len(argv):
        word = argv[index]
        index += 1
        if not (word.startswith("--") or SHORT_FLAG.fullmatch(word)):
            words.append(word)
            continue
        name, equals, value = word.lstrip("-").partition("=")
        if equals:
            flags[name] = value
        elif index < len(argv) and not (argv[index].startswith("--") or SHORT_FLAG.fullmatch(argv[index])):
            flags[name] = argv[index]
            index += 1
        else:
            flags[name] = True
    return words, flags


def parse_arguments(argv: Sequence[str]) -> Namespace:
    """The model, address, start-up time, runtime and simulated configuration; ValueError for a
    value the simulator cannot read."""
    words, flags = flag_values(argv)
    runtime = "vllm" if words[:1] == ["serve"] else "sglang"
    if words[:1] == ["serve"]:
        words.pop(0)
    config = simulator.Config.from_flags(flags, runtime)
    startup = flags.get("startup-seconds", os.environ.get("AUTOTUNER_STANDIN_STARTUP_SECONDS", STARTUP_SECONDS))
    model = flags.get("model-path") or flags.get("model") or (words[0] if words else "default")
    return Namespace(
        model=str(model),
        host=str(flags.get("host", "127.0.0.1")),
        port=simulator.whole(flags.get("port", 30000)),
        startup_seconds=float(startup),
        runtime=runtime,
        config=config,
    )


def log(line: str) -> None:
    # The runner may have stopped reading; serving matters more than logging.
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


def sleep_until(deadline: float) -> None:
    # Sleeping to a deadline rather than for a duration: oversleeping one token is not carried into the next.
    time.sleep(max(deadline - time.monotonic(), 0.0))


class Replica:
    """One data-parallel replica's KV cache: requests run while it holds them, the rest wait in order."""

    def __init__(self, config: simulator.Config) -> None:
        self.config = config
        self.condition = threading.Condition()
        self.running = 0
        self.used = 0  # tokens of KV cache the running requests hold
        self.waiting: deque[object] = deque()

    @property
    def load(self) -> int:
        return self.running + len(self.waiting)

    @contextlib.contextmanager
    def slot(self, need: int, capacity: int) -> Iterator[None]:
        ticket = object()
        limit = self.config.max_running or sys.maxsize

        def admitted() -> bool:
            return self.waiting[0] is ticket and self.running < limit and self.used + need <= capacity

        with self.condition:
            self.waiting.append(ticket)
            self.condition.wait_for(admitted)
            self.waiting.popleft()
            self.running += 1
            self.used += need
            self.condition.notify_all()  # the next in line may fit too
        try:
            yield
        finally:
            with self.condition:
                self.running -= 1
                self.used -= need
                self.condition.notify_all()


class Engine:
    def __init__(self, model: str, config: simulator.Config, *, noise: float, seed: str) -> None:
        self.model = model
        self.config = config
        self.replicas = [Replica(config) for _ in range(config.dp)]
        self.lock = threading.Lock()
        self.prefixes: set[int] = set()
        self.shared = 0  # tokens of the longest cached prefix, stored once in every replica
        self.noise = noise
        self.seed = seed
        self.factor = max(0.5, 1 + noise * random.Random(seed).gauss(0, 1))
        self.arrivals = 0

    def arrive(self, words: Sequence[str]) -> tuple[Replica, float, int]:
        """(the replica to run on, this request's time scale, prompt tokens the prefix cache serves)."""
        with self.lock:
            index = self.arrivals
            self.arrivals += 1
            cached = self.config.cached(self._cached_words(words)) if self.config.prefix_cache else 0
            self.shared = max(self.shared, cached)
            replica = min(self.replicas, key=lambda replica: replica.load)
        jitter = max(0.5, 1 + self.noise / 3 * random.Random(f"{self.seed}:{index}").gauss(0, 1))
        return replica, self.factor * jitter, cached

    def _cached_words(self, words: Sequence[str]) -> int:
        if len(self.prefixes) > MAX_PREFIX_ENTRIES:
            self.prefixes.clear()
        found, key, hit = 0, 0, True
        for start in range(0, len(words) - PREFIX_BLOCK + 1, PREFIX_BLOCK):
            key = hash((key, *words[start : start + PREFIX_BLOCK]))
            if hit and key in self.prefixes:
                found = start + PREFIX_BLOCK
            else:
                hit = False
                self.prefixes.add(key)
        return found

    @property
    def capacity(self) -> int:
        """Tokens of KV cache a replica has for requests, besides the shared prefix."""
        return self.config.kv_capacity - self.shared


def make_handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    model, config = engine.model, engine.config

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streaming and keep-alive, as uvicorn serves vLLM and SGLang

        def setup(self) -> None:
            super().setup()
            # Each event goes out as written: Nagle's algorithm would hold a small write back until
            # the client's delayed ACK of the one before, tens of milliseconds late.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:
            if self.path == "/health":
                self.send_json(200, {})
            elif self.path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": model, "object": "model"}]})
            else:
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self.send_json(400, {"error": {"message": "the body is not JSON"}})
                return
            if self.path != "/v1/completions":
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            if body.get("model", model) != model:
                self.send_json(404, {"error": {"message": f"The model `{body['model']}` does not exist."}})
                return
            self.complete(body)

        def complete(self, body: dict[str, Any]) -> None:
            arrived = time.monotonic()
            words = str(body.get("prompt", "")).split()
            max_tokens = max(int(body.get("max_tokens") or 16), 1)
            replica, scale, cached = engine.arrive(words)
            uncached = max(len(words) - cached, 1)
            need = uncached + max_tokens
            if need > engine.capacity:
                message = f"the request needs {need} tokens of KV cache and a replica holds {engine.capacity}"
                self.send_json(400, {"error": {"message": message}})
                return
            stream = bool(body.get("stream"))
            with replica.slot(need, engine.capacity):
                started = time.monotonic()
                deadline = started + simulator.first_token_ms(config, uncached, replica.running) * scale / 1000

                def token_s() -> float:
                    return simulator.token_ms(config, uncached, max_tokens, replica.running) * scale / 1000

                usage = {"prompt_tokens": len(words), "completion_tokens": max_tokens}
                usage["total_tokens"] = len(words) + max_tokens
                if stream:
                    self.stream(body, max_tokens, deadline, token_s, usage)
                else:
                    deadline += sum(token_s() for _ in range(max_tokens - 1))
                    sleep_until(deadline)
                    choice = {"index": 0, "text": text(0, max_tokens), "finish_reason": "length"}
                    answer = {"object": "text_completion", "model": model, "choices": [choice], "usage": usage}
                    self.send_json(200, answer)
            waited = started - arrived
            log(
                f"completion prompt={len(words)} cached={cached} tokens={max_tokens} stream={stream} "
                f"waited={waited:.3f}s {time.monotonic() - arrived:.3f}s"
            )

        def stream(
            self,
            body: dict[str, Any],
            tokens: int,
            deadline: float,
            token_s: Callable[[], float],
            usage: dict[str, int],
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            event = {"id": "cmpl-standin", "object": "text_completion", "created": int(time.time()), "model": model}
            sent, count = 0, 1  # the first token goes at once, then stream-interval tokens a chunk
            while sent < tokens:
                sleep_until(deadline)
                last = sent + count >= tokens
                choice = {"index": 0, "text": text(sent, sent + count), "finish_reason": "length" if last else None}
                self.send_event({**event, "choices": [choice]})
                sent += count
                count = min(config.stream_interval, tokens - sent)
                deadline += sum(token_s() for _ in range(count))
            options = body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                self.send_event({**event, "choices": [], "usage": usage})
            self.send_chunk("data: [DONE]\n\n")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def send_event(self, event: dict[str, Any]) -> None:
            self.send_chunk(f"data: {json.dumps(event)}\n\n")

        def send_chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def send_json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log(f"{self.address_string()} {format % args}")  # stdout, one line a request, not stderr

    return Handler


def text(start: int, end: int) -> str:
    """Output tokens ``start`` to ``end``, a word each."""
    return "".join(f" {WORDS[index % len(WORDS)]}" for index in range(start, end))


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a stream in flight must not hold up shutdown
    request_queue_size = 512  # a benchmark opens its connections all at once


def noise_seed(config: simulator.Config, port: int) -> str:
    """What this start's noise is drawn from: the seed, the run and the configuration (see above)."""
    seed = os.environ.get("AUTOTUNER_STANDIN_SEED") or str(random.SystemRandom().random())
    run = os.environ.get("AUTOTUNER_STANDIN_RUN") or str(port)
    return f"{seed}:{run}:{config!r}"


def main(argv: Sequence[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    try:
        arguments = parse_arguments(argv)
        noise = float(os.environ.get("AUTOTUNER_STANDIN_NOISE") or NOISE)
    except ValueError as error:
        print(f"standin engine: error: {error}", file=sys.stderr, flush=True)
        return 2
    config: simulator.Config = arguments.config
    log(f"standin engine: loading {arguments.model} (tp {config.tp}, memory fraction {config.memory_fraction})")
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = len([gpu for gpu in visible.split(",") if gpu.strip()])
        if count < config.gpus_needed:
            print(
                f"RuntimeError: tp {config.tp} × pp {config.pp} × dp {config.dp} requires {config.gpus_needed} GPUs "
                f"but only {count} are visible (CUDA_VISIBLE_DEVICES={visible!r})",
                file=sys.stderr,
                flush=True,
            )
            return 1
    reason = config.out_of_memory()
    if reason:
        time.sleep(0.2)  # a real engine crashes after loading weights, not at once
        print(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
            f"GPU 0 has a total capacity of {config.gpu_memory_gb:.2f} GiB; {reason}.",
            file=sys.stderr,
            flush=True,
        )
        return 1
    if stopping.wait(arguments.startup_seconds):
        log("standin engine: stopped during startup")
        return 0
    engine = Engine(arguments.model, config, noise=noise, seed=noise_seed(config, arguments.port))
    log(f"standin engine: noise factor {engine.factor:.6f}, KV cache {config.kv_capacity} tokens a replica")
    server = Server((arguments.host, arguments.port), make_handler(engine))
    # serve_forever runs in a thread: shutdown() from the signal handler on the serving thread would deadlock.
    # A short poll interval: shutdown() waits for the loop to notice, and the tests stop many engines.
    serving = threading.Thread(target=server.serve_forever, args=(0.05,), name="serve", daemon=True)
    serving.start()
    log(f"standin engine: serving {arguments.model} on http://{arguments.host}:{arguments.port}")
    stopping.wait()
    log("standin engine: shutting down")
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
