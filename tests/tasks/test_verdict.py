"""The verdict: finalists, medians, spreads and gains over the baseline, and a winner declared only
when its lead is bigger than the noise."""

from __future__ import annotations

import csv
import io

import pytest
from django.template.loader import render_to_string

from tasks.models import Experiment, Task
from tasks.results import progress
from tasks.states import ExperimentRole, ExperimentStatus
from tasks.verdict import finalists, verdict
from tests.factories import make_task
from tests.html import Element, parse
from tests.tasks.runs import VIOLATION, make_experiment

pytestmark = pytest.mark.django_db


def trust_task(**overrides) -> Task:
    return make_task(**{"gpus": 2, "baseline": True, "finalists": 2, "repeats": 2, **overrides})


def search(task: Task, number: int, score: float | None, **fields) -> Experiment:
    return make_experiment(task, number, score=score, **fields)


def baseline(task: Task, score: float | None, **fields) -> Experiment:
    return make_experiment(task, 0, score=score, role=ExperimentRole.BASELINE, parameters={}, **fields)


def repeats(
    task: Task, of: Experiment, *scores: float | None, status: str = ExperimentStatus.SUCCEEDED, **fields
) -> None:
    start = max(task.experiments.values_list("number", flat=True)) + 1
    for number, score in enumerate(scores, start):
        make_experiment(
            task,
            number,
            status,
            score=score,
            role=ExperimentRole.REPEAT,
            repeat_of=of,
            parameters=of.parameters,
            **fields,
        )


def judged(task: Task):
    return verdict(task, list(task.experiments.order_by("number")))


def test_finalists_are_the_best_search_experiments_meeting_every_slo():
    task = trust_task(finalists=2)
    baseline(task, 900.0)  # better than all: not a search experiment
    search(task, 1, 300.0)
    search(task, 2, 500.0, slo_violation=VIOLATION)
    search(task, 3, 400.0)
    search(task, 4, 350.0)

    assert [experiment.number for experiment in finalists(task, list(task.experiments.all()))] == [3, 4]


def test_a_latency_objectives_finalists_are_the_lowest():
    task = trust_task(finalists=1, objective="minimize_ttft")
    search(task, 1, 80.0)
    search(task, 2, 60.0)

    assert [experiment.number for experiment in finalists(task, list(task.experiments.all()))] == [2]


def test_with_repeats_off_the_best_single_score_wins_measured_once():
    task = trust_task(finalists=0)
    baseline(task, 1000.0)
    search(task, 1, 1100.0)
    search(task, 2, 1200.0)
    search(task, 3, 1200.0)  # equal scores: the lower number

    result = judged(task)

    assert (result.winner.number, result.tied, result.repeated) == (2, False, False)
    assert [configuration.number for configuration in result.configurations] == [2, 3, 1]
    assert (result.winner.median, result.winner.spread) == (1200.0, 0.0)
    assert result.winner.gain == pytest.approx(0.2)
    assert result.summary == "Experiment 2 is best, measured once: 1,200 output tokens/s, +20 % over baseline."


def test_the_winner_beats_the_runner_up_by_more_than_their_spreads():
    task = trust_task()
    baseline(task, 1000.0)
    first, second = search(task, 1, 1300.0), search(task, 2, 1150.0)
    search(task, 3, 1100.0)  # not a finalist
    repeats(task, first, 1360.0, 1320.0)  # median 1,320, spread 60
    repeats(task, second, 1230.0, 1160.0)  # median 1,160, spread 80

    result = judged(task)

    # The common noise is the mean half range as a share: (30 / 1,320 + 40 / 1,160) / 2 = 2.9 %, so
    # the half spreads are 37.8 and 40 (its own is wider), and 1,320 − 1,160 = 160 > 77.8.
    assert (result.winner.number, result.runner_up.number, result.tied) == (1, 2, False)
    assert [configuration.number for configuration in result.configurations] == [1, 2, 3]
    noise = (30 / 1320 + 40 / 1160) / 2
    assert (result.winner.median, result.winner.spread) == (1320.0, 60.0)
    assert result.winner.half_spread == pytest.approx(noise * 1320)
    assert result.runner_up.half_spread == 40.0
    assert result.winner.measurements == (1300.0, 1360.0, 1320.0)
    assert result.winner.gain_text == "+32 % over baseline"
    assert result.contenders == [result.winner]
    assert result.summary == (
        "Experiment 1 wins: median 1,320 ± 38 output tokens/s over 3 measurements, +32 % over baseline, "
        "ahead of experiment 2 by more than the noise."
    )


