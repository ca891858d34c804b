"""From a grid to the experiments a task runs: constraints, lazy expansion, launch commands.

A grid is never materialised: the total is a product, the runnable count judges only the values
of the few flags a constraint reads, and a page of the plan is found by indexing (``Plan``).
"""

from __future__ import annotations

import bisect
import itertools
import math
import shlex
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engines.catalogue import Catalogue, for_engine
from engines.registry import UnknownEngine, engine

MAX_GRID_EXPERIMENTS = 10_000

type Combination = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """A constraint between flags: ``reason`` returns why a combination cannot run, or None."""

    flags: tuple[str, ...]
    reason: Callable[[Mapping[str, Any]], str | None]


def rules_for(runtime: str, gpus: int, grid: Mapping[str, Sequence[Any]] | None = None) -> list[Rule]:
    """What stops a combination running on ``gpus`` GPUs of this engine, or makes it a duplicate of
    another combination in ``grid``; none for an unknown engine.

    Each rule follows the engine's own argument checks (the file and line of the published wheel,
    SGLang 0.5.23 and vLLM 0.34.0, are in tests/engines/test_rules.py). Without ``grid``, no
    combination is called a duplicate.
    """
    try:
        known = engine(runtime)
    except UnknownEngine:
        return []
    if known.name == "sglang":
        rules = _sglang_rules(gpus, grid or {})
    else:
        rules = [_parallel_gpus(known.name, known.parallel_flags, gpus)]
        if known.name == "vllm":
            rules += _vllm_rules()
    for first, second in known.exclusive_switches:
        rules.append(Rule((first, second), _both_on(first, second)))
    return rules


def gpus_needed(runtime: str, values: Mapping[str, Any]) -> int:
    """The GPUs a combination's engine uses, by its own rule: SGLang runs dp-size replicas of
    tp × pp GPUs (attention DP runs inside the TP group and adds none); vLLM tp × dp × pp. The flags
    are the engine's canonical names (``canonical`` maps an abbreviation such as SGLang's --tp)."""
    try:
        known = engine(runtime)
    except UnknownEngine:
        return 1
    if known.name == "sglang":
        replicas, _ = _sglang_replicas(values)
        return _size(values.get("tp-size")) * _size(values.get("pp-size")) * replicas
    return math.prod(_size(values.get(flag)) for flag in known.parallel_flags)


def _parallel_gpus(runtime: str, parallel: tuple[str, str, str], gpus: int) -> Rule:
    tp, dp, pp = parallel

    def too_many_gpus(values: Mapping[str, Any]) -> str | None:
        needed = gpus_needed(runtime, values)
        if needed > gpus:
            return f"{tp} × {dp} × {pp} = {needed} GPUs, {_over_cap(gpus)}"
        return None

    return Rule(parallel, too_many_gpus)


def _over_cap(gpus: int) -> str:
    return f"over the task's cap of {gpus} per experiment"


def _sglang_replicas(values: Mapping[str, Any]) -> tuple[int, int]:
    """(replicas, attention DP groups): the deprecated ``--dp-size N --enable-dp-attention`` means
    ``--attn-dp-size N`` with one replica."""
    dp, attn_dp = _size(values.get("dp-size")), _size(values.get("attn-dp-size"))
    if values.get("enable-dp-attention") is True and attn_dp == 1:
        return 1, dp
    return dp, attn_dp


# SGLang's scheduling policies that read the radix cache, and fall back to fcfs without it.
_FALLS_BACK_TO_FCFS = ("lpm", "dfs-weight", "hrrn")


