"""A stand-in inference engine: an OpenAI-compatible completions server whose speed follows its
launch flags. Try the whole flow without a GPU (``AUTOTUNER_STANDIN_ENGINE=1`` launches it for every
task), and test the runner and the benchmark against a real process.

Run it from the project's root with either engine's flags (unknown flags are ignored):

    python -m engines.standin --model-path M --host H --port P --tp-size 2 --mem-fraction-static 0.8
    python -m engines.standin serve M --host H --port P --tensor-parallel-size 2 --gpu-memory-utilization 0.8

A memory fraction above 0.95 crashes at startup with a CUDA out-of-memory message, as a real engine
does when it cannot fit. Otherwise, after ``--startup-seconds``, it serves:

- ``GET /health`` → 200, ``GET /v1/models`` → ``{"data": [{"id": model}]}``
- ``POST /v1/completions`` → one JSON, or Server-Sent Events with ``"stream": true``

Time to first token is ``(ttft-ms + 0.01 ms per prompt word) / tp``; time per output token is
``tpot-ms / tp``, 5 % slower for each other request in flight (a batch shares the GPU).

Only the standard library: it starts without Django, as a real engine starts without the app.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_MEMORY_FRACTION = 0.95
PREFILL_MS_PER_WORD = 0.01
LOAD_SLOWDOWN = 0.05  # per other request in flight
MODULE = "engines.standin"  # what python -m runs
WORDS = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog")


def command(port: int, *flags: str, tp: int = 2) -> list[str]:
    """The SGLang-style command the tests start the stand-in with, on 127.0.0.1:port."""
    words = ["--model-path", "m", "--host", "127.0.0.1", "--port", str(port), "--tp-size", str(tp)]
    return [sys.executable, "-m", MODULE, *words, *flags]


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("words", nargs="*", help="vLLM style: serve MODEL")
    parser.add_argument("--model-path", "--model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--tp-size", "--tensor-parallel-size", "-tp", dest="tp", type=int, default=1)
    parser.add_argument("--mem-fraction-static", "--gpu-memory-utilization", dest="memory", type=float, default=0.9)
    parser.add_argument("--startup-seconds", type=float, default=0.3)
    parser.add_argument("--ttft-ms", type=float, default=20.0, help="time to first token at tp 1")
    parser.add_argument("--tpot-ms", type=float, default=2.0, help="time per output token at tp 1")
    # Real engines take hundreds of flags; the stand-in reads only the few that change its behaviour.
    arguments, _unknown = parser.parse_known_args(argv)
    words = list(arguments.words)
    if words[:1] == ["serve"]:
        words.pop(0)
    arguments.model = arguments.model_path or (words[0] if words else "default")
    arguments.tp = max(arguments.tp, 1)
    return arguments


def log(line: str) -> None:
    # The runner may have stopped reading; serving matters more than logging.
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


class Engine:
    def __init__(self, arguments: argparse.Namespace) -> None:
        self.arguments = arguments
        self.in_flight = 0
        self.lock = threading.Lock()

    def ttft_seconds(self, prompt_words: int) -> float:
        return (self.arguments.ttft_ms + prompt_words * PREFILL_MS_PER_WORD) / self.arguments.tp / 1000

    def tpot_seconds(self) -> float:
        with self.lock:
            others = max(self.in_flight - 1, 0)
        return self.arguments.tpot_ms / self.arguments.tp * (1 + LOAD_SLOWDOWN * others) / 1000


def make_handler(engine: Engine) -> type[BaseHTTPRequestHandler]:
    model = engine.arguments.model

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streaming, as uvicorn serves vLLM and SGLang

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
            with engine.lock:
                engine.in_flight += 1
            try:
                self.complete(body)
            finally:
                with engine.lock:
                    engine.in_flight -= 1

        def complete(self, body: dict[str, Any]) -> None:
            started = time.perf_counter()
            prompt_words = len(str(body.get("prompt", "")).split())
            max_tokens = int(body.get("max_tokens") or 16)
            created = int(time.time())
            time.sleep(engine.ttft_seconds(prompt_words))
            if not body.get("stream"):
                time.sleep(engine.tpot_seconds() * (max_tokens - 1))
                text = " ".join(WORDS[i % len(WORDS)] for i in range(max_tokens))
                usage = {"prompt_tokens": prompt_words, "completion_tokens": max_tokens}
                choice = {"index": 0, "text": text, "finish_reason": "length"}
                self.send_json(200, {"object": "text_completion", "model": model, "choices": [choice], "usage": usage})
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for index in range(max_tokens):
                    if index:
                        time.sleep(engine.tpot_seconds())
                    last = index == max_tokens - 1
                    choice = {"index": 0, "text": f" {WORDS[index % len(WORDS)]}", "finish_reason": None}
                    if last:
                        choice["finish_reason"] = "length"
                    event = {"id": "cmpl-standin", "object": "text_completion", "created": created, "model": model}
                    self.send_chunk(f"data: {json.dumps({**event, 'choices': [choice]})}\n\n")
                self.send_chunk("data: [DONE]\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            elapsed = time.perf_counter() - started
            stream = bool(body.get("stream"))
            log(f"completion prompt={prompt_words} tokens={max_tokens} stream={stream} {elapsed:.3f}s")

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


def main(argv: Sequence[str]) -> int:
    arguments = parse_arguments(argv)
    log(f"standin engine: loading {arguments.model} (tp {arguments.tp}, memory fraction {arguments.memory})")
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if arguments.memory > MAX_MEMORY_FRACTION:
        time.sleep(0.2)  # a real engine crashes after loading weights, not at once
        print(
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
            f"GPU 0 has a total capacity of 79.15 GiB; memory fraction {arguments.memory} leaves no room "
            "for activations.",
            file=sys.stderr,
            flush=True,
        )
        return 1
    if stopping.wait(arguments.startup_seconds):
        log("standin engine: stopped during startup")
        return 0
    server = ThreadingHTTPServer((arguments.host, arguments.port), make_handler(Engine(arguments)))
    server.daemon_threads = True  # a stream in flight must not hold up shutdown
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
