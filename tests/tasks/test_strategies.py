"""Which combinations a task runs: grid order and cap, seeded random samples (on huge grids too),
and bayesian search that never repeats a combination and rebuilds its study from stored experiments."""

from __future__ import annotations

import time

import optuna
import pytest

from engines.plan import rules_for, skip_reason
from tasks.models import Experiment, Task
from tasks.states import ExperimentRole, ExperimentStatus
from tasks.strategies import (
    _distributions,
    build_study,
    combination_key,
    next_bayesian,
    planned_combinations,
    sample_without_replacement,
)
from tests.factories import make_task

pytestmark = pytest.mark.django_db

# 3 × 3 × 2 = 18 combinations; on 2 GPUs, tp-size 4 cannot run: 12 runnable.
GRID = {"tp-size": [1, 2, 4], "chunked-prefill-size": [1024, 2048, 4096], "schedule-policy": ["fcfs", "lpm"]}
RUNNABLE = 12


def grid_task(**overrides) -> Task:
    return make_task(**{"parameters": GRID, "gpus": 2, **overrides})


def runnable_here(task: Task, combination: dict) -> bool:
    return skip_reason(combination, rules_for(task.runtime, task.gpus)) is None


def keys(combinations) -> list[str]:
    return [combination_key(combination) for combination in combinations]


# Grid


def test_a_grid_search_runs_the_runnable_combinations_in_plan_order():
    task = grid_task()

    planned = planned_combinations(task, seed=0)

    assert len(planned) == RUNNABLE
    assert planned[:4] == [
        {"tp-size": 1, "chunked-prefill-size": 1024, "schedule-policy": "fcfs"},
        {"tp-size": 1, "chunked-prefill-size": 1024, "schedule-policy": "lpm"},
        {"tp-size": 1, "chunked-prefill-size": 2048, "schedule-policy": "fcfs"},
        {"tp-size": 1, "chunked-prefill-size": 2048, "schedule-policy": "lpm"},
    ]
    assert planned[-1] == {"tp-size": 2, "chunked-prefill-size": 4096, "schedule-policy": "lpm"}
    assert all(combination["tp-size"] != 4 for combination in planned)


def test_a_capped_grid_search_runs_the_first_combinations_of_the_plan():
    task = grid_task(max_experiments=5)

    assert planned_combinations(task, seed=0) == planned_combinations(grid_task(), seed=0)[:5]


def test_a_grid_search_ignores_the_seed():
    task = grid_task()

    assert planned_combinations(task, seed=1) == planned_combinations(task, seed=2)


# Random


def random_task(cap: int, **overrides) -> Task:
    return grid_task(optimization_strategy="random", max_experiments=cap, **overrides)


def test_a_random_sample_is_the_same_for_the_same_seed():
    task = random_task(6)

    assert planned_combinations(task, seed=42) == planned_combinations(task, seed=42)


def test_a_random_sample_differs_for_another_seed():
    task = random_task(6)

    # 12 choose 6 = 924 subsets, ordered too: two seeds giving the same sample is a one-in-millions accident.
    assert planned_combinations(task, seed=1) != planned_combinations(task, seed=2)


@pytest.mark.parametrize(("cap", "count"), [(1, 1), (6, 6), (12, 12), (50, 12)], ids=["one", "half", "all", "over"])
def test_a_random_sample_has_no_repeats_only_runnable_combinations_and_the_capped_count(cap, count):
    task = random_task(cap)

    for seed in range(5):
        planned = planned_combinations(task, seed=seed)
        assert len(planned) == count
        assert len(set(keys(planned))) == count
        assert all(runnable_here(task, combination) for combination in planned)
        assert all(list(combination) == list(GRID) for combination in planned)


