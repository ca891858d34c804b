"""A run's baseline and its finalists' repeats, as the lifecycle plans them (in-process; the stand-in
engine runs them for real in tests/tasks/test_packing.py)."""

from __future__ import annotations

import pytest

from tasks import lifecycle
from tasks.models import Experiment
from tasks.states import ExperimentRole, ExperimentStatus, TaskStatus
from tests.factories import make_task

pytestmark = pytest.mark.django_db

GRID = {"tp-size": [1], "chunked-prefill-size": [512, 1024, 2048, 4096, 8192]}


def finish(task, scores: dict[int, float | None]) -> None:
    """Every claimed experiment ends with the score its number maps to (None: failed)."""
    while (experiment := lifecycle.claim_next(task.pk)) is not None:
        score = scores.get(experiment.number)
        Experiment.objects.filter(pk=experiment.pk).update(
            status=ExperimentStatus.SUCCEEDED if score is not None else ExperimentStatus.FAILED, score=score
        )


def test_the_engines_defaults_run_first_as_experiment_zero():
    task = make_task(parameters=GRID, baseline=True)

    lifecycle.start(task, enqueue=False)

    baseline = task.experiments.get(number=0)
    assert (baseline.role, baseline.parameters, baseline.gpus) == (ExperimentRole.BASELINE, {}, 1)
    assert baseline.deploy_command == f"sglang serve --model-path {task.model} --host 127.0.0.1 --port 30000"
    assert lifecycle.claim_next(task.pk).number == 0
    assert task.experiments.filter(role=ExperimentRole.SEARCH).count() == 5


def test_without_a_baseline_the_search_starts_at_one():
    task = make_task(parameters=GRID, baseline=False)

    lifecycle.start(task, enqueue=False)

    assert min(task.experiments.values_list("number", flat=True)) == 1


def test_when_the_search_ends_the_best_finalists_are_measured_again_then_the_task_completes():
    task = make_task(parameters=GRID, baseline=True, finalists=2, repeats=3)
    lifecycle.start(task, enqueue=False)

    finish(task, {0: 50.0, 1: 100.0, 2: 300.0, 3: 200.0, 4: None, 5: 250.0})
    assert not lifecycle.finish_if_done(task.pk)  # repeats were planned

    repeats = list(task.experiments.filter(role=ExperimentRole.REPEAT).order_by("number"))
    assert [(r.number, r.repeat_of.number) for r in repeats] == [(6, 2), (7, 2), (8, 2), (9, 5), (10, 5), (11, 5)]
    assert all(r.parameters == r.repeat_of.parameters and r.status == ExperimentStatus.PENDING for r in repeats)
    finish(task, {6: 305.0, 7: 295.0, 8: 300.0, 9: 245.0, 10: 255.0, 11: 250.0})  # clear of the rest
    assert lifecycle.finish_if_done(task.pk)
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.experiments.filter(role=ExperimentRole.REPEAT).count() == 6  # once per run


def test_a_configuration_measured_once_within_noise_of_the_leader_is_measured_again_too():
    task = make_task(parameters=GRID, finalists=1, repeats=2)
    lifecycle.start(task, enqueue=False)
    finish(task, {1: 300.0, 2: 290.0, 3: 100.0, 4: 280.0, 5: None})
    assert not lifecycle.finish_if_done(task.pk)
    finish(task, {6: 270.0, 7: 330.0})  # the finalist's median 300 ± 30: a noise of 10 %

    assert not lifecycle.finish_if_done(task.pk)

    # 290 and 280, measured once, may be the best within that noise (100 may not); as many as there
    # are finalists are measured again, the best first.
    challengers = task.experiments.filter(role=ExperimentRole.REPEAT, status=ExperimentStatus.PENDING)
    assert [(r.number, r.repeat_of.number) for r in challengers.order_by("number")] == [(8, 2), (9, 2)]
    finish(task, {8: 285.0, 9: 295.0})
    assert lifecycle.finish_if_done(task.pk)  # one round of challengers: then the verdict


def test_with_repeats_off_the_task_completes_when_the_search_ends():
    task = make_task(parameters=GRID, finalists=0)
    lifecycle.start(task, enqueue=False)

    finish(task, {number: float(number) for number in range(1, 6)})

    assert lifecycle.finish_if_done(task.pk)
    assert not task.experiments.filter(role=ExperimentRole.REPEAT).exists()


def test_a_search_with_no_success_has_no_finalists_and_fails():
    task = make_task(parameters=GRID, finalists=3)
    lifecycle.start(task, enqueue=False)

    finish(task, {})

    assert lifecycle.finish_if_done(task.pk)
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED


def test_a_restart_runs_the_baseline_and_the_repeats_again():
    task = make_task(parameters=GRID, baseline=True, finalists=1, repeats=1)
    lifecycle.start(task, enqueue=False)
    finish(task, {number: float(number) for number in range(6)})
    lifecycle.finish_if_done(task.pk)
    finish(task, {6: 5.0})
    lifecycle.finish_if_done(task.pk)

    lifecycle.restart(task, enqueue=False)

    assert sorted(task.experiments.values_list("number", "role")) == [
        (0, "baseline"),
        *((number, "search") for number in range(1, 6)),
    ]
