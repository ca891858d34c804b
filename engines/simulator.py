"""A model of an LLM inference server: what a configuration of flags costs in memory and in time.

Pure and deterministic, the standard library only. ``engines/standin.py`` serves by it in real
time (so a benchmark of the stand-in measures about ``expected``), and ``engines.optimum.true_optimum`` walks a
grid with it to find the best configuration for a workload and objective: the noise-free
expectation a search is judged against.

The server
----------
``Config.from_flags`` reads either engine's spelling of the flags that matter (unknown flags are
ignored). A configuration runs ``dp`` replicas of ``tp × pp`` GPUs each, so it needs
``tp × pp × dp`` GPUs (SGLang's attention DP, ``--enable-dp-attention``, runs inside one replica
and adds none, as engines/plan.py's rules say). A request goes to the replica with the fewest
requests, so a closed loop of c requests puts c // dp or c // dp + 1 on each.

Memory, per replica. The weights (``weights_gb``) are split over its tp × pp GPUs; the memory
fraction of each GPU's ``gpu_memory_gb`` holds its share of the weights and of the KV cache, and
the rest holds activations. So the KV cache holds
``(tp · pp · gpu_memory · fraction − weights) / kv_mb_per_token`` tokens. ``out_of_memory`` says
why a configuration cannot start: a fraction above 0.95, weights that do not fit in the fraction,
or a prefill chunk whose activations (``ACTIVATION_MB_PER_TOKEN``, split over tp) do not fit
outside it. The KV footprint (``KV_MB_PER_TOKEN``) is far above a real 8B model's, so that the
memory fraction binds at the concurrency a benchmark of seconds reaches.

A request of P prompt tokens, of which the prefix cache serves S, and O output tokens holds
P − S + O tokens of KV cache while it runs (the cached prefix is stored once for all). A replica
runs as many requests as its cache holds, at most ``max_running``; the rest wait in arrival order,
and their time to first token includes the wait.

Time, in milliseconds, scaled down about tenfold from a real GPU so that a benchmark takes seconds:

- A decode step with b requests running: ``tpot_ms · (1 + BATCH_COST · (b − 1)) / tp^TP_EXPONENT``
  (tensor parallelism speeds the step with diminishing returns), plus ``TP_COMM_MS · log2 tp`` for
  the all-reduce, ``PP_HOP_MS`` for each further pipeline stage, ``LPM_STEP_MS`` under the ``lpm``
  policy (it sorts the queue by prefix every step), and ``STREAM_CHUNK_MS`` for each of the
  b / stream_interval chunks the step streams out (``stream-interval`` k sends k tokens a chunk).
- A prompt's U uncached tokens prefill in chunks of ``chunked-prefill-size`` C (the whole prompt
  when chunking is off): ceil(U / C) steps, each as long as the longer of a decode step and the
  chunk's compute, ``min(C, U) · PREFILL_MS_PER_TOKEN / tp^TP_EXPONENT``. A chunk smaller than that
  rides along a decode step for free; time to first token is ``ttft_ms`` (tokenizing, scheduling)
  plus those steps.
- Time per output token is a decode step plus the stall other requests' prefill causes: each of the
  b − 1 others prefills once in this request's lifetime, and each of its steps longer than a
  decode step holds this request up by the difference, spread over its O − 1 tokens.

So a larger chunk lowers TTFT and, past a decode step's spare compute, raises TPOT under load.

Prefix caching. With the cache on (SGLang's radix cache unless ``--disable-radix-cache``, vLLM's
prefix caching unless turned off), the prompt's shared prefix (the workload's ``shared_prefix``
share) needs no prefill: all of it under a prefix-aware policy (``lpm``, ``dfs-weight``), half of
it under any other (``UNORDERED_PREFIX_REUSE``: requests sharing a prefix are not run together, and
part of it is evicted between them). Without the cache the shared prefix costs a full prefill.

Loads. In a closed loop of c requests a replica with n of them runs b = min(n, slots) at once; a
request's service is its TTFT plus O − 1 tokens, and waiting requests stretch its end-to-end time to
n / b services. In an open loop at λ requests per second (``mode="rate"``) the fluid approximation
holds: the requests in flight N solve N = λ · E2E(N) while λ is below what the slots serve, and past
it the queue grows without bound (infinite latencies, throughput at capacity).

``Expected`` reports request-weighted means and the slowest replica's values; a level scored from it
takes the means as p50 and the slowest replica as p90 and p99.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    pass

# Memory
WEIGHTS_GB = 16.0  # an 8B model in 16-bit
GPU_MEMORY_GB = 80.0
KV_MB_PER_TOKEN = 2.0
ACTIVATION_MB_PER_TOKEN = 0.5  # of a prefill chunk, on each GPU of a tp group: divided by tp
MAX_MEMORY_FRACTION = 0.95  # above it nothing is left for activations and CUDA graphs
# Time, ms
TTFT_MS = 10.0  # every request's fixed part of the time to first token
TPOT_MS = 2.0  # a decode step at tp 1 with one request
PREFILL_MS_PER_TOKEN = 0.01  # at tp 1
BATCH_COST = 0.05  # each further running request lengthens a decode step by this share
TP_EXPONENT = 0.8  # tp 2 is 1.74 times as fast, tp 8 5.3 times
TP_COMM_MS = 0.15  # per step, for each doubling of tp
PP_HOP_MS = 0.2  # per step, for each stage after the first
LPM_STEP_MS = 0.01
STREAM_CHUNK_MS = 0.02  # per chunk sent
PREFIX_AWARE_POLICIES = ("lpm", "dfs-weight")
UNORDERED_PREFIX_REUSE = 0.5

# The engines' defaults where they differ (SGLang sizes its memory fraction from the GPU; 0.88 is
# what it picks for one 80 GB GPU). vLLM caps running sequences at 256.
RUNTIME_DEFAULTS: dict[str, dict[str, Any]] = {
    "sglang": {"memory_fraction": 0.88, "max_running": 0},
    "vllm": {"memory_fraction": 0.9, "max_running": 256},
}


class CannotServe(Exception):
    """The configuration cannot serve the workload: out of memory, or a request larger than its cache."""


def whole(value: Any) -> int:
    """A whole number as an engine's argparse reads it: ``2``, ``"2"``, ``"8k"`` (8000), ``"8K"`` (8192)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    scale = {"k": 1000, "K": 1024, "m": 1000**2, "M": 1024**2}.get(text[-1:], 1)
    try:
        return int(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None


def switch(value: Any) -> bool:
    """A switch given bare (True) or as ``true``/``false``, as the autotuner writes a non-switch."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not true or false")


# Each field's spellings across the engines (and the stand-in's own), and how a value is read.
FLAGS: dict[str, tuple[tuple[str, ...], Callable[[Any], Any]]] = {
    "tp": (("tp-size", "tensor-parallel-size", "tp"), whole),
    "dp": (("dp-size", "data-parallel-size", "dp"), whole),
    "pp": (("pp-size", "pipeline-parallel-size", "pp"), whole),
    "memory_fraction": (("mem-fraction-static", "gpu-memory-utilization"), float),
    "chunked_prefill": (("chunked-prefill-size", "max-num-batched-tokens"), whole),
    "schedule_policy": (("schedule-policy", "scheduling-policy"), str),
    "max_running": (("max-running-requests", "max-num-seqs"), whole),
    "stream_interval": (("stream-interval",), whole),
    "weights_gb": (("weights-gb",), float),
    "gpu_memory_gb": (("gpu-memory-gb",), float),
    "kv_mb_per_token": (("kv-mb-per-token",), float),
    "ttft_ms": (("ttft-ms",), float),
    "tpot_ms": (("tpot-ms",), float),
}
# Switches that turn the prefix cache or chunked prefill off, and the value that does.
CACHE_OFF = {
    "disable-radix-cache": True,
    "enable-prefix-caching": False,
    "disable-prefix-caching": True,
    "no-enable-prefix-caching": True,
}
CHUNKING_OFF = {"enable-chunked-prefill": False, "disable-chunked-prefill": True, "no-enable-chunked-prefill": True}


@dataclass(frozen=True)
class Config:
    runtime: str = "sglang"
    tp: int = 1
    dp: int = 1  # replicas
    pp: int = 1
    memory_fraction: float = 0.88
    chunked_prefill: int = 8192  # prompt tokens a step prefills; 0: whole prompts
    schedule_policy: str = "fcfs"
    prefix_cache: bool = True
    max_running: int = 0  # 0: as many as the KV cache holds
    stream_interval: int = 1
    weights_gb: float = WEIGHTS_GB
    gpu_memory_gb: float = GPU_MEMORY_GB
    kv_mb_per_token: float = KV_MB_PER_TOKEN
    ttft_ms: float = TTFT_MS
    tpot_ms: float = TPOT_MS

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any], runtime: str = "sglang") -> Config:
        """The configuration these flags (names without dashes, values as given or as argparse
        reads them) start; unknown flags are ignored, a value that is no number raises ValueError."""
        values = {str(name).lstrip("-"): value for name, value in flags.items()}
        read: dict[str, Any] = {"runtime": runtime, **RUNTIME_DEFAULTS.get(runtime, {})}
        for name, (spellings, parse) in FLAGS.items():
            for spelling in spellings:
                if values.get(spelling) is not None:
                    read[name] = parse(values[spelling])
                    break
        if any(switch(values[name]) is off for name, off in CACHE_OFF.items() if name in values):
            read["prefix_cache"] = False
        if any(switch(values[name]) is off for name, off in CHUNKING_OFF.items() if name in values):
            read["chunked_prefill"] = 0
        if "enable-dp-attention" in values and switch(values["enable-dp-attention"]):
            read["dp"] = 1  # dp-size then counts attention groups inside one replica
        config = cls(**read)
        return replace(
            config,
            tp=max(config.tp, 1),
            dp=max(config.dp, 1),
            pp=max(config.pp, 1),
            chunked_prefill=max(config.chunked_prefill, 0),
            max_running=max(config.max_running, 0),
            stream_interval=max(config.stream_interval, 1),
        )

    @property
    def gpus_needed(self) -> int:
        return self.tp * self.pp * self.dp

    @property
    def kv_capacity(self) -> int:
        """Tokens the KV cache of one replica holds (negative when the weights do not fit)."""
        free_gb = self.tp * self.pp * self.gpu_memory_gb * self.memory_fraction - self.weights_gb
        return math.floor(free_gb * 1024 / self.kv_mb_per_token)

    def out_of_memory(self) -> str | None:
        """Why the engine runs out of memory at start, or None."""
        if self.memory_fraction > MAX_MEMORY_FRACTION:
            return f"memory fraction {self.memory_fraction} leaves no room for activations"
        weights = self.weights_gb / (self.tp * self.pp)
        usable = self.gpu_memory_gb * self.memory_fraction
        if weights >= usable:
            fraction = self.memory_fraction
            return f"the weights take {weights:.2f} GiB a GPU and memory fraction {fraction} gives {usable:.2f}"
        if self.chunked_prefill:
            activations = self.chunked_prefill * ACTIVATION_MB_PER_TOKEN / 1024 / self.tp
            left = self.gpu_memory_gb - usable
            if activations > left:
                return (
                    f"a prefill chunk of {self.chunked_prefill} tokens needs {activations:.2f} GiB of activations "
                    f"and memory fraction {self.memory_fraction} leaves {left:.2f}"
                )
        return None

    def cached(self, shared: int) -> int:
        """The tokens of a ``shared`` prompt prefix that the prefix cache spares a prefill."""
        if not self.prefix_cache:
            return 0
        return shared if self.schedule_policy in PREFIX_AWARE_POLICIES else int(shared * UNORDERED_PREFIX_REUSE)

    def slots(self, need: int, cached: int = 0) -> int:
        """How many requests needing ``need`` tokens of KV cache one replica runs at once."""
        fit = max(self.kv_capacity - cached, 0) // max(need, 1)
        return min(fit, self.max_running) if self.max_running else fit


def decode_ms(config: Config, running: float) -> float:
    """One decode step with ``running`` requests in the batch."""
    batch = max(running, 1.0)
    step = config.tpot_ms * (1 + BATCH_COST * (batch - 1)) / config.tp**TP_EXPONENT
    step += TP_COMM_MS * math.log2(config.tp) + PP_HOP_MS * (config.pp - 1)
    if config.schedule_policy == "lpm":
        step += LPM_STEP_MS
    return step + STREAM_CHUNK_MS * batch / config.stream_interval


def _prefill(config: Config, uncached: int, running: float) -> tuple[int, float, float]:
    """(prefill steps, each step's compute, a decode step) for a prompt of ``uncached`` tokens."""
    uncached = max(uncached, 1)
    chunk = min(config.chunked_prefill or uncached, uncached)
    compute = chunk * PREFILL_MS_PER_TOKEN / config.tp**TP_EXPONENT
    return math.ceil(uncached / chunk), compute, decode_ms(config, running)


def first_token_ms(config: Config, uncached: int, running: float) -> float:
    """Time to first token of a running request whose prompt has ``uncached`` tokens to prefill."""
    steps, compute, decode = _prefill(config, uncached, running)
    return config.ttft_ms + steps * max(compute, decode)


def token_ms(config: Config, uncached: int, output: int, running: float) -> float:
    """Time per output token, with the stall the other running requests' prefill causes."""
    steps, compute, decode = _prefill(config, uncached, running)
    stall = (max(running, 1.0) - 1) * steps * max(compute - decode, 0.0) / max(output - 1, 1)
    return decode + stall


class WorkloadLike(Protocol):
    @property
    def input_tokens(self) -> int: ...

    @property
    def output_tokens(self) -> int: ...

    @property
    def shared_prefix(self) -> float: ...


@dataclass(frozen=True)
class Workload:
    """What each request asks. tasks.benchmark.Workload reads the same (its ranges as their midpoints,
    its ``mode`` as the kind of load)."""

    input_tokens: int
    output_tokens: int
    shared_prefix: float = 0.0  # share (0..1) of every prompt common to all requests


def _lengths(workload: WorkloadLike) -> tuple[int, int]:
    def middle(low: int, high: int | None) -> int:
        return round((low + (high or low)) / 2)

    return (
        middle(workload.input_tokens, getattr(workload, "input_tokens_max", None)),
        middle(workload.output_tokens, getattr(workload, "output_tokens_max", None)),
    )


@dataclass(frozen=True)
class Expected:
    load: float  # requests in flight (concurrency) or requests per second (rate)
    ttft_ms: float  # request-weighted means over the replicas
    tpot_ms: float
    e2e_s: float
    worst_ttft_ms: float  # the slowest replica's
    worst_tpot_ms: float
    worst_e2e_s: float
    requests_per_s: float
    output_tokens_per_s: float
    running: float  # requests running, over all replicas
    waiting: float  # requests queued for a slot (closed loop)


@dataclass(frozen=True)
class _Replica:
    ttft_ms: float
    tpot_ms: float
    e2e_ms: float
    per_ms: float  # requests finished per ms
    running: float
    waiting: float


def expected(config: Config, workload: WorkloadLike, load: float, *, mode: str | None = None) -> Expected:
    """What a benchmark of ``workload`` at ``load`` should measure, without noise: in flight
    requests (``mode="concurrency"``, the default unless the workload says its ``mode``) or requests
    per second (``"rate"``). CannotServe when the configuration cannot."""
    mode = mode or getattr(workload, "mode", "concurrency")
    if mode not in ("concurrency", "rate"):
        raise ValueError(f"mode {mode!r} is neither concurrency nor rate")
    if load <= 0:
        raise ValueError(f"a load must be positive, not {load}")
    reason = config.out_of_memory()
    if reason:
        raise CannotServe(f"out of memory: {reason}")
    prompt, output = _lengths(workload)
    cached = config.cached(round(prompt * workload.shared_prefix))
    uncached = max(prompt - cached, 1)
    slots = config.slots(uncached + output, cached)
    if slots < 1:
        raise CannotServe(
            f"a request needs {uncached + output} tokens of KV cache and a replica holds {config.kv_capacity - cached}"
        )
    if mode == "concurrency":
        total = int(load)
        loads = [total // config.dp + (index < total % config.dp) for index in range(config.dp)]
        replicas = [_closed(config, uncached, output, n, slots) for n in loads if n]
    else:
        replicas = [_open(config, uncached, output, load / 1000 / config.dp, slots)] * config.dp
    rate = sum(replica.per_ms for replica in replicas)

    def mean(read: Callable[[_Replica], float]) -> float:
        return sum(read(replica) * replica.per_ms for replica in replicas) / rate

    return Expected(
        load=load,
        ttft_ms=mean(lambda replica: replica.ttft_ms),
        tpot_ms=mean(lambda replica: replica.tpot_ms),
        e2e_s=mean(lambda replica: replica.e2e_ms) / 1000,
        worst_ttft_ms=max(replica.ttft_ms for replica in replicas),
        worst_tpot_ms=max(replica.tpot_ms for replica in replicas),
        worst_e2e_s=max(replica.e2e_ms for replica in replicas) / 1000,
        requests_per_s=rate * 1000,
        output_tokens_per_s=rate * 1000 * output,
        running=sum(replica.running for replica in replicas),
        waiting=sum(replica.waiting for replica in replicas),
    )


def _service(config: Config, uncached: int, output: int, running: float) -> tuple[float, float, float]:
    first = first_token_ms(config, uncached, running)
    per_token = token_ms(config, uncached, output, running)
    return first, per_token, first + (output - 1) * per_token


def _closed(config: Config, uncached: int, output: int, requests: int, slots: int) -> _Replica:
    running = min(requests, slots)
    first, per_token, service = _service(config, uncached, output, running)
    wait = (requests / running - 1) * service
    return _Replica(first + wait, per_token, service + wait, running / service, running, requests - running)


def _open(config: Config, uncached: int, output: int, per_ms: float, slots: int) -> _Replica:
    def excess(in_flight: float) -> float:  # arrivals over the in-flight count they sustain
        return per_ms * _service(config, uncached, output, in_flight)[2] - in_flight

    if excess(slots) > 0:  # over capacity: the queue grows for as long as requests arrive
        service = _service(config, uncached, output, slots)[2]
        return _Replica(math.inf, math.inf, math.inf, slots / service, slots, math.inf)
    low, high = 0.0, float(slots)
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if excess(middle) > 0 else (low, middle)
    first, per_token, service = _service(config, uncached, output, high)
    return _Replica(first, per_token, service, per_ms, high, 0.0)