def test_a_random_sample_of_a_huge_grid_is_drawn_without_listing_the_grid():
    # 10^12 combinations; on 2 GPUs only tp-size 1 and 2 of its ten values run: 2 × 10^11 runnable.
    grid = {"tp-size": [1, 2, 3, 4, 5, 6, 7, 8, 16, 32]}
    grid |= {f"flag-{letter}": list(range(10)) for letter in "abcdefghijk"}
    task = random_task(200, parameters=grid)
    assert task.plan_summary.runnable == 2 * 10**11

    began = time.perf_counter()
    planned = planned_combinations(task, seed=3)
    elapsed = time.perf_counter() - began

    assert elapsed < 2, f"sampling took {elapsed:.1f} s: was the grid listed?"
    assert len(planned) == 200
    assert len(set(keys(planned))) == 200
    assert {combination["tp-size"] for combination in planned} == {1, 2}
    assert all(list(combination) == list(grid) for combination in planned)
    assert planned == planned_combinations(task, seed=3)
    assert planned != planned_combinations(task, seed=4)


def test_sample_without_replacement_never_gives_more_than_the_runnable_combinations():
    task = random_task(3)

    assert len(sample_without_replacement(task, seed=0, count=100)) == RUNNABLE


# Bayesian


def bayesian_task(**overrides) -> Task:
    return grid_task(**{"optimization_strategy": "bayesian", "max_experiments": RUNNABLE, "seed": 11, **overrides})


def finished(task: Task, number: int, combination: dict, *, status: str = "succeeded", **fields) -> Experiment:
    """An experiment as a worker leaves it (unsaved: the strategies only read the list they are given)."""
    fields.setdefault("score", fake_score(combination) if status == ExperimentStatus.SUCCEEDED else None)
    return Experiment(task=task, number=number, parameters=combination, status=status, **fields)


def fake_score(combination: dict) -> float:
    return combination.get("tp-size", 0) * 1000 + combination.get("chunked-prefill-size", 0) / 10


def test_bayesian_search_tries_every_runnable_combination_once_then_says_none():
    task = bayesian_task()
    history: list[Experiment] = []

    # Twelve rounds: TPE's random start-up trials, then its model, then the fallback for a nearly tried grid.
    while (combination := next_bayesian(task, history)) is not None:
        assert combination_key(combination) not in keys(experiment.parameters for experiment in history)
        assert runnable_here(task, combination), combination
        assert list(combination) == list(GRID)
        # Some fail and some miss an SLO: they count as tried all the same.
        status = ExperimentStatus.FAILED if len(history) % 4 == 3 else ExperimentStatus.SUCCEEDED
        history.append(finished(task, len(history) + 1, combination, status=status))
        assert len(history) <= RUNNABLE

    assert len(history) == RUNNABLE
    assert sorted(keys(experiment.parameters for experiment in history)) == sorted(
        keys(planned_combinations(grid_task(), seed=0))
    )


def test_bayesian_search_never_suggests_a_combination_still_running():
    task = bayesian_task()
    first = next_bayesian(task, [])
    running = Experiment(task=task, number=1, parameters=first, status=ExperimentStatus.BENCHMARKING)

    for _ in range(3):
        assert next_bayesian(task, [running]) != first


def test_bayesian_search_asks_the_same_question_for_the_same_history():
    task = bayesian_task()
    history = []
    for number in range(1, 12):
        combination = next_bayesian(task, history)
        assert next_bayesian(task, list(history)) == combination
        history.append(finished(task, number, combination))


def test_bayesian_search_with_another_seed_asks_other_questions():
    def first_five(task: Task) -> list[dict]:
        history: list[Experiment] = []
        for number in range(1, 6):
            history.append(finished(task, number, next_bayesian(task, history)))
        return [experiment.parameters for experiment in history]

    assert first_five(bayesian_task()) != first_five(bayesian_task(seed=12))


def test_bayesian_search_has_nothing_to_suggest_when_nothing_is_runnable():
    task = bayesian_task(parameters={"tp-size": [4, 8]})

    assert next_bayesian(task, []) is None