def _sglang_rules(gpus: int, grid: Mapping[str, Sequence[Any]]) -> list[Rule]:
    attention_dp = _sglang_replicas

    def too_many_gpus(values: Mapping[str, Any]) -> str | None:
        needed = gpus_needed("sglang", values)
        if needed <= gpus:
            return None
        if attention_dp(values)[0] == 1 and _size(values.get("dp-size")) > 1:
            return f"tp-size × pp-size = {needed} GPUs, {_over_cap(gpus)}"
        return f"tp-size × dp-size × pp-size = {needed} GPUs, {_over_cap(gpus)}"

    def replicas_with_attention_dp(values: Mapping[str, Any]) -> str | None:
        replicas, attn_dp = attention_dp(values)
        if replicas > 1 and attn_dp > 1:
            return "SGLang refuses dp-size > 1 (data-parallel replicas) together with attn-dp-size > 1"
        return None

    def tp_not_divisible(values: Mapping[str, Any]) -> str | None:
        _, attn_dp = attention_dp(values)
        if attn_dp > 1 and _size(values.get("tp-size")) % attn_dp:
            return "SGLang needs tp-size divisible by the attention DP size (attn-dp-size)"
        return None

    def policy_without_radix(values: Mapping[str, Any]) -> str | None:
        if values.get("disable-radix-cache") is True and values.get("schedule-policy") == "shortest-prefill-first":
            return "schedule-policy shortest-prefill-first needs the radix cache, which disable-radix-cache turns off"
        return None

    def priority_policy(values: Mapping[str, Any]) -> str | None:
        policy = values.get("schedule-policy", "fcfs")
        if values.get("enable-priority-scheduling") is True and policy not in ("fcfs", "lof"):
            return f"priority scheduling needs schedule-policy fcfs or lof, not {policy}"
        return None

    def linker_without_radix(values: Mapping[str, Any]) -> str | None:
        if values.get("enable-unified-cache-external-linker") is True and values.get("disable-radix-cache") is True:
            return "enable-unified-cache-external-linker needs the radix cache, which disable-radix-cache turns off"
        return None

    def lmcache_conflict(values: Mapping[str, Any]) -> str | None:
        if values.get("enable-lmcache") is not True:
            return None
        for switch in ("enable-hierarchical-cache", "enable-unified-cache-external-linker", "enable-streaming-session"):
            if values.get(switch) is True:
                return f"enable-lmcache and {switch} cannot be on together"
        if values.get("disable-radix-cache") is True:
            return "enable-lmcache needs the radix cache, which disable-radix-cache turns off"
        if attention_dp(values)[1] > 1:
            return "enable-lmcache does not support attention DP (attn-dp-size > 1)"
        if _size(values.get("dcp-size")) > 1:
            return "enable-lmcache does not support dcp-size > 1"
        algorithm = values.get("speculative-algorithm")
        if isinstance(algorithm, str) and algorithm.upper() not in ("", "NONE"):
            return "enable-lmcache does not support speculative decoding (speculative-algorithm)"
        return None

    parallel = ("tp-size", "dp-size", "pp-size", "attn-dp-size", "enable-dp-attention")
    lmcache = (
        "enable-lmcache",
        "enable-hierarchical-cache",
        "enable-unified-cache-external-linker",
        "enable-streaming-session",
        "disable-radix-cache",
        "dp-size",
        "attn-dp-size",
        "enable-dp-attention",
        "dcp-size",
        "speculative-algorithm",
    )
    rules = [
        Rule(parallel, too_many_gpus),
        Rule(parallel, replicas_with_attention_dp),
        Rule(parallel, tp_not_divisible),
        Rule(("disable-radix-cache", "schedule-policy"), policy_without_radix),
        Rule(("enable-priority-scheduling", "schedule-policy"), priority_policy),
        Rule(("enable-unified-cache-external-linker", "disable-radix-cache"), linker_without_radix),
        Rule(lmcache, lmcache_conflict),
    ]
    if "fcfs" in grid.get("schedule-policy", ()):
        # Not refused: the policy quietly falls back to fcfs, so the run would repeat the fcfs one.
        def same_as_fcfs(values: Mapping[str, Any]) -> str | None:
            if values.get("disable-radix-cache") is True and values.get("schedule-policy") in _FALLS_BACK_TO_FCFS:
                return "same as fcfs: SGLang falls back to fcfs without the radix cache"
            return None

        rules.append(Rule(("disable-radix-cache", "schedule-policy"), same_as_fcfs))
    return rules


