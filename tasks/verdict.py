"""Which configuration won a task's run, and whether its lead is bigger than the noise.

A *configuration* is a succeeded search experiment together with its repeats (the experiments
whose ``repeat_of`` is it, each measured on a fresh engine start). Its *measurements* are the
scores, meeting every SLO, of the original and of each repeat: a repeat that failed or missed an
SLO adds none. From them:

- ``median``; ``spread``, max − min (0 with one measurement);
- ``gain`` over the baseline (experiment 0, the engine's defaults) as a signed fraction, positive
  when better: (median − baseline) / baseline when higher is better, (baseline − median) / baseline
  for a latency. 1,100 tokens/s against a baseline of 1,000 is +0.10; 90 ms against 100 ms too.

The rule. Once repeats ran, the finalists (the configurations that have repeats) are ranked by
median in the objective's direction, and the first is declared the winner only if its median
beats the runner-up's by more than their spreads, counted as half ranges::

    |median_w − median_r| > (spread_w + spread_r) / 2

and beats every other finalist's so too: a third finalist with a wide spread may be within noise
of the leader when the runner-up is not. 1,300 (spread 60) against 1,150 (spread 80): 150 > 70, a
winner. 1,200 (60) against 1,150 (80): 50 is not more than 70, so the two are *tied within noise*:
no winner, and every finalist within noise of the leader is shown with it. A finalist is
compared only once its repeats have finished; until then no winner is declared. Configurations
that were not finalists are listed after the finalists, never compared with them.

Challengers. A finalist's spread is at least the finalists' common noise (the mean of their half
ranges, each a share of its median: every configuration runs on the same engines, and three
measurements may agree by luck). Once the finalists' repeats are in, a configuration measured once
whose score is within that noise of the leader's median is a *challenger*: it is measured again as
the finalists were, and then compared with them (one such round).

With repeats off (``task.finalists`` is 0) or before any repeat ran, every configuration is ranked
by its single score and the best is declared, "measured once" (equal scores: the lower number).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tasks.experiments import Experiment
from tasks.models import Task
from tasks.scoring import higher_is_better as objective_maximized
from tasks.states import RUNNING_EXPERIMENT, ExperimentRole, ExperimentStatus, Objective
from tasks.templatetags.runs import figure

UNFINISHED = (ExperimentStatus.PENDING, *RUNNING_EXPERIMENT)
# How many times the common noise a single measurement may stray: a half range of three measurements
# is about 0.85 standard deviations of one, and one measurement strays two of them 1 time in 20.
SINGLE = 3


@dataclass(frozen=True)
class Configuration:
    """A search experiment and its repeats, summarised by their measurements."""

    experiment: Experiment
    repeats: tuple[Experiment, ...]
    measurements: tuple[float, ...]
    gain: float | None  # over the baseline, positive when better; None without a baseline score
    noise: float = 0.0  # the finalists' common noise, a share of the median: the least half spread

    @property
    def number(self) -> int:
        return self.experiment.number

    @property
    def median(self) -> float:
        return statistics.median(self.measurements)

    @property
    def spread(self) -> float:
        return max(self.measurements) - min(self.measurements)

    @property
    def half_spread(self) -> float:
        """Half the range, and at least the finalists' common noise: three measurements may agree
        by luck, and every configuration runs on the same engines and hosts."""
        return max(self.spread / 2, self.noise * abs(self.median))

    @property
    def plus_minus(self) -> str:
        """Half the spread, to the median's precision: "± 30" beside a median of 1,320."""
        magnitude = abs(self.median)
        if magnitude < 1:
            return f"± {self.half_spread:.2g}"
        decimals = 0 if magnitude >= 1000 else 1 if magnitude >= 100 else 2
        return f"± {self.half_spread:,.{decimals}f}"

    @property
    def finished(self) -> bool:
        """Every planned repeat has run (or stopped): only then is the configuration compared."""
        return not any(repeat.status in UNFINISHED for repeat in self.repeats)

    @property
    def measured_once(self) -> bool:
        return len(self.measurements) == 1

    @property
    def gain_text(self) -> str:
        """The gain in words: "+12 % over baseline", "−3 % under baseline"; empty without a baseline score."""
        if self.gain is None:
            return ""
        percent = round(self.gain * 100)
        if percent == 0:
            return "level with baseline"
        return f"+{percent} % over baseline" if percent > 0 else f"−{-percent} % under baseline"