def test_medians_closer_than_the_spreads_are_tied_within_noise():
    task = trust_task()
    baseline(task, 1000.0)
    first, second = search(task, 1, 1300.0), search(task, 2, 1150.0)
    repeats(task, first, 1160.0, 1200.0)  # median 1,200, spread 140: the first score was luck
    repeats(task, second, 1190.0, 1170.0)  # median 1,170, spread 40

    result = judged(task)

    # 1,200 − 1,170 = 30, not more than (140 + 40) / 2 = 90
    assert (result.winner, result.tied) == (None, True)
    assert [configuration.number for configuration in result.contenders] == [1, 2]
    assert result.summary.startswith("Experiments 1 and 2 are tied within noise")


def test_a_finalist_past_the_runner_up_still_within_noise_of_the_leader_ties_with_it():
    task = trust_task(finalists=3)
    first, second, third = search(task, 1, 1300.0), search(task, 2, 1100.0), search(task, 3, 1190.0)
    repeats(task, first, 1290.0, 1310.0)  # median 1,300, spread 20
    repeats(task, second, 1090.0, 1110.0)  # 1,100 ± 10: clearly behind
    repeats(task, third, 1090.0, 1290.0)  # 1,190 ± 100: it may be the best

    result = judged(task)

    # The common noise, (10 / 1,300 + 10 / 1,100 + 100 / 1,190) / 3 = 3.4 %, widens the first two to
    # ± 44 and ± 37: 1,300 − 1,100 = 200 > 81, but 1,300 − 1,190 = 110 ≤ 44 + 100.
    assert (result.winner, result.tied) == (None, True)
    assert [configuration.number for configuration in result.contenders] == [1, 3]
    assert result.summary.startswith("Experiments 1 and 3 are tied within noise: medians 1,300 and 1,190")
    assert result.runner_up.number == 3


def test_the_ranking_after_repeats_is_by_median_not_by_the_first_score():
    task = trust_task()
    first, second = search(task, 1, 1300.0), search(task, 2, 1250.0)
    repeats(task, first, 1000.0, 1010.0)  # median 1,010
    repeats(task, second, 1240.0, 1245.0)  # median 1,245

    result = judged(task)

    assert [configuration.number for configuration in result.compared] == [2, 1]
    assert result.runner_up.number == 1
    assert result.compared[0].gain is None  # no baseline


def test_no_winner_is_declared_while_a_finalists_repeats_run():
    task = trust_task()
    first, second = search(task, 1, 1300.0), search(task, 2, 1150.0)
    repeats(task, first, 1310.0, 1305.0)
    repeats(task, second, None, status=ExperimentStatus.BENCHMARKING)
    repeats(task, second, None, status=ExperimentStatus.PENDING)

    result = judged(task)

    assert (result.winner, result.tied, result.waiting) == (None, False, 2)
    assert result.summary == "Measuring the finalists again: 2 repeats to go before a winner is declared."


def test_a_repeat_that_failed_or_missed_an_slo_adds_no_measurement():
    task = trust_task(finalists=1)
    first = search(task, 1, 1300.0)
    repeats(task, first, 1280.0)
    repeats(task, first, None, status=ExperimentStatus.FAILED)
    repeats(task, first, 1500.0, slo_violation=VIOLATION)

    result = judged(task)

    assert result.winner.measurements == (1300.0, 1280.0)
    assert result.winner.median == 1290.0


def test_a_latency_gain_is_positive_when_lower():
    task = trust_task(finalists=0, objective="minimize_ttft")
    baseline(task, 100.0)
    search(task, 1, 90.0)
    search(task, 2, 120.0)

    result = judged(task)

    assert result.winner.number == 1
    assert result.winner.gain_text == "+10 % over baseline"
    assert result.configurations[1].gain_text == "−20 % under baseline"


def test_a_baseline_missing_an_slo_gives_no_gain():
    task = trust_task(finalists=0)
    baseline(task, None, slo_violation=VIOLATION)
    search(task, 1, 900.0)

    result = judged(task)

    assert result.baseline.number == 0
    assert (result.winner.gain, result.winner.gain_text) == (None, "")
    assert result.summary == "Experiment 1 is best, measured once: 900.0 output tokens/s."


def test_nothing_meeting_the_slos_declares_nothing():
    task = trust_task()
    search(task, 1, None, slo_violation=VIOLATION)
    make_experiment(task, 2, ExperimentStatus.FAILED, error="engine exited")

    result = judged(task)

    assert (result.winner, result.configurations, result.contenders) == (None, [], [])
    assert result.summary == "No configuration has met every SLO yet."


# Where the verdict is read: the results fragment, the API's results and the downloads


