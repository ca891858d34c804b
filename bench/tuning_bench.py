"""Tuning against the stand-in engine: how well GPUs are packed, how fast a search finds the optimum,
and how often the declared winner is the true best (issue 22, "Measured").

Run from the repository root with the project's interpreter::

    .venv/bin/python bench/tuning_bench.py [--part packing|search|trust|all] [--quick]

Each run makes a fresh SQLite database in a temporary folder, migrated with the real settings
(``autotuner.settings``). Figures are printed beside their targets, a missed one as missed;
nothing is asserted.

1. **Packing** (real processes, a little over a minute on 2 cores). A grid task of 32 one-GPU
   combinations (chunked-prefill-size 8 values × schedule-policy 2 × stream-interval 2, tp 1), a
   small workload (concurrency 1 and 4, 8 requests a level, 16 output tokens, no warm-up), run
   against the stand-in engine (``AUTOTUNER_STANDIN_ENGINE=1``, 1 s start-up) by one ``manage.py
   worker`` with ``AUTOTUNER_GPU_IDS=0,…,7`` and ``AUTOTUNER_PARALLEL_EXPERIMENTS=8``, then by one
   with a single GPU id. For each: the wall time from the first experiment's start to the last one's
   finish, and from ``lifecycle.start`` to the task's finish; the speed-up (target ≥ 5×); the GPU
   busy share, leased GPU-seconds ÷ (GPUs × wall time) (target ≥ 80 %); and the orchestration
   overhead of each experiment: its time beyond the engine's start (``serving_at − started_at``)
   and its benchmark levels (Σ ``duration_s``; no warm-up), plus the idle gap on its GPU before the
   next experiment there (mean and p90; target < 0.5 s).
2. **Search quality** (one process: the real lifecycle and strategies, measurements simulated). A
   360-combination SGLang grid (tp-size 1/2/4/8 × chunked-prefill-size 5 × schedule-policy fcfs/lpm
   × mem-fraction-static 3 × max-running-requests 3, GPU cap 8), a workload whose prompts share half
   their tokens (so lpm and the prefix cache matter), objective throughput per GPU. For each of 10
   seeds a task is started and driven as workers drive it (``claim_next``, measure, write the
   experiment back, ``finish_if_done``); "measuring" is ``engines.simulator``'s noise-free score
   stretched by the stand-in's own noise factor for that engine start (``standin.Engine`` and
   ``standin.noise_seed`` under ``AUTOTUNER_STANDIN_SEED`` = the seed and ``AUTOTUNER_STANDIN_RUN``
   = the experiment's number; 3 % noise; the per-request jitter, which a level averages out, is
   left out). Counted: experiments until one whose TRUE score is within 5 % of
   ``optimum.true_optimum``'s has run, as a share of the grid; median and worst over the seeds for
   bayesian (target ≤ 25 %) and random (target ≤ 50 %), and grid search's (one order, no seed) for
   reference. No baseline, no repeats.
3. **Trust** (the same in-process setup). A 32-combination grid (mem-fraction-static 4 ×
   schedule-policy 2 × stream-interval 4) whose next best four lie 2 to 7 % below the best, 5 %
   noise, full runs with the baseline and the 3 best measured twice more (each repeat a fresh
   engine start: a fresh draw), then ``tasks.verdict.verdict``. A run succeeds when the declared
   winner is the true best, or when the verdict is "tied within noise" with the true best among
   the tied. Share over 20 seeds (target ≥ 95 %), and the same runs with repeats off (the same
   first measurements, the best of them declared).

``--quick`` runs every part small (8 combinations to pack, 2 seeds to search, 3 to trust): the
suite's smoke test (tests/test_tuning_bench.py) runs it so the bench cannot rot; its figures are
not the ones to quote.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from engines.optimum import Optimum
    from tasks.models import Experiment, Task
    from tasks.verdict import Configuration

MODEL = "bench/model-8b"
RUNTIME = "sglang"
TRUE_BEST = 1e-9  # a shortfall this small is the optimum itself (the same function, the same value)

PACKING_GRID: dict[str, Any] = {
    "tp-size": [1],
    # Up to 16,384: a 32k chunk's activations do not fit beside SGLang's default memory fraction.
    "chunked-prefill-size": [128, 256, 512, 1024, 2048, 4096, 8192, 16384],
    "schedule-policy": ["fcfs", "lpm"],
    "stream-interval": [1, 2],
}
PACKING_BENCHMARK: dict[str, Any] = {
    "concurrency_levels": [1, 4],
    "requests_per_level": 8,
    "input_tokens": 32,
    "output_tokens": 16,
    "max_seconds_per_level": 10,
    "warmup_requests": 0,  # not recorded as time: without it the levels are the whole benchmark
}
PACKING_TIMEOUT = 300.0  # seconds for one run of the task

SEARCH_GRID: dict[str, Any] = {
    "tp-size": [1, 2, 4, 8],
    "chunked-prefill-size": [512, 1024, 2048, 4096, 8192],
    "schedule-policy": ["fcfs", "lpm"],
    "mem-fraction-static": [0.7, 0.8, 0.9],
    "max-running-requests": [8, 32, 128],
}
TRUST_GRID: dict[str, Any] = {
    "mem-fraction-static": [0.6, 0.7, 0.8, 0.9],
    "schedule-policy": ["fcfs", "lpm"],
    "stream-interval": [1, 2, 4, 8],
}


@dataclass(frozen=True)
class Size:
    packing_grid: dict[str, Any]
    startup_seconds: float
    search_seeds: int
    trust_seeds: int


FULL = Size(PACKING_GRID, startup_seconds=1.0, search_seeds=10, trust_seeds=20)
QUICK = Size(
    {"tp-size": [1], "chunked-prefill-size": PACKING_GRID["chunked-prefill-size"]},
    startup_seconds=0.5,
    search_seeds=2,
    trust_seeds=3,
)


@dataclass(frozen=True)
class Simulated:
    """A task's grid, workload and objective, as the simulator scores them."""

    grid: dict[str, Any]
    input_tokens: int
    output_tokens: int
    shared_prefix: float
    loads: list[int]
    objective: str
    noise: float

    def optimum(self) -> Optimum:
        from engines import optimum, simulator

        workload = simulator.Workload(self.input_tokens, self.output_tokens, self.shared_prefix)
        return optimum.true_optimum(
            self.grid, runtime=RUNTIME, workload=workload, objective=self.objective, loads=self.loads, gpu_cap=8
        )

    def task(self, name: str, **fields: Any) -> Task:
        from tasks.models import Task

        return Task.objects.create(
            name=name,
            model=MODEL,
            runtime=RUNTIME,
            parameters=self.grid,
            gpus=8,
            objective=self.objective,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            shared_prefix=self.shared_prefix,
            concurrency_levels=self.loads,
            warmup_requests=0,
            **fields,
        )


