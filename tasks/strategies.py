"""Which combinations a task runs, and in what order: grid, random and bayesian search.

Grid and random searches are planned whole when the task starts (a row per experiment, claimed by
workers one at a time). Bayesian search asks for one combination at a time, from a study rebuilt
from the experiments stored so far: nothing lives in a worker's memory, so a resumed or
redistributed search continues from exactly its history, and a combination is never run twice.
Only search experiments are trials: the baseline and the finalists' repeats are not part of it.
Experiments still pending or running are trials in state RUNNING, which TPE's constant liar
treats as bad results, so experiments asked for in parallel spread out instead of crowding one spot.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from engines.checks import same_flag
from engines.plan import rules_for, skip_reason
from tasks.pruning import oom_skip_reason, out_of_memory
from tasks.scoring import higher_is_better
from tasks.states import RUNNING_EXPERIMENT, ExperimentRole, ExperimentStatus

if TYPE_CHECKING:
    import optuna

    from tasks.models import Experiment, Task

BAYESIAN_ATTEMPTS = 50  # asks for an untried runnable combination before falling back to random


def combination_key(combination: Mapping[str, Any]) -> str:
    """One string per combination, for telling tried from untried (1 and 1.0 and true stay apart)."""
    return json.dumps(list(combination.items()), sort_keys=False)


def planned_combinations(task: Task, seed: int) -> list[dict[str, Any]]:
    """The experiments a grid or random search runs, in order."""
    cap = task.max_experiments
    if task.optimization_strategy == "grid":
        return list(itertools.islice(task.runnable_plan.combinations(), cap))
    return sample_without_replacement(task, seed, cap or task.plan_summary.runnable)


def sample_without_replacement(task: Task, seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` distinct runnable combinations, the same ones for the same seed: positions drawn in
    the plan and looked up there, so a 10^12 grid costs what a small one does."""
    plan = task.runnable_plan
    positions = random.Random(seed).sample(range(plan.runnable), min(count, plan.runnable))
    return [plan.at(position) for position in positions]


def _aliases(task: Task) -> dict[str, str]:
    return same_flag(list(task.parameters), task.catalogue)


# Bayesian search


def search_experiments(experiments: Sequence[Experiment]) -> list[Experiment]:
    """The experiments of the search itself: not the baseline, not the finalists' repeats."""
    return [experiment for experiment in experiments if experiment.role == ExperimentRole.SEARCH]


def build_study(task: Task, experiments: Sequence[Experiment]) -> optuna.Study:
    """An Optuna study holding exactly the stored search experiments: each finished one a trial with
    its parameters and score (a failed one, or one missing an SLO, as a failed trial), each pending
    or running one a running trial."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction: Literal["maximize", "minimize"] = "maximize" if higher_is_better(task.objective) else "minimize"
    # Optuna's TPESampler docs, constant_liar: "If True, penalize running trials to avoid suggesting
    # parameter configurations nearby." Stated here although 5.0 defaults to it: parallel asks rely on it.
    sampler = optuna.samplers.TPESampler(seed=_sampler_seed(task, experiments), constant_liar=True)
    study = optuna.create_study(direction=direction, sampler=sampler)
    distributions = _distributions(task.parameters)
    for experiment in search_experiments(experiments):
        if experiment.status in (ExperimentStatus.PENDING, *RUNNING_EXPERIMENT):
            state = optuna.trial.TrialState.RUNNING
        elif experiment.status == ExperimentStatus.SUCCEEDED and experiment.meets_slo:
            state = optuna.trial.TrialState.COMPLETE
        elif experiment.status in (ExperimentStatus.SUCCEEDED, ExperimentStatus.FAILED):
            state = optuna.trial.TrialState.FAIL
        else:
            continue  # cancelled or skipped: never measured, runs again on resume or never
        params = _indexes(task.parameters, experiment.parameters)
        if params is None:
            continue  # the grid was edited since: this combination is no longer in it
        value = experiment.score if state == optuna.trial.TrialState.COMPLETE else None
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value, state=state))
    return study


def next_bayesian(task: Task, experiments: Sequence[Experiment]) -> dict[str, Any] | None:
    """The next combination to try: TPE's suggestion given the history, never one tried before
    (pending, running or finished), always runnable, never one an out-of-memory failure rules out
    (``tasks.pruning``); None once the search has run ``task.experiments_planned`` experiments or
    every runnable combination was tried. The baseline and repeats do not count."""
    import optuna

    grid, rules, aliases = task.parameters, rules_for(task.runtime, task.gpus or 1, task.parameters), _aliases(task)
    searched = search_experiments(experiments)
    tried = {combination_key(experiment.parameters) for experiment in searched}
    if len(searched) >= task.experiments_planned or len(tried) >= task.plan_summary.runnable:
        return None
    ooms = out_of_memory(task, experiments)

    def untried(combination: dict[str, Any]) -> bool:
        return combination_key(combination) not in tried and oom_skip_reason(task, combination, ooms) is None

    study = build_study(task, experiments)
    distributions = _distributions(grid)
    for _ in range(BAYESIAN_ATTEMPTS):
        trial = study.ask(distributions)
        combination = {flag: grid[flag][index] for flag, index in trial.params.items()}
        # Reported back so the sampler moves on; the study is rebuilt from the database next time anyway.
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        if untried(combination) and skip_reason(combination, rules, aliases) is None:
            return combination
    # TPE keeps proposing tried combinations (a small grid mostly explored): take an untried one at random.
    # A sample larger than what is ruled out holds an untried one; it doubles while out-of-memory
    # failures rule out more, so drawing is bounded by the history, not by the grid (drawing every
    # runnable one of a 10^12 grid would never end).
    rng = random.Random(_sampler_seed(task, experiments))
    count = len(tried) + 1
    while True:
        sample = sample_without_replacement(task, rng.randrange(2**32), count)
        found = next((combination for combination in sample if untried(combination)), None)
        if found is not None or count >= task.plan_summary.runnable:
            return found
        count *= 2


def _sampler_seed(task: Task, experiments: Sequence[Experiment]) -> int:
    # Seeded by the task's seed and the search's length: an interrupted and resumed search asks
    # the same questions as one that never stopped.
    return ((task.seed or 0) + 7919 * len(search_experiments(experiments))) % 2**32


def _distributions(grid: Mapping[str, Sequence[Any]]) -> dict[str, optuna.distributions.BaseDistribution]:
    import optuna

    # Choices are the values' positions: values may be any JSON scalar, Optuna's choices may not.
    return {
        flag: optuna.distributions.CategoricalDistribution(tuple(range(len(values)))) for flag, values in grid.items()
    }


def _indexes(grid: Mapping[str, Sequence[Any]], combination: Mapping[str, Any]) -> dict[str, int] | None:
    if list(combination) != list(grid):
        return None
    params = {}
    for flag, value in combination.items():
        spelled = json.dumps(value)
        position = next((i for i, candidate in enumerate(grid[flag]) if json.dumps(candidate) == spelled), None)
        if position is None:
            return None
        params[flag] = position
    return params