@dataclass(frozen=True)
class Verdict:
    configurations: list[Configuration]  # the finalists ranked best first, then the others
    winner: Configuration | None  # None when tied, waiting for repeats, or nothing met the SLOs
    runner_up: Configuration | None
    tied: bool
    baseline: Experiment | None
    summary: str
    unit: str  # what a score counts: "output tokens/s", "ms", …
    waiting: int = 0  # repeats of the finalists not finished yet
    repeated: bool = False  # finalists were measured again: the ranking is by median
    compared: list[Configuration] = field(default_factory=list)  # the configurations the rule compared
    tied_with: list[Configuration] = field(default_factory=list)  # the finalists within noise of the leader

    @property
    def contender_numbers(self) -> list[int]:
        return [configuration.number for configuration in self.contenders]

    @property
    def contenders(self) -> list[Configuration]:
        """What the page shows as the result: the winner, or the leader and the finalists tied with it."""
        if self.tied and self.compared:
            return [self.compared[0], *self.tied_with]
        return [self.winner] if self.winner else []


def higher_is_better(task: Task) -> bool:
    return objective_maximized(task.objective)


def _ranked(task: Task, experiments: Sequence[Experiment]) -> list[Experiment]:
    """Search experiments meeting every SLO, best score first (the lower number on equal scores)."""
    sign = -1 if higher_is_better(task) else 1
    meeting = [e for e in experiments if e.role == ExperimentRole.SEARCH and e.meets_slo and e.score is not None]
    return sorted(meeting, key=lambda experiment: (sign * (experiment.score or 0.0), experiment.number))


def finalists(task: Task, experiments: Sequence[Experiment]) -> list[Experiment]:
    """The ``task.finalists`` best search experiments meeting every SLO: those measured again."""
    return _ranked(task, experiments)[: task.finalists]


def challengers(task: Task, experiments: Sequence[Experiment]) -> list[Experiment]:
    """Once the finalists' repeats are in, the search experiments measured once whose score is
    within the common noise of the leader's median (at most ``task.finalists``, best first): a
    single unlucky measurement kept them out, so they are measured again too. One such round: none
    once more configurations than ``task.finalists`` have repeats."""
    judged = verdict(task, experiments)
    if not judged.repeated or judged.waiting or not judged.compared or len(judged.compared) > task.finalists:
        return []
    leader, noise = judged.compared[0], judged.compared[0].noise
    return [
        configuration.experiment
        for configuration in judged.configurations
        if not configuration.repeats
        and abs(leader.median - configuration.median) <= leader.half_spread + SINGLE * noise * abs(configuration.median)
    ][: task.finalists]


def baseline_of(experiments: Sequence[Experiment]) -> Experiment | None:
    return next((experiment for experiment in experiments if experiment.role == ExperimentRole.BASELINE), None)


def gain(task: Task, value: float, baseline: float | None) -> float | None:
    """``value``'s improvement on ``baseline`` as a signed fraction, positive when better."""
    if baseline is None or baseline == 0:
        return None
    change = (value - baseline) / abs(baseline)
    return change if higher_is_better(task) else -change


