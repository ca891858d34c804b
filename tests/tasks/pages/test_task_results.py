"""The experiments table and its sorting; the results page (best configuration, plot, downloads)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tasks.models import Experiment, Task
from tasks.states import ExperimentStatus, Objective, TaskStatus
from tests.tasks.runs import (
    HTMX,
    PLAN_ORDER,
    VIOLATION,
    in_status,
    make_experiment,
    page,
    progress_url,
    row_numbers,
)

pytestmark = pytest.mark.django_db


# The experiments table and its sorting


@pytest.mark.parametrize(
    ("objective", "sort", "order"),
    [
        (Objective.MAXIMIZE_THROUGHPUT, "number", [1, 2, 3, 4]),
        (Objective.MAXIMIZE_THROUGHPUT, "score", [1, 4, 2, 3]),
        (Objective.MINIMIZE_LATENCY, "score", [4, 1, 2, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "throughput", [2, 1, 4, 3]),
        (Objective.MINIMIZE_LATENCY, "latency", [4, 1, 2, 3]),
        (Objective.MAXIMIZE_THROUGHPUT, "bogus", [1, 2, 3, 4]),
    ],
    ids=["number", "score-highest-first", "score-lowest-latency-first", "throughput", "latency", "unknown-key"],
)
def test_sorting_puts_the_best_first_and_experiments_without_a_value_last(signed_in, finished, objective, sort, order):
    Task.objects.filter(pk=finished.pk).update(objective=objective)
    if objective == Objective.MINIMIZE_LATENCY:
        for experiment in finished.experiments.exclude(latency=None).exclude(slo_violation__gt=""):
            Experiment.objects.filter(pk=experiment.pk).update(score=experiment.latency)

    response = signed_in.get(f"{finished.get_absolute_url()}?sort={sort}")

    assert response.status_code == 200
    assert row_numbers(response) == order


@pytest.mark.parametrize(("sort", "current"), [("throughput", "Throughput"), ("bogus", "Number")])
def test_the_sort_links_mark_the_current_one(signed_in, finished, sort, current):
    links = page(signed_in.get(f"{finished.get_absolute_url()}?sort={sort}")).find("p", class_="sort-links")

    assert links.find("strong").text == current
    assert links.find("strong").attrs["aria-current"] == "true"
    assert current not in [link.text for link in links.find_all("a")]
    score = links.find("a", href="?sort=score#experiments")
    assert score.attrs["hx-get"] == progress_url(finished, "sort=score")
    assert score.attrs["hx-target"] == "#run"


def test_sorting_with_htmx_answers_the_run_panel_alone(signed_in, finished):
    response = signed_in.get(progress_url(finished, "sort=throughput"), headers=HTMX)

    assert page(response).find("h1") is None
    assert row_numbers(response) == [2, 1, 4, 3]


# Results


def test_the_best_is_the_highest_score_meeting_every_slo(signed_in, finished):
    document = page(signed_in.get(finished.get_absolute_url()))

    card = document.find("div", class_="best-config")
    assert card.find("h4").text == "Best configuration: experiment 1"
    assert "300.0" in card.text
    assert document.by_id("experiment-1").attrs["class"].split() == ["experiment-succeeded", "best-row"]
    assert "Best" not in document.by_id("experiment-2").text


def best_figures(response) -> dict[str, str]:
    figures = page(response).find("div", class_="best-config").find("dl")
    terms, values = figures.find_all("dt"), figures.find_all("dd")
    return {term.text: value.text for term, value in zip(terms, values, strict=True)}


def test_the_best_card_names_each_figure_it_shows(signed_in, finished):
    response = signed_in.get(finished.get_absolute_url())

    card = page(response).find("div", class_="best-config")
    assert "Objective: maximize throughput, measured at concurrency 32." in card.text
    assert best_figures(response) == {"Throughput": "300.0 output tokens/s", "Latency p50": "2.00 s end to end"}
    assert "300.0 · 300.0" not in card.text


def test_the_best_card_shows_a_time_to_first_token_score_with_its_unit(signed_in, draft):
    Task.objects.filter(pk=draft.pk).update(objective=Objective.MINIMIZE_TTFT)
    task = in_status(draft, TaskStatus.COMPLETED)
    make_experiment(task, 1, score=41.5, throughput=300.0, latency=2.0, scored_level=8)

    assert best_figures(signed_in.get(task.get_absolute_url())) == {
        "Throughput": "300.0 output tokens/s",
        "Latency p50": "2.00 s end to end",
        "Time to first token p50": "41.50 ms",
    }


def test_an_experiment_violating_an_slo_is_never_best_and_says_why(signed_in, finished):
    row = page(signed_in.get(finished.get_absolute_url())).by_id("experiment-2")

    assert "best-row" not in row.attrs["class"]
    assert row.find("div", class_="warning-text").text == VIOLATION
    assert row.find_all("td")[4].text == "500.0"  # the fastest, all the same


def test_the_best_card_shows_the_command_to_copy_and_saves_it_as_a_preset(signed_in, finished):
    card = page(signed_in.get(finished.get_absolute_url())).find("div", class_="best-config")

    command = card.find("code")  # to start it for real: on the plan's port, not the worker's
    assert command.text == finished.experiments.get(number=1).deploy_command
    assert command.text.startswith("sglang serve --model-path meta-llama/Llama-3.1-8B-Instruct")
    assert "--tp-size 1 --schedule-policy fcfs" in command.text
    assert "--port 41001" not in command.text
    assert card.find("button", type="button").attrs["data-copy"] == command.attrs["id"]
    assert card.find("form").attrs["action"] == f"/tasks/{finished.pk}/experiments/1/save-preset/"


def test_the_results_plot_throughput_against_latency(signed_in, finished):
    figure = page(signed_in.get(finished.get_absolute_url())).find("figure", class_="plot")

    svg = figure.find("svg")
    assert svg.attrs["role"] == "img"
    assert all(target for target in svg.attrs["aria-labelledby"].split())
    assert figure.find("figcaption") is not None


def test_a_failed_experiment_shows_its_error_and_the_engine_log(signed_in, finished):
    row = page(signed_in.get(finished.get_absolute_url())).by_id("experiment-3")

    assert row.find("div", class_="error-text").text == "engine exited with code 1 before it was ready"
    log = row.find("details")
    assert log.find("summary").text == "Engine log (last 2 lines)"
    assert log.find("pre").raw_text == "loading weights\nCUDA out of memory"


def test_with_no_experiment_meeting_the_slos_there_is_no_best(signed_in, finished):
    finished.experiments.filter(number__in=[1, 4]).update(score=None, slo_violation=VIOLATION)

    document = page(signed_in.get(finished.get_absolute_url()))

    assert document.find("div", class_="best-config") is None
    assert "No experiment met every SLO: there is no best configuration" in document.by_id("results").text


def test_a_run_whose_every_experiment_failed_still_offers_its_downloads(signed_in, draft):
    task = in_status(draft, TaskStatus.FAILED)
    make_experiment(task, 1, ExperimentStatus.FAILED, error="engine exited with code 1")
    make_experiment(task, 2, ExperimentStatus.FAILED, error="engine exited with code 1")

    for address in (task.get_absolute_url(), f"/tasks/{task.pk}/results/"):
        results = page(signed_in.get(address)).by_id("results")

        assert results.find("div", class_="best-config") is None
        assert "No experiment has succeeded" in results.text
        assert f"/tasks/{task.pk}/results.csv" in [link.attrs["href"] for link in results.find_all("a")]


def test_a_draft_shows_no_results_yet(signed_in, draft):
    assert page(signed_in.get(draft.get_absolute_url())).find(id="results") is None


def test_the_results_page_shows_the_run_and_links_back_to_the_task(signed_in, finished):
    response = signed_in.get(f"/tasks/{finished.pk}/results/")

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").find("a").attrs["href"] == finished.get_absolute_url()
    assert document.find("div", class_="best-config").find("h4").text == "Best configuration: experiment 1"
    assert len(row_numbers(response)) == 4
    assert "Results page" not in document.by_id("results").text


def test_the_results_page_of_a_running_task_reloads_itself_without_javascript(signed_in, running):
    document = page(signed_in.get(f"/tasks/{running.pk}/results/"))

    assert document.find("noscript").find("meta").attrs == {"http-equiv": "refresh", "content": "5"}
    assert document.by_id("run").attrs["hx-trigger"] == "every 1s"


def test_the_results_page_of_a_finished_task_stays_put(signed_in, finished):
    assert page(signed_in.get(f"/tasks/{finished.pk}/results/")).find("noscript") is None


def test_the_results_page_sorts_too(signed_in, finished):
    assert row_numbers(signed_in.get(f"/tasks/{finished.pk}/results/?sort=throughput")) == [2, 1, 4, 3]


def test_the_csv_download_has_a_row_per_experiment_and_a_column_per_flag(signed_in, finished):
    response = signed_in.get(f"/tasks/{finished.pk}/results.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="results-llama-sweep.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["number"] for row in rows] == ["1", "2", "3", "4"]
    assert list(rows[0])[-2:] == ["tp-size", "schedule-policy"]
    assert {key: rows[0][key] for key in ("status", "score", "throughput_tokens_per_s", "latency_p50_s")} == {
        "status": "succeeded",
        "score": "300",
        "throughput_tokens_per_s": "300",
        "latency_p50_s": "2",
    }
    assert (rows[0]["ttft_p90_ms"], rows[0]["e2e_p99_s"], rows[0]["success_rate"]) == ("120", "4.5", "1")
    assert (rows[1]["tp-size"], rows[1]["schedule-policy"]) == ("1", "lpm")
    assert (rows[1]["score"], rows[1]["slo_violation"]) == ("", VIOLATION)
    assert rows[2]["error"] == "engine exited with code 1 before it was ready"


def test_the_json_download_has_the_best_the_pareto_front_and_every_experiment(signed_in, finished):
    response = signed_in.get(f"/tasks/{finished.pk}/results.json")

    assert response.status_code == 200
    assert 'filename="results-llama-sweep.json"' in response["Content-Disposition"]
    document = json.loads(response.content)
    assert document["best"]["number"] == 1
    assert document["best"]["parameters"] == PLAN_ORDER[0]
    assert document["pareto_front"] == [4, 1]
    assert [experiment["number"] for experiment in document["experiments"]] == [1, 2, 3, 4]
    assert document["experiments"][1]["slo_violation"] == VIOLATION


def test_the_results_link_both_downloads_and_the_task_page_links_the_results_page(signed_in, finished):
    document = page(signed_in.get(finished.get_absolute_url()))
    links = document.by_id("results").find_all("a")

    assert {link.attrs["href"] for link in links} >= {
        f"/tasks/{finished.pk}/results.csv",
        f"/tasks/{finished.pk}/results.json",
    }
    assert f"/tasks/{finished.pk}/results/" in {link.attrs.get("href") for link in document.find_all("a")}


@pytest.mark.parametrize("url", ["/tasks/{id}/results.xml", "/tasks/999/results.csv", "/tasks/999/results/"])
def test_unknown_results_addresses_are_404(signed_in, finished, url):
    assert signed_in.get(url.format(id=finished.pk)).status_code == 404


def test_anyone_signed_in_may_read_the_results(client, other_user, finished):
    client.force_login(other_user)

    assert client.get(f"/tasks/{finished.pk}/results/").status_code == 200
    assert client.get(f"/tasks/{finished.pk}/results.csv").status_code == 200


@pytest.mark.parametrize("url", ["/tasks/{id}/results/", "/tasks/{id}/results.json", "/tasks/{id}/progress/"])
def test_results_need_a_signed_in_user(client, finished, url):
    address = url.format(id=finished.pk)

    response = client.get(address)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={address}"


@pytest.mark.parametrize(
    ("text", "written"),
    [
        pytest.param('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")', id="equals"),
        pytest.param("@SUM(1+1)", "'@SUM(1+1)", id="at"),
        pytest.param("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0", id="plus"),
        pytest.param("-2+3", "'-2+3", id="minus-formula"),
        pytest.param("\tlead", "'\tlead", id="tab"),
        pytest.param("-inf", "'-inf", id="not-a-plain-number"),
        pytest.param("-1.5e3", "-1.5e3", id="a-number-stays"),
        pytest.param("fcfs", "fcfs", id="plain-text"),
    ],
)
def test_the_csv_download_makes_text_that_looks_like_a_formula_inert(signed_in, finished, text, written):
    """OWASP's advice against CSV injection: text from users and engines never starts a formula."""
    experiment = finished.experiments.get(number=3)
    experiment.error = text
    experiment.parameters = {**experiment.parameters, "schedule-policy": text}
    experiment.save()

    rows = list(csv.reader(io.StringIO(signed_in.get(f"/tasks/{finished.pk}/results.csv").content.decode())))

    header, row = rows[0], next(row for row in rows[1:] if row[0] == "3")
    assert row[header.index("error")] == written
    assert row[header.index("schedule-policy")] == written
    assert row[header.index("number")] == "3"