SEARCH = Simulated(SEARCH_GRID, 1024, 128, 0.5, [16, 64], "maximize_throughput_per_gpu", noise=0.03)
TRUST = Simulated(TRUST_GRID, 1024, 128, 0.5, [16, 64], "maximize_throughput", noise=0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["packing", "search", "trust", "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="every part small: a smoke test, not figures")
    options = parser.parse_args()
    size = QUICK if options.quick else FULL
    folder = Path(tempfile.mkdtemp(prefix="tuning-bench-"))
    try:
        setup(folder)
        print(
            f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, load {load()}"
            + (", --quick" if options.quick else "")
        )
        if options.part in ("packing", "all"):
            packing(folder, size)
        if options.part in ("search", "all"):
            search(size)
        if options.part in ("trust", "all"):
            trust(size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def setup(folder: Path) -> None:
    """Point Django at a new SQLite file in ``folder`` with the real settings, and migrate it."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="autotuner.settings",
        DATABASE_URL=f"sqlite:///{folder / 'bench.sqlite3'}",
        AUTOTUNER_DATA_DIR=str(folder),
        DEBUG="false",  # Django would otherwise keep every query in memory
        AUTOTUNER_LOG_LEVEL="WARNING",  # a line per task is noise between the tables
    )
    # This process plays a worker without GPUs (parts 2 and 3) and sets the stand-in's seed itself.
    for name in ("AUTOTUNER_GPU_IDS", "AUTOTUNER_HOST_NAME", "AUTOTUNER_STANDIN_SEED", "AUTOTUNER_STANDIN_RUN"):
        os.environ.pop(name, None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def load() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def verdict_word(met: bool) -> str:
    return "met" if met else "MISSED"


# 1. Packing


@dataclass(frozen=True)
class PackingRun:
    gpus: int
    experiments: int
    succeeded: int
    wall_s: float  # first start to last finish
    start_to_finish_s: float  # lifecycle.start to the task's finish
    busy_share: float
    engine_start_s: float  # mean
    benchmark_s: float  # mean
    overheads: list[float]  # each experiment's: its own time beyond engine start and benchmark, plus
    idle_s: float  # the mean of the second part, its GPU's idle gap before the next experiment


def packing(folder: Path, size: Size) -> None:
    from engines.optimum import combinations

    count = len(list(combinations(size.packing_grid)))
    print(
        f"\n1. Packing: {count} one-GPU combinations, engine start-up {size.startup_seconds:g} s, "
        f"concurrency {PACKING_BENCHMARK['concurrency_levels']}, {PACKING_BENCHMARK['requests_per_level']} requests "
        f"a level, {PACKING_BENCHMARK['output_tokens']} output tokens"
    )
    runs = [pack(folder, size, gpus) for gpus in (8, 1)]
    print(
        f"  {'GPUs':>4} {'done':>7} {'wall':>8} {'start→end':>10} {'busy':>6} {'engine':>7} {'bench':>7} "
        f"{'overhead mean':>14} {'p90':>7} {'of it idle':>10}"
    )
    for run in runs:
        print(
            f"  {run.gpus:>4} {run.succeeded:>3}/{run.experiments:<3} {run.wall_s:>7.1f}s "
            f"{run.start_to_finish_s:>9.1f}s {run.busy_share:>6.0%} {run.engine_start_s:>6.2f}s "
            f"{run.benchmark_s:>6.2f}s {statistics.mean(run.overheads):>13.2f}s "
            f"{percentile(run.overheads, 0.9):>6.2f}s {run.idle_s:>9.2f}s"
        )
    eight, one = runs
    speedup = one.wall_s / eight.wall_s
    overall = one.start_to_finish_s / eight.start_to_finish_s
    mean, p90 = statistics.mean(eight.overheads), percentile(eight.overheads, 0.9)
    print(
        f"  speed-up, 8 GPUs over 1: {speedup:.2f}× ({overall:.2f}× from start to finish)   target ≥ 5×: "
        f"{verdict_word(speedup >= 5)}"
    )
    print(
        f"  GPU busy share on 8 GPUs: {eight.busy_share:.0%}   target ≥ 80 %: {verdict_word(eight.busy_share >= 0.8)}"
    )
    print(
        f"  overhead per experiment on 8 GPUs: mean {mean:.2f} s, p90 {p90:.2f} s   target < 0.5 s: "
        f"{verdict_word(mean < 0.5)} (mean), {verdict_word(p90 < 0.5)} (p90)"
    )
    print(f"  load after: {load()}")


def pack(folder: Path, size: Size, gpus: int) -> PackingRun:
    """Run the packing task with one worker lending ``gpus`` GPUs; its figures."""
    from django.utils import timezone

    from tasks import lifecycle
    from tasks.gpus import GpuSlot
    from tasks.models import Task
    from tasks.states import FINISHED_STATUSES

    host = f"tuning-bench-{gpus}-gpus"
    env = {
        **os.environ,
        "AUTOTUNER_STANDIN_ENGINE": "1",
        "AUTOTUNER_STANDIN_STARTUP_SECONDS": str(size.startup_seconds),
        "AUTOTUNER_GPU_IDS": ",".join(str(gpu) for gpu in range(gpus)),
        "AUTOTUNER_PARALLEL_EXPERIMENTS": "8",
        "AUTOTUNER_HOST_NAME": host,
        "AUTOTUNER_LOG_LEVEL": "INFO",  # its log is shown when it fails
    }
    log = folder / f"worker-{gpus}.log"
    with log.open("w") as output:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--interval", "0.1", "--no-startup-delay", "--worker-id", host],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # The worker offers its GPUs before its slots start polling: then it is ready.
        wait(lambda: GpuSlot.objects.filter(host=host).count() == gpus, 60, worker, log)
        task = Task.objects.create(
            name=f"Packing on {gpus} GPUs",
            model=MODEL,
            runtime=RUNTIME,
            parameters=size.packing_grid,
            gpus=1,
            baseline=False,
            finalists=0,
            **PACKING_BENCHMARK,
        )
        begun = timezone.now()
        lifecycle.start(task)

        def finished() -> bool:
            task.refresh_from_db()
            return task.status in FINISHED_STATUSES

        wait(finished, PACKING_TIMEOUT, worker, log)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    assert task.finished_at is not None
    return packing_figures(task, gpus, (task.finished_at - begun).total_seconds())


def wait(condition: Callable[[], bool], timeout: float, worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if worker.poll() is not None or time.monotonic() > deadline:
            why = f"exited with status {worker.returncode}" if worker.returncode is not None else "timed out"
            sys.exit(f"the worker {why}; its log:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


def packing_figures(task: Task, gpus: int, start_to_finish_s: float) -> PackingRun:
    ran = [e for e in task.experiments.order_by("started_at") if e.started_at and e.finished_at]
    assert ran, "no experiment ran"
    first = min(e.started_at for e in ran if e.started_at)
    last = max(e.finished_at for e in ran if e.finished_at)
    wall = (last - first).total_seconds()
    leased = sum(seconds(e.started_at, e.finished_at) * len(e.gpu_ids) for e in ran)
    starts = [seconds(e.started_at, e.serving_at) for e in ran if e.serving_at]
    benchmarks = [sum(level["duration_s"] for level in e.levels) for e in ran]
    overheads, gaps = [], []
    for experiment, benchmark in zip(ran, benchmarks, strict=True):
        own = seconds(experiment.started_at, experiment.finished_at) - benchmark
        if experiment.serving_at:
            own -= seconds(experiment.started_at, experiment.serving_at)
        gaps.append(idle_after(experiment, ran))
        overheads.append(own + gaps[-1])
    return PackingRun(
        gpus=gpus,
        experiments=task.experiments.count(),
        succeeded=sum(e.status == "succeeded" for e in ran),
        wall_s=wall,
        start_to_finish_s=start_to_finish_s,
        busy_share=leased / (gpus * wall),
        engine_start_s=statistics.mean(starts) if starts else 0.0,
        benchmark_s=statistics.mean(benchmarks),
        overheads=overheads,
        idle_s=statistics.mean(gaps),
    )


def seconds(start: Any, end: Any) -> float:
    return float((end - start).total_seconds())


def idle_after(experiment: Experiment, ran: Sequence[Experiment]) -> float:
    """How long its GPUs stayed free before the next experiment took one of them (0 when none did)."""
    gaps = (
        seconds(experiment.finished_at, other.started_at)
        for other in ran
        if other.pk != experiment.pk and set(other.gpu_ids) & set(experiment.gpu_ids)
    )
    return min((gap for gap in gaps if gap >= 0), default=0.0)


# Parts 2 and 3: the real lifecycle in this process, measurements simulated


def start_factor(config: Any, noise: float, seed: int, run: int) -> float:
    """The factor by which the stand-in stretches every time on this engine start (its own draw)."""
    from engines import standin

    os.environ["AUTOTUNER_STANDIN_SEED"] = str(seed)
    os.environ["AUTOTUNER_STANDIN_RUN"] = str(run)
    return standin.Engine(MODEL, config, noise=noise, seed=standin.noise_seed(config, 0)).factor


def measure(task: Task, experiment: Experiment, optimum: Optimum, *, noise: float, seed: int) -> None:
    """Write back what a worker would after running the experiment against the stand-in."""
    from django.utils import timezone

    from engines.simulator import Config
    from tasks.experiments import Experiment
    from tasks.pruning import prune_after_oom
    from tasks.states import ExperimentStatus

    now = timezone.now()
    config = Config.from_flags(experiment.parameters, task.runtime)
    value = optimum.score_of(experiment.parameters)
    rows = Experiment.objects.filter(pk=experiment.pk)
    if value is None:
        reason = config.out_of_memory()
        error = f"torch.OutOfMemoryError: CUDA out of memory: {reason}" if reason else "cannot serve the workload"
        rows.update(status=ExperimentStatus.FAILED, error=error, step="", finished_at=now)
        experiment.refresh_from_db()
        prune_after_oom(experiment)
        return
    factor = start_factor(config, noise, seed, experiment.number)
    # The stand-in stretches every time by the factor: a rate divides by it, a latency grows with it.
    measured = value / factor if optimum.higher_is_better else value * factor
    rows.update(status=ExperimentStatus.SUCCEEDED, score=measured, step="", serving_at=now, finished_at=now)


def drive(
    task: Task, optimum: Optimum, *, noise: float, seed: int, enough: Callable[[Experiment], bool] | None = None
) -> list[Experiment]:
    """Start the task and run it to its end as workers do, one experiment at a time; the experiments
    measured, in order. ``enough`` ends the run early (cancelled) once it holds for one."""
    from tasks import lifecycle

    lifecycle.start(task, enqueue=False)
    measured: list[Experiment] = []
    for _ in range(10 * (task.plan_summary.runnable + 1)):
        experiment = lifecycle.claim_next(task.pk)
        if experiment is None:
            if lifecycle.finish_if_done(task.pk) or not lifecycle.has_more(task.pk):
                break
            continue
        measure(task, experiment, optimum, noise=noise, seed=seed)
        measured.append(experiment)
        if enough is not None and enough(experiment):
            lifecycle.cancel(task)
            break
        lifecycle.finish_if_done(task.pk)
    return measured


# 2. Search quality


def search(size: Size) -> None:
    from tasks.states import ExperimentRole

    optimum = SEARCH.optimum()
    probe = SEARCH.task("Search: grid size")
    runnable = probe.plan_summary.runnable
    within = sum(optimum.shortfall(optimum.score_of(c)) <= 0.05 for c in probe.runnable_plan.combinations())
    print(
        f"\n2. Search quality: {runnable} runnable combinations, {SEARCH.objective}, {SEARCH.noise:.0%} noise; "
        f"{within} of them within 5 % of the true optimum ({optimum.value:,.0f})"
    )

    def close_enough(experiment: Experiment) -> bool:
        return (
            experiment.role == ExperimentRole.SEARCH
            and optimum.shortfall(optimum.score_of(experiment.parameters)) <= 0.05
        )

    def experiments_needed(strategy: str, seed: int) -> int:
        task = SEARCH.task(
            f"Search: {strategy} {seed}",
            optimization_strategy=strategy,
            seed=seed,
            baseline=False,
            finalists=0,
            max_experiments=None if strategy == "grid" else runnable,
        )
        return len(drive(task, optimum, noise=SEARCH.noise, seed=seed, enough=close_enough))

    print(
        f"  {'strategy':<9} {'seeds':>5} {'median':>13} {'worst':>13} {'target':>7} {'median':>7} {'worst':>7} {'s':>4}"
    )
    for strategy, target in (("bayesian", 0.25), ("random", 0.5), ("grid", None)):
        began = time.monotonic()
        seeds = range(1) if strategy == "grid" else range(size.search_seeds)
        counts = [experiments_needed(strategy, seed) for seed in seeds]
        median, worst = statistics.median(counts) / runnable, max(counts) / runnable
        verdicts = (
            [f"≤ {target:.0%}", verdict_word(median <= target), verdict_word(worst <= target)]
            if target
            else ["-", "reference", ""]
        )
        print(
            f"  {strategy:<9} {len(counts):>5} {statistics.median(counts):>6g} ({median:>4.0%}) {max(counts):>5} "
            f"({worst:>4.0%}) {verdicts[0]:>7} {verdicts[1]:>7} {verdicts[2]:>7} {time.monotonic() - began:>4.0f}"
        )
        if strategy != "grid":
            print(f"  {'':<9} experiments each seed needed: {', '.join(str(count) for count in counts)}")
    print(f"  load after: {load()}")


# 3. Trust


def trust(size: Size) -> None:
    optimum = TRUST.optimum()
    plan = TRUST.task("Trust: grid").runnable_plan.combinations()
    ranked = sorted((optimum.score_of(combination) or 0.0 for combination in plan), reverse=True)
    close = ", ".join(f"{value / optimum.value:.1%}" for value in ranked[1:5])
    print(
        f"\n3. Trust: {len(ranked)} combinations, {TRUST.objective}, {TRUST.noise:.0%} noise, {size.trust_seeds} "
        f"seeds; the next best at {close} of the best"
    )
    print(
        f"  {'repeats':<32} {'winner best':>11} {'tied with it':>12} {'wrong winner':>12} {'tied without':>12} "
        f"{'best a finalist':>15} {'tie size':>8} {'success':>8} {'target ≥ 95 %':>13}"
    )
    for label, finalists in (("on (3 finalists, 2 repeats each)", 3), ("off (measured once)", 0)):
        runs = [trusted_run(finalists, seed, optimum) for seed in range(size.trust_seeds)]
        outcomes = [outcome for outcome, _, _ in runs]
        # How many configurations a tie names, on average: a verdict of "all tied" would say nothing.
        ties = [tied for outcome, _, tied in runs if outcome in ("tied", "tied without")]
        tie_size = f"{statistics.fmean(ties):.1f}" if ties else "-"
        counts = {outcome: outcomes.count(outcome) for outcome in ("winner", "tied", "wrong", "tied without")}
        share = (counts["winner"] + counts["tied"]) / len(runs)
        among = f"{sum(finalist for _, finalist, _ in runs)}/{len(runs)}" if finalists else "-"
        target = verdict_word(share >= 0.95) if finalists else "-"  # what repeats buy, not a target
        print(
            f"  {label:<32} {counts['winner']:>11} {counts['tied']:>12} {counts['wrong']:>12} "
            f"{counts['tied without']:>12} {among:>15} {tie_size:>8} {share:>8.0%} {target:>13}"
        )
    print(f"  load after: {load()}")


def trusted_run(finalists: int, seed: int, optimum: Optimum) -> tuple[str, bool, int]:
    """One full run: "winner" or "tied" when the verdict holds the true best, "wrong" or "tied without"
    when it does not; whether the true best was among the configurations measured again; and how
    many configurations the verdict names (1 for a winner)."""
    from tasks.verdict import verdict

    task = TRUST.task(f"Trust: {finalists} finalists, seed {seed}", baseline=True, finalists=finalists, repeats=2)
    drive(task, optimum, noise=TRUST.noise, seed=seed)
    task.refresh_from_db()
    result = verdict(task, list(task.experiments.all()))

    def true_best(configurations: Sequence[Configuration]) -> bool:
        return any(optimum.shortfall(optimum.score_of(c.experiment.parameters)) <= TRUE_BEST for c in configurations)

    finalist = true_best([c for c in result.configurations if c.repeats])
    if result.winner is not None:
        return ("winner" if true_best([result.winner]) else "wrong"), finalist, 1
    if result.tied:
        return ("tied" if true_best(result.contenders) else "tied without"), finalist, len(result.contenders)
    return "wrong", finalist, 0


if __name__ == "__main__":
    main()