def _vllm_rules() -> list[Rule]:
    catalogue = for_engine("vllm")

    def count(flag: str, value: Any) -> int | None:
        """A positive token or sequence count as vLLM reads it ("32k" is 32000), or None when the
        value is not one (unset, "auto", -1: the model's own length)."""
        known = catalogue.lookup(flag) if catalogue else None
        number = known.size(value) if known is not None and known.kind == "size" else value
        return number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else None

    def batch_below_sequences(values: Mapping[str, Any]) -> str | None:
        tokens = count("max-num-batched-tokens", values.get("max-num-batched-tokens"))
        sequences = count("max-num-seqs", values.get("max-num-seqs"))
        if tokens is not None and sequences is not None and tokens < sequences:
            return f"max-num-batched-tokens ({tokens}) must be at least max-num-seqs ({sequences})"
        return None

    def batch_below_context(values: Mapping[str, Any]) -> str | None:
        if values.get("enable-chunked-prefill") is not False and values.get("disable-chunked-prefill") is not True:
            return None  # chunked prefill is on unless turned off, in either of vLLM's spellings
        tokens = count("max-num-batched-tokens", values.get("max-num-batched-tokens"))
        length = count("max-model-len", values.get("max-model-len"))
        if tokens is not None and length is not None and tokens < length:
            return (
                f"with chunked prefill off, max-num-batched-tokens ({tokens}) must be at least max-model-len ({length})"
            )
        return None

    return [
        Rule(("max-num-batched-tokens", "max-num-seqs"), batch_below_sequences),
        Rule(
            ("max-num-batched-tokens", "max-model-len", "enable-chunked-prefill", "disable-chunked-prefill"),
            batch_below_context,
        ),
    ]


def _both_on(first: str, second: str) -> Callable[[Mapping[str, Any]], str | None]:
    def reason(values: Mapping[str, Any]) -> str | None:
        if values.get(first) is True and values.get(second) is True:
            return f"{first} and {second} cannot be on together"
        return None

    return reason


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


@dataclass(frozen=True)
class PlanSummary:
    total: int
    runnable: int
    # Why combinations cannot run, with how many each reason removes. A plain dict: a Counter
    # answers 0 to templates looking up ``skipped.items``.
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def skipped_count(self) -> int:
        return self.total - self.runnable


class PlanTooLarge(ValueError):
    """The flags the engine's rules relate have too many value combinations to judge one by one."""

    def __init__(self, flags: Sequence[str], count: int) -> None:
        self.flags, self.count = list(flags), count
        super().__init__(
            f"{', '.join(flags)} have {count:,} combinations of values between them; the engine's rules "
            f"relate these flags, and a plan can judge at most {MAX_RULED_COMBINATIONS:,}: give them fewer values"
        )


# Every combination of the values of the flags a rule reads is judged once, when a plan is made:
# no real grid comes near this (tp-size, dp-size and pp-size with 8 values each, and a handful of
# switches and policies, are a few thousand), and it bounds the work of a request.
MAX_RULED_COMBINATIONS = 100_000


def _active_rules(grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule]) -> list[Rule]:
    return [rule for rule in rules if any(flag in grid for flag in rule.flags)]


def canonical(grid: Mapping[str, Any], same_flag: Mapping[str, str] | None) -> dict[str, Any]:
    """The grid (or a combination) keyed by canonical flag names, the names the rules read."""
    if not same_flag:
        return dict(grid)
    return {same_flag.get(flag, flag): values for flag, values in grid.items()}