def test_the_study_holds_the_search_with_pending_and_running_experiments_as_running_trials():
    task = bayesian_task()
    combinations = planned_combinations(grid_task(), seed=0)
    experiments = [
        finished(task, 1, combinations[0], score=150.0),
        finished(task, 2, combinations[1], status=ExperimentStatus.FAILED, error="the engine exited"),
        finished(task, 3, combinations[2], score=None, slo_violation="violates SLO (p90 TTFT 412 ms > 300 ms)"),
        finished(task, 4, combinations[3], score=90.5),
        Experiment(task=task, number=5, parameters=combinations[4], status=ExperimentStatus.PENDING),
        Experiment(task=task, number=6, parameters=combinations[5], status=ExperimentStatus.BENCHMARKING),
        Experiment(task=task, number=7, parameters=combinations[6], status=ExperimentStatus.CANCELLED),
    ]

    study = build_study(task, experiments)

    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    trials = study.trials
    decoded = [{flag: GRID[flag][index] for flag, index in trial.params.items()} for trial in trials]
    assert decoded == combinations[:6]  # the cancelled one was never measured
    assert [trial.state for trial in trials] == [
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.RUNNING,
        optuna.trial.TrialState.RUNNING,
    ]
    assert [trial.value for trial in trials] == [150.0, None, None, 90.5, None, None]
    assert study.best_value == 150.0


def test_the_study_minimises_a_latency_objective():
    task = bayesian_task(objective="minimize_latency")
    combination = planned_combinations(grid_task(), seed=0)[0]

    study = build_study(task, [finished(task, 1, combination, score=0.25)])

    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert study.best_value == 0.25


def test_the_study_stores_value_positions_so_any_json_value_round_trips():
    grid = {"mem-fraction-static": [0.8, 0.85], "disable-radix-cache": [False, True], "tp-size": [1, 2]}
    task = bayesian_task(parameters=grid)
    tried = {"mem-fraction-static": 0.85, "disable-radix-cache": True, "tp-size": 1}

    study = build_study(task, [finished(task, 1, tried)])

    assert study.trials[0].params == {"mem-fraction-static": 1, "disable-radix-cache": 1, "tp-size": 0}


def test_the_study_leaves_out_an_experiment_no_longer_in_the_edited_grid():
    task = bayesian_task()
    gone = {"tp-size": 1, "chunked-prefill-size": 8192, "schedule-policy": "fcfs"}
    kept = {"tp-size": 2, "chunked-prefill-size": 2048, "schedule-policy": "lpm"}

    study = build_study(task, [finished(task, 1, gone), finished(task, 2, kept)])

    assert [trial.params for trial in study.trials] == [{"tp-size": 1, "chunked-prefill-size": 1, "schedule-policy": 1}]


def test_the_baseline_and_repeats_are_not_trials_and_do_not_count_against_the_planned_experiments():
    task = bayesian_task(max_experiments=2)
    combinations = planned_combinations(grid_task(), seed=0)
    first = finished(task, 1, combinations[0], score=150.0)
    history = [
        finished(task, 0, {}, score=100.0, role=ExperimentRole.BASELINE),
        first,
        finished(task, 2, combinations[0], score=155.0, role=ExperimentRole.REPEAT, repeat_of=first),
    ]

    assert [trial.value for trial in build_study(task, history).trials] == [150.0]
    second = next_bayesian(task, history)
    assert second is not None
    assert next_bayesian(task, [*history, finished(task, 3, second)]) is None


# Parallel asks: 14 combinations scored by a smooth function, the 3 best untried ones running.
WIDE = {"tp-size": [1, 2], "chunked-prefill-size": [512, 1024, 2048, 4096, 8192], "schedule-policy": ["fcfs", "lpm"]}
WIDE_ORDER = [
    {"tp-size": tp, "chunked-prefill-size": size, "schedule-policy": policy}
    for tp in WIDE["tp-size"]
    for size in WIDE["chunked-prefill-size"]
    for policy in WIDE["schedule-policy"]
]