def results_fragment(task: Task, rf, user) -> Element:
    experiments = list(task.experiments.order_by("number"))
    judged = verdict(task, experiments)
    request = rf.get(f"/tasks/{task.pk}/results/")
    request.user = user
    best = judged.winner.experiment if judged.winner else None  # as the run panel does
    context = {"task": task, "verdict": judged, "best": best, "progress": progress(task, experiments), "plot": ""}
    return parse(render_to_string("tasks/_results.html", context, request=request)).by_id("results")


def tied_run() -> Task:
    task = trust_task()
    baseline(task, 1000.0, throughput=1000.0, latency=2.5)
    first, second = search(task, 1, 1300.0), search(task, 2, 1150.0)
    repeats(task, first, 1160.0, 1200.0)
    repeats(task, second, 1190.0, 1170.0)
    return task


def test_the_results_say_tied_within_noise_and_show_both_configurations(rf, user):
    task = tied_run()

    results = results_fragment(task, rf, user)

    card = results.by_id("verdict")
    assert card.find("h4").text == "Tied within noise"
    assert [row.attrs["id"] for row in card.find("tbody").find_all("tr")] == [
        "configuration-1",
        "configuration-2",
        "configuration-0",
    ]
    first = card.by_id("configuration-1")
    assert "Tied" in first.text
    assert "± 70" in first.text
    assert "+20 % over baseline" in first.text
    assert "+17 % over baseline" in card.by_id("configuration-2").text
    assert "1,000 output tokens/s, latency p50 2.50 s" in card.by_id("configuration-0").text
    assert card.by_id("tied-command-1") is not None
    assert card.by_id("tied-command-2") is not None
    assert results.find("div", class_="best-config") is None  # no winner, so no best configuration


def test_the_results_name_the_winner_with_its_median_spread_and_gain(rf, user):
    task = trust_task()
    baseline(task, 1000.0)
    first, second = search(task, 1, 1300.0), search(task, 2, 1150.0)
    repeats(task, first, 1360.0, 1320.0)
    repeats(task, second, 1230.0, 1160.0)

    results = results_fragment(task, rf, user)

    card = results.by_id("verdict")
    assert card.find("h4").text == "Winner: experiment 1"
    assert "Winner" in card.by_id("configuration-1").text
    assert "Winner" not in card.by_id("configuration-2").text
    best = results.find("div", class_="best-config")
    assert best.find("h4").text == "Best configuration: experiment 1"
    assert best.find("p", class_="gain").text == "+32 % over baseline (median of 3 measurements)."


def test_the_best_badge_follows_the_verdict(signed_in, finished):
    tied = tied_run()

    def badged(task: Task) -> list[str]:
        run = parse(signed_in.get(task.get_absolute_url()).content.decode()).by_id("run")
        rows = run.find_all("tr")
        return [
            row.attrs["id"]
            for row in rows
            if row.attrs.get("id", "").startswith("experiment-") and row.find("span", class_="best")
        ]

    assert badged(finished) == ["experiment-1"]
    assert badged(tied) == []  # tied within noise: no experiment is the best


def test_the_api_results_carry_the_verdict_and_the_baseline(api, user):
    task = tied_run()
    Task.objects.filter(pk=task.pk).update(created_by=user)

    body = api.get(f"/api/tasks/{task.pk}/results/").json()

    assert body["best"] is None
    assert body["baseline"]["number"] == 0
    assert body["baseline"]["role"] == "baseline"
    verdict_part = body["verdict"]
    assert {key: verdict_part[key] for key in ("winner", "runner_up", "tied", "repeated", "waiting_repeats")} == {
        "winner": None,
        "runner_up": 2,
        "tied": True,
        "repeated": True,
        "waiting_repeats": 0,
    }
    assert verdict_part["unit"] == "output tokens/s"
    assert verdict_part["configurations"][0] == {
        "number": 1,
        "repeats": [3, 4],
        "measurements": [1300.0, 1160.0, 1200.0],
        "median": 1200.0,
        "spread": 140.0,
        "gain_over_baseline": pytest.approx(0.2),
        "finished": True,
    }
    assert [(record["number"], record["role"], record["repeat_of"]) for record in body["experiments"]] == [
        (0, "baseline", None),
        (1, "search", None),
        (2, "search", None),
        (3, "repeat", 1),
        (4, "repeat", 1),
        (5, "repeat", 2),
        (6, "repeat", 2),
    ]


def test_the_csv_gives_each_configuration_its_median_spread_and_gain(signed_in, user):
    task = tied_run()

    response = signed_in.get(f"/tasks/{task.pk}/results.csv")

    rows = {row["number"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert {key: rows["1"][key] for key in ("role", "median", "spread", "gain_over_baseline")} == {
        "role": "search",
        "median": "1200",
        "spread": "140",
        "gain_over_baseline": "0.2",
    }
    assert (rows["3"]["role"], rows["3"]["repeat_of"], rows["3"]["median"]) == ("repeat", "1", "")