class Plan:
    """The runnable combinations of a grid in plan order (the grid's flag order, last flag fastest),
    counted, indexed and paged without walking the grid.

    Whether a combination runs depends only on the few flags the rules read ("ruled" flags). Their
    runnable value tuples are judged once and kept sorted, so the runnable combinations under any
    prefix of the grid are counted by two bisections, times the sizes of the free flags after it.
    Finding the n-th combination then descends the mixed-radix grid one flag at a time, and walking
    on from it skips a subtree the moment its ruled prefix has no runnable completion: the work is
    in proportion to the flags and the page, not to the grid.
    """

    def __init__(
        self, grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
    ) -> None:
        self.grid = grid
        self.flags = list(grid)
        self.sizes = [len(grid[flag]) for flag in self.flags]
        self.total = math.prod(self.sizes) if grid else 0
        names = same_flag or {}
        self._same_flag = same_flag
        self._rules = _active_rules(canonical(grid, same_flag), rules)
        read = {flag for rule in self._rules for flag in rule.flags}
        # Positions in the grid of the ruled flags, and for every position the product of the sizes
        # of the free flags after it: how many runnable combinations each runnable ruled tuple gives.
        self._ruled = [position for position, flag in enumerate(self.flags) if names.get(flag, flag) in read]
        self._is_ruled = [position in self._ruled for position in range(len(self.flags))]
        self._free_after = [1] * len(self.flags)
        for position in range(len(self.flags) - 2, -1, -1):
            after = position + 1
            self._free_after[position] = self._free_after[after] * (1 if self._is_ruled[after] else self.sizes[after])
        ruled_count = math.prod(self.sizes[position] for position in self._ruled)
        if ruled_count > MAX_RULED_COMBINATIONS:
            raise PlanTooLarge([self.flags[position] for position in self._ruled], ruled_count)
        free = self.total // ruled_count if grid else 0
        self._runnable_tuples: list[tuple[int, ...]] = []  # sorted: product() yields them in order
        skipped: Counter[str] = Counter()
        for indexes in itertools.product(*(range(self.sizes[position]) for position in self._ruled)):
            reason = self._reason(dict(zip(self._ruled, indexes, strict=True)))
            if reason is None:
                self._runnable_tuples.append(indexes)
            else:
                skipped[reason] += free
        self.runnable = len(self._runnable_tuples) * free if grid else 0
        self.summary = PlanSummary(self.total, self.runnable, dict(skipped))

    def _reason(self, indexes: Mapping[int, int]) -> str | None:
        combination = {
            self.flags[position]: self.grid[self.flags[position]][index] for position, index in indexes.items()
        }
        return _first_reason(canonical(combination, self._same_flag), self._rules)

    def _completions(self, ruled_prefix: tuple[int, ...]) -> int:
        """How many runnable ruled tuples start with this prefix."""
        tuples = self._runnable_tuples
        if not ruled_prefix:
            return len(tuples)
        after = (*ruled_prefix[:-1], ruled_prefix[-1] + 1)
        return bisect.bisect_left(tuples, after) - bisect.bisect_left(tuples, ruled_prefix)

    def _digits_at(self, number: int) -> list[int]:
        """The grid indexes of the runnable combination at 0-based ``number`` in plan order."""
        digits: list[int] = []
        prefix: tuple[int, ...] = ()
        for position, size in enumerate(self.sizes):
            below = self._free_after[position]
            if self._is_ruled[position]:
                for index in range(size):
                    count = self._completions((*prefix, index)) * below
                    if number < count:
                        break
                    number -= count
                prefix = (*prefix, index)
            else:
                index, number = divmod(number, self._completions(prefix) * below)
            digits.append(index)
        return digits

    def _combination(self, digits: Sequence[int]) -> Combination:
        return {flag: self.grid[flag][index] for flag, index in zip(self.flags, digits, strict=True)}

    def at(self, number: int) -> Combination:
        """The runnable combination at 0-based ``number`` in plan order; IndexError past the end."""
        if not 0 <= number < self.runnable:
            raise IndexError(number)
        return self._combination(self._digits_at(number))

    def combinations(self, start: int = 0) -> Iterator[Combination]:
        """The runnable combinations from 0-based ``start`` on, lazily, in plan order."""
        if start >= self.runnable:
            return
        digits = self._digits_at(start)
        yield self._combination(digits)
        while self._advance(digits):
            yield self._combination(digits)

    def _advance(self, digits: list[int]) -> bool:
        """Move ``digits`` to the next runnable combination; False after the last one."""
        position = len(digits) - 1
        while position >= 0:
            digits[position] += 1
            if digits[position] == self.sizes[position]:
                digits[position] = 0
                position -= 1
            elif not self._is_ruled[position] or self._completions(self._ruled_prefix(digits, position)):
                break
        if position < 0:
            return False
        # The prefix up to ``position`` has a runnable completion: take the first one.
        for later in range(position + 1, len(digits)):
            digits[later] = 0
            if self._is_ruled[later]:
                while not self._completions(self._ruled_prefix(digits, later)):
                    digits[later] += 1
        return True

    def _ruled_prefix(self, digits: Sequence[int], upto: int) -> tuple[int, ...]:
        return tuple(digits[position] for position in self._ruled if position <= upto)