def wide_run(task: Task, *, running: int) -> tuple[list[Experiment], list[dict]]:
    """Past TPE's 10 random start-up trials: every other combination scored, the best untried ones running."""

    def score(combination: dict) -> float:
        return fake_score(combination) + (50 if combination["schedule-policy"] == "lpm" else 0)

    done = [combination for position, combination in enumerate(WIDE_ORDER) if position % 2 == 0 or position < 6]
    untried = sorted((c for c in WIDE_ORDER if c not in done), key=score, reverse=True)[:running]
    history = [finished(task, number, c, score=score(c)) for number, c in enumerate(done, 1)]
    start = len(history) + 1
    history += [
        Experiment(task=task, number=number, parameters=c, status=ExperimentStatus.BENCHMARKING)
        for number, c in enumerate(untried, start)
    ]
    return history, untried


def asks(study: optuna.Study, count: int) -> list[dict]:
    suggested = []
    for _ in range(count):
        trial = study.ask(_distributions(WIDE))
        suggested.append({flag: WIDE[flag][index] for flag, index in trial.params.items()})
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return suggested


def test_tpe_is_told_of_running_experiments_and_asks_away_from_them():
    task = bayesian_task(parameters=WIDE, max_experiments=20)
    history, running = wide_run(task, running=3)

    told = asks(build_study(task, history), 5)
    # The same history to a sampler without the constant liar: running trials are invisible to it,
    # and it asks for the very combinations already running.
    blind = build_study(task, history)
    blind.sampler = optuna.samplers.TPESampler(seed=5, constant_liar=False)

    assert not set(keys(told)) & set(keys(running))
    assert set(keys(asks(blind, 5))) & set(keys(running))


def test_three_asks_beside_three_running_experiments_all_differ():
    task = bayesian_task(parameters=WIDE, max_experiments=20)
    history, running = wide_run(task, running=3)

    for _ in range(3):
        combination = next_bayesian(task, history)
        assert combination is not None
        history.append(
            Experiment(task=task, number=len(history) + 1, parameters=combination, status=ExperimentStatus.STARTING)
        )

    in_flight = [experiment.parameters for experiment in history[-6:]]
    assert in_flight[:3] == running
    assert len(set(keys(in_flight))) == 6


# Out of memory


def test_bayesian_search_never_proposes_a_combination_an_out_of_memory_failure_rules_out():
    grid = {"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.85, 0.9]}
    task = bayesian_task(parameters=grid, max_experiments=6)
    crashed = {"tp-size": 1, "mem-fraction-static": 0.85}
    history = [
        finished(task, 1, crashed, status=ExperimentStatus.FAILED, error="torch.OutOfMemoryError: CUDA out of memory")
    ]

    while (combination := next_bayesian(task, history)) is not None:
        history.append(finished(task, len(history) + 1, combination, score=100.0))

    assert sorted(keys(experiment.parameters for experiment in history[1:])) == sorted(
        keys(
            [{"tp-size": 1, "mem-fraction-static": 0.8}]
            + [{"tp-size": 2, "mem-fraction-static": m} for m in grid["mem-fraction-static"]]
        )
    )


def test_bayesian_search_tries_a_higher_memory_fraction_when_told_not_to_learn_from_failures():
    grid = {"tp-size": [1], "mem-fraction-static": [0.8, 0.9]}
    task = bayesian_task(parameters=grid, max_experiments=2, skip_after_oom=False)
    crashed = finished(
        task, 1, {"tp-size": 1, "mem-fraction-static": 0.8}, status=ExperimentStatus.FAILED, error="CUDA out of memory"
    )

    assert next_bayesian(task, [crashed]) == {"tp-size": 1, "mem-fraction-static": 0.9}