def verdict(task: Task, experiments: Sequence[Experiment]) -> Verdict:
    """The run's result by the rule in this module's docstring."""
    baseline = baseline_of(experiments)
    base_score = baseline.score if baseline is not None and baseline.meets_slo else None
    repeats: dict[int, list[Experiment]] = {}
    for experiment in experiments:
        if experiment.role == ExperimentRole.REPEAT and experiment.repeat_of_id is not None:
            repeats.setdefault(experiment.repeat_of_id, []).append(experiment)
    configurations = []
    for experiment in _ranked(task, experiments):
        again = tuple(sorted(repeats.get(experiment.pk, []), key=lambda repeat: repeat.number))
        scores = (experiment.score or 0.0, *(r.score for r in again if r.meets_slo and r.score is not None))
        median = statistics.median(scores)
        configurations.append(Configuration(experiment, again, scores, gain(task, median, base_score)))
    sign = -1 if higher_is_better(task) else 1
    repeated = any(configuration.repeats for configuration in configurations)
    if repeated:
        noise = common_noise([configuration for configuration in configurations if configuration.repeats])
        configurations = [replace(configuration, noise=noise) for configuration in configurations]
        finals = sorted(
            (configuration for configuration in configurations if configuration.repeats),
            key=lambda configuration: (sign * configuration.median, configuration.number),
        )
        others = [configuration for configuration in configurations if not configuration.repeats]
        configurations = finals + others
    else:
        finals = configurations
    waiting = sum(1 for c in finals for repeat in c.repeats if repeat.status in UNFINISHED)
    leader = finals[0] if finals else None
    runner_up = finals[1] if len(finals) > 1 else None
    tied_with: list[Configuration] = []
    if repeated and leader and not waiting:
        tied_with = [other for other in finals[1:] if _within_noise(leader, other)]
    tied = bool(tied_with)
    winner = leader if leader and not waiting and not tied else None
    return Verdict(
        configurations=configurations,
        winner=winner,
        runner_up=runner_up,
        tied=tied,
        baseline=baseline,
        summary=_summary(task, leader, tied_with, runner_up, waiting=waiting, repeated=repeated),
        unit=unit(task),
        waiting=waiting,
        repeated=repeated,
        compared=finals,
        tied_with=tied_with,
    )


def _within_noise(leader: Configuration, other: Configuration) -> bool:
    return abs(leader.median - other.median) <= leader.half_spread + other.half_spread


def common_noise(configurations: Sequence[Configuration]) -> float:
    """The mean of the repeated configurations' half ranges, each a share of its median: the noise
    of one measurement here, from all finalists' measurements rather than three of one."""
    shares = [
        (max(c.measurements) - min(c.measurements)) / 2 / abs(c.median)
        for c in configurations
        if len(c.measurements) > 1 and c.median
    ]
    return statistics.fmean(shares) if shares else 0.0


def unit(task: Task) -> str:
    """What a score of the task's objective counts."""
    if task.objective == Objective.MAXIMIZE_GOODPUT:
        return "requests/s" if task.load_mode == "rate" else "concurrent requests"
    units: dict[str, str] = {
        Objective.MAXIMIZE_THROUGHPUT: "output tokens/s",
        Objective.MAXIMIZE_THROUGHPUT_PER_GPU: "output tokens/s per GPU",
        Objective.MINIMIZE_LATENCY: "s",
        Objective.MINIMIZE_TTFT: "ms",
        Objective.MINIMIZE_TPOT: "ms",
    }
    return units.get(task.objective, "")


def _summary(
    task: Task,
    leader: Configuration | None,
    tied_with: Sequence[Configuration],
    runner_up: Configuration | None,
    *,
    waiting: int,
    repeated: bool,
) -> str:
    if leader is None:
        return "No configuration has met every SLO yet."
    if waiting:
        repeats = f"{waiting} repeat{'s' if waiting != 1 else ''}"
        return f"Measuring the finalists again: {repeats} to go before a winner is declared."
    gain_part = f", {leader.gain_text}" if leader.gain_text else ""
    if not repeated:
        return f"Experiment {leader.number} is best, measured once: {figure(leader.median)} {unit(task)}{gain_part}."
    if tied_with:
        tied = [leader, *tied_with]
        return (
            f"Experiments {_listed([str(c.number) for c in tied])} are tied within noise: medians "
            f"{_listed([figure(c.median) for c in tied])} {unit(task)} are closer than their spreads "
            f"({_listed([c.plus_minus for c in tied])})."
        )
    count = len(leader.measurements)
    spread = f" {leader.plus_minus}" if leader.spread else ""
    return (
        f"Experiment {leader.number} wins: median {figure(leader.median)}{spread} {unit(task)} over "
        f"{count} measurement{'s' if count != 1 else ''}{gain_part}"
        + (f", ahead of experiment {runner_up.number} by more than the noise." if runner_up else ".")
    )


def _listed(words: Sequence[str]) -> str:
    """ "1 and 2", "1, 2 and 5"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