def summarize(
    grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
) -> PlanSummary:
    """Total and runnable combinations with the reasons for the skipped ones, without expanding the grid."""
    return Plan(grid, rules, same_flag).summary


def skip_reason(
    combination: Mapping[str, Any], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
) -> str | None:
    """Why this one combination cannot run, or None when it can (for samplers that pick combinations)."""
    return _first_reason(canonical(combination, same_flag), rules)


def _first_reason(combination: Mapping[str, Any], rules: Sequence[Rule]) -> str | None:
    for rule in rules:
        reason = rule.reason(combination)
        if reason:
            return reason
    return None


def runnable(
    grid: Mapping[str, Sequence[Any]], rules: Sequence[Rule], same_flag: Mapping[str, str] | None = None
) -> Iterator[Combination]:
    """The runnable combinations, lazily, in plan order (the grid's flag order, last flag fastest)."""
    return Plan(grid, rules, same_flag).combinations()


def command_arguments(flag: str, value: Any, catalogue: Catalogue | None) -> list[str]:
    """One flag's part of a command line: ``--tp-size 2``; a switch is bare when on, and when off
    either omitted or given as its off form where the engine has one (vLLM's ``--disable-X``).
    A grid that names the off form (``disable-prefix-caching``) gets it when true and the switch's
    on form when false."""
    known = catalogue.lookup(flag) if catalogue else None
    turned_off = catalogue.negated(flag) if catalogue is not None and known is None else None
    if turned_off is not None and isinstance(value, bool):
        return [f"--{flag}"] if value else [f"--{turned_off.name}"]
    if known is not None:
        flag = known.name  # the engine's own long name, whatever alias the grid used (vLLM's "tp" is "-tp")
    if isinstance(value, bool):
        if known is not None and known.kind != "switch":
            return [f"--{flag}", "true" if value else "false"]
        if value:
            return [f"--{flag}"]
        return [f"--{known.negation}"] if known is not None and known.negation else []
    if known is not None and known.kind == "list" and isinstance(value, str):
        return [f"--{flag}", *value.split()]
    return [f"--{flag}", value if isinstance(value, str) else _number(value)]


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)  # a float's repr is its JSON spelling


def command_renderer(
    runtime: str,
    model: str,
    flags: Sequence[str],
    *,
    port: int | str = 30000,
    catalogue: Catalogue | None,
    launcher: Sequence[str] | None = None,
) -> Callable[[Mapping[str, Any]], str]:
    """A function from a combination of ``flags`` to its launch command, with everything that does not
    depend on the values (the launcher, each flag's spelling and kind) worked out once.

    ``launcher`` replaces the engine's own (``{model}`` in a word is the model), e.g. a container.
    """
    words = launcher if launcher is not None else engine(runtime).launcher
    prefix = shlex.join(
        [word.replace("{model}", model) for word in words] + ["--host", "127.0.0.1", "--port", str(port)]
    )
    parts: dict[tuple[str, Any], str] = {}

    def render(combination: Mapping[str, Any]) -> str:
        words = [prefix]
        for flag, value in combination.items():
            key = (flag, value if not isinstance(value, bool) else ("bool", value))
            part = parts.get(key)
            if part is None:
                part = parts[key] = shlex.join(command_arguments(flag, value, catalogue))
            if part:
                words.append(part)
        return " ".join(words)

    return render


def launch_command(
    runtime: str,
    model: str,
    combination: Mapping[str, Any],
    *,
    port: int | str = 30000,
    catalogue: Catalogue | None,
    launcher: Sequence[str] | None = None,
) -> str:
    """The exact, shell-quoted command that starts the engine for one combination."""
    render = command_renderer(runtime, model, list(combination), port=port, catalogue=catalogue, launcher=launcher)
    return render(combination)
