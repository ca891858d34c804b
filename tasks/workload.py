"""What a benchmark sends (``Workload``): each request's prompt and length, and when it arrives.

- Input and output lengths, fixed or a range; each request draws its own from the seed and its
  place in the level, so every level and every configuration sends the same lengths in the same
  order. Input length counts prompt words, which most tokenizers read as about one token each.
- A shared-prefix share: that share of every prompt is the same words for every request of the
  benchmark (a prefix cache or radix cache then skips its prefill, as in production); the rest
  starts with a marker no other request has, so no cache serves it. With a share of 0.5 and
  4 words, request 7's prompt is ``bravo charlie request-7 alpha``, request 8's ``bravo charlie request-8 alpha``.
- ``concurrency`` mode, a closed loop: ``load`` requests in flight, each answer starting the next.
  ``rate`` mode, an open loop: requests arrive at ``load`` per second at seeded Poisson times
  (``arrival_times``), whatever is in flight.
- ``warmup_requests`` sent before each level at its load and counted in no figure.

Pure: no I/O, no Django.
"""

from __future__ import annotations

import functools
import itertools
import random
from dataclasses import dataclass

PROMPT_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
MODES = ("concurrency", "rate")


@dataclass(frozen=True)
class Workload:
    input_tokens: int
    output_tokens: int
    input_tokens_max: int | None = None  # a range: each request draws in [input_tokens, input_tokens_max]
    output_tokens_max: int | None = None
    shared_prefix: float = 0.0  # share (0..1) of every prompt that all requests share
    mode: str = "concurrency"  # "concurrency" (closed loop) or "rate" (open loop, Poisson, req/s)
    requests: int = 100  # counted requests per level
    warmup_requests: int = 0  # sent before each level at its load, not counted
    max_seconds: float = 60.0  # per level, and again for its warm-up: no request starts after it
    request_timeout_s: float | None = None  # default max_seconds
    seed: int = 0  # lengths, prefix words and arrivals are drawn from it

    def __post_init__(self) -> None:
        problems = [
            message
            for wrong, message in [
                (self.mode not in MODES, f"mode {self.mode!r} is not one of {', '.join(MODES)}"),
                (self.input_tokens < 1 or self.output_tokens < 1, "input and output tokens must be at least 1"),
                ((self.input_tokens_max or self.input_tokens) < self.input_tokens, "input_tokens_max < input_tokens"),
                (
                    (self.output_tokens_max or self.output_tokens) < self.output_tokens,
                    "output_tokens_max < output_tokens",
                ),
                (not 0 <= self.shared_prefix <= 1, "shared_prefix must be within 0..1"),
                (self.requests < 0 or self.warmup_requests < 0, "requests and warmup_requests must not be negative"),
                (self.max_seconds <= 0, "max_seconds must be positive"),
            ]
            if wrong
        ]
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Request:
    prompt: str
    max_tokens: int


def make_request(workload: Workload, index: int, salt: int) -> Request:
    """The ``index``-th request of a level: lengths drawn from the seed and ``index``, the prompt's
    shared share from the seed, then a marker unique to ``salt`` and filler words."""
    draw = random.Random(f"{workload.seed}:{index}")
    words = draw.randint(workload.input_tokens, workload.input_tokens_max or workload.input_tokens)
    max_tokens = draw.randint(workload.output_tokens, workload.output_tokens_max or workload.output_tokens)
    shared = round(words * workload.shared_prefix)
    # One sequence for every length, so a shorter prompt's prefix is the start of a longer one's.
    longest = round((workload.input_tokens_max or workload.input_tokens) * workload.shared_prefix)
    prefix = list(_prefix(workload.seed, longest)[:shared])
    # The marker comes first after the prefix: an engine's prefix cache would otherwise serve the
    # prefill of every prompt after the first, and TTFT would measure the cache.
    rest = [f"request-{salt}", *(PROMPT_WORDS[i % len(PROMPT_WORDS)] for i in range(words - shared - 1))]
    return Request(prompt=" ".join(prefix + rest[: words - shared]), max_tokens=max_tokens)


@functools.lru_cache(maxsize=8)
def _prefix(seed: int, words: int) -> tuple[str, ...]:
    # Cached: drawn once per benchmark, not once per request while requests are being timed.
    draw = random.Random(f"{seed}:prefix")
    return tuple(draw.choice(PROMPT_WORDS) for _ in range(words))


def arrival_times(rate: float, count: int, seed: int) -> list[float]:
    """Seconds from a level's start at which an open loop sends each of ``count`` requests: a
    Poisson process at ``rate`` requests per second (exponential gaps), drawn from the seed."""
    draw = random.Random(f"{seed}:arrivals:{rate}")
    return list(itertools.accumulate(draw.expovariate(rate) for _ in range(count)))
