"""A task's search, trust and workload settings (issue 22) on the New task page and the API: each
good value saved by both, each bad one refused at its field with nothing saved, the defaults of a
task made without them, and the API schema's description of them."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest
from drf_spectacular.generators import SchemaGenerator

from tasks.models import Task
from tests.factories import make_task
from tests.tasks.pages.helpers import NEW, edit_url, form_data, page, row_errors

pytestmark = pytest.mark.django_db

LIST = "/api/tasks/"
BASE = {"name": "Settings", "model": "meta-llama/Llama-3.1-8B-Instruct", "runtime": "sglang"}
GRID = {"tp-size": [1, 2]}
UNTICKED = None  # a checkbox left unticked: the page posts nothing for it


def create(api, **fields):
    return api.post(LIST, json.dumps({**BASE, "parameters": GRID, **fields}), content_type="application/json")


def post_page(client, **fields):
    data = form_data(**{name: value for name, value in fields.items() if value is not UNTICKED})
    for name in [name for name, value in fields.items() if value is UNTICKED]:
        del data[name]
    return client.post(NEW, data)


def stored(names) -> dict:
    task = Task.objects.get()
    return {name: getattr(task, name) for name in names}


# Each good value: what the API sends, what the page posts, what is stored.
GOOD = [
    pytest.param({"gpus": 4}, {"gpus": "4"}, {"gpus": 4}, id="gpus-cap"),
    pytest.param({"skip_after_oom": False}, {"skip_after_oom": UNTICKED}, {"skip_after_oom": False}, id="oom-off"),
    pytest.param({"baseline": False}, {"baseline": UNTICKED}, {"baseline": False}, id="baseline-off"),
    pytest.param({"finalists": 0}, {"finalists": "0"}, {"finalists": 0}, id="no-finalists"),
    pytest.param({"finalists": 20}, {"finalists": "20"}, {"finalists": 20}, id="most-finalists"),
    pytest.param({"repeats": 1}, {"repeats": "1"}, {"repeats": 1}, id="one-repeat"),
    pytest.param({"repeats": 10}, {"repeats": "10"}, {"repeats": 10}, id="most-repeats"),
    pytest.param(
        {"load_mode": "rate", "request_rates": [8, 0.5, 2, 2]},
        {"load_mode": "rate", "request_rates": "8, 0.5, 2, 2"},
        {"load_mode": "rate", "request_rates": [0.5, 2.0, 8.0]},
        id="open-loop-rates",
    ),
    pytest.param({"request_rates": [100000]}, {"request_rates": "100000"}, {"request_rates": [1e5]}, id="top-rate"),
    pytest.param(
        {"input_tokens": 256, "input_tokens_max": 1024, "output_tokens": 64, "output_tokens_max": 64},
        {"input_tokens": "256", "input_tokens_max": "1024", "output_tokens": "64", "output_tokens_max": "64"},
        {"input_tokens": 256, "input_tokens_max": 1024, "output_tokens": 64, "output_tokens_max": 64},
        id="length-ranges",
    ),
    pytest.param({"shared_prefix": 0.5}, {"shared_prefix": "0.5"}, {"shared_prefix": 0.5}, id="shared-prefix"),
    pytest.param({"shared_prefix": 0.99}, {"shared_prefix": "0.99"}, {"shared_prefix": 0.99}, id="most-shared"),
    pytest.param({"warmup_requests": 0}, {"warmup_requests": "0"}, {"warmup_requests": 0}, id="no-warm-up"),
    pytest.param({"warmup_requests": 10000}, {"warmup_requests": "10000"}, {"warmup_requests": 10000}, id="warm-up"),
    pytest.param({"early_stop": False}, {"early_stop": UNTICKED}, {"early_stop": False}, id="early-stop-off"),
    pytest.param(
        {"objective": "maximize_throughput_per_gpu"},
        {"objective": "maximize_throughput_per_gpu"},
        {"objective": "maximize_throughput_per_gpu"},
        id="throughput-per-gpu",
    ),
    pytest.param(
        {"objective": "maximize_goodput", "slo_tpot_p90_ms": 40.0},
        {"objective": "maximize_goodput", "slo_tpot_p90_ms": "40"},
        {"objective": "maximize_goodput", "slo_tpot_p90_ms": 40.0},
        id="goodput-with-an-slo",
    ),
]


@pytest.mark.parametrize(("sent", "posted", "expected"), GOOD)
def test_a_good_setting_is_saved_through_the_api(api, sent, posted, expected):
    response = create(api, **sent)

    assert response.status_code == 201, response.json()
    assert stored(expected) == expected
    assert {name: response.json()[name] for name in expected} == expected


@pytest.mark.parametrize(("sent", "posted", "expected"), GOOD)
def test_a_good_setting_is_saved_through_the_page(signed_in, sent, posted, expected):
    response = post_page(signed_in, **posted)

    assert response.status_code == 302, [item.text for item in page(response).find_all("li")]
    assert stored(expected) == expected


NAN, INF = float("nan"), float("inf")

# Each bad value the API refuses, and the path it names.
REFUSED_BY_THE_API = [
    # Longer than any model's context: the worker would build the prompt in its memory.
    pytest.param({"input_tokens": 1_000_001}, "input_tokens", id="prompt-past-any-context"),
    pytest.param({"output_tokens": 1_000_001}, "output_tokens", id="answer-past-any-context"),
    pytest.param({"input_tokens_max": 1_000_001}, "input_tokens_max", id="prompt-range-past-any-context"),
    pytest.param({"gpus": 0}, "gpus", id="no-gpus"),
    pytest.param({"gpus": 1025}, "gpus", id="too-many-gpus"),
    pytest.param({"gpus": 1.5}, "gpus", id="half-a-gpu"),
    pytest.param({"finalists": -1}, "finalists", id="negative-finalists"),
    pytest.param({"finalists": 21}, "finalists", id="too-many-finalists"),
    pytest.param({"finalists": 1.5}, "finalists", id="fractional-finalists"),
    pytest.param({"finalists": "3"}, "finalists", id="finalists-text"),
    pytest.param({"finalists": True}, "finalists", id="finalists-boolean"),
    pytest.param({"repeats": 0}, "repeats", id="no-repeats"),
    pytest.param({"repeats": 11}, "repeats", id="too-many-repeats"),
    pytest.param({"repeats": -2}, "repeats", id="negative-repeats"),
    pytest.param({"warmup_requests": -1}, "warmup_requests", id="negative-warm-up"),
    pytest.param({"warmup_requests": 10001}, "warmup_requests", id="too-much-warm-up"),
    pytest.param({"shared_prefix": 1}, "shared_prefix", id="all-shared"),
    pytest.param({"shared_prefix": 1.5}, "shared_prefix", id="over-shared"),
    pytest.param({"shared_prefix": -0.1}, "shared_prefix", id="negative-share"),
    pytest.param({"shared_prefix": "0.5"}, "shared_prefix", id="share-text"),
    pytest.param({"shared_prefix": NAN}, "shared_prefix", id="share-nan"),
    pytest.param({"request_rates": []}, "request_rates", id="no-rates"),
    pytest.param({"request_rates": [0]}, "request_rates", id="zero-rate"),
    pytest.param({"request_rates": [-1]}, "request_rates", id="negative-rate"),
    pytest.param({"request_rates": [100001]}, "request_rates", id="rate-too-high"),
    pytest.param({"request_rates": [1, NAN]}, "request_rates", id="nan-rate"),
    pytest.param({"request_rates": [INF]}, "request_rates", id="infinite-rate"),
    pytest.param({"request_rates": ["2"]}, "request_rates", id="rate-text"),
    pytest.param({"request_rates": [True]}, "request_rates", id="rate-boolean"),
    pytest.param({"request_rates": "0.5, 2"}, "request_rates", id="rates-text"),
    pytest.param({"request_rates": list(range(1, 22))}, "request_rates", id="too-many-rates"),
    pytest.param({"load_mode": "poisson"}, "load_mode", id="unknown-load-mode"),
    pytest.param({"input_tokens_max": -1}, "input_tokens_max", id="negative-input-top"),
    pytest.param({"input_tokens_max": "1024"}, "input_tokens_max", id="input-top-text"),
    pytest.param({"input_tokens_max": 100}, "input_tokens_max", id="input-top-below-bottom"),
    pytest.param({"output_tokens": 256, "output_tokens_max": 255}, "output_tokens_max", id="output-top-below"),
    pytest.param({"baseline": "yes"}, "baseline", id="baseline-yes"),
    pytest.param({"baseline": "true"}, "baseline", id="baseline-true-text"),
    pytest.param({"early_stop": 0}, "early_stop", id="early-stop-zero"),
    pytest.param({"skip_after_oom": 1}, "skip_after_oom", id="oom-one"),
    pytest.param({"skip_after_oom": None}, "skip_after_oom", id="oom-null"),
    pytest.param({"objective": "maximize_goodput"}, "objective", id="goodput-without-an-slo"),
]


@pytest.mark.parametrize(("sent", "path"), REFUSED_BY_THE_API)
def test_a_bad_setting_is_refused_by_the_api_at_its_field(api, sent, path):
    response = create(api, **sent)

    assert response.status_code == 400, response.json()
    assert [error["path"] for error in response.json()["errors"]] == [path]
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    ("sent", "path"),
    [
        pytest.param({"objective": "maximize_goodput"}, "objective", id="goodput-without-an-slo"),
        pytest.param({"input_tokens_max": 511}, "input_tokens_max", id="input-top-below-the-stored-bottom"),
        pytest.param({"output_tokens_max": 0}, "output_tokens_max", id="output-top-zero"),
        pytest.param({"request_rates": [NAN]}, "request_rates", id="nan-rate"),
        pytest.param({"baseline": "no"}, "baseline", id="baseline-no"),
    ],
)
def test_a_bad_change_is_refused_by_the_api_and_changes_nothing(api, user, sent, path):
    task = make_task(created_by=user)
    before = {name: getattr(task, name) for name in sent}

    response = api.patch(f"{LIST}{task.pk}", json.dumps(sent), content_type="application/json")

    assert response.status_code == 400, response.json()
    assert [error["path"] for error in response.json()["errors"]] == [path]
    task.refresh_from_db()
    assert {name: getattr(task, name) for name in sent} == before


# Each bad value the page refuses, and the field whose row shows why.
REFUSED_BY_THE_PAGE = [
    pytest.param({"gpus": "0"}, "gpus", id="no-gpus"),
    pytest.param({"finalists": "-1"}, "finalists", id="negative-finalists"),
    pytest.param({"finalists": "21"}, "finalists", id="too-many-finalists"),
    pytest.param({"finalists": "1.5"}, "finalists", id="fractional-finalists"),
    pytest.param({"finalists": ""}, "finalists", id="finalists-empty"),
    pytest.param({"repeats": "0"}, "repeats", id="no-repeats"),
    pytest.param({"repeats": "11"}, "repeats", id="too-many-repeats"),
    pytest.param({"repeats": "two"}, "repeats", id="repeats-text"),
    pytest.param({"warmup_requests": "-1"}, "warmup_requests", id="negative-warm-up"),
    pytest.param({"warmup_requests": "10001"}, "warmup_requests", id="too-much-warm-up"),
    pytest.param({"shared_prefix": "1"}, "shared_prefix", id="all-shared"),
    pytest.param({"shared_prefix": "-0.1"}, "shared_prefix", id="negative-share"),
    pytest.param({"shared_prefix": "nan"}, "shared_prefix", id="share-nan"),
    pytest.param({"request_rates": ""}, "request_rates", id="no-rates"),
    pytest.param({"request_rates": "0"}, "request_rates", id="zero-rate"),
    pytest.param({"request_rates": "2, -1"}, "request_rates", id="negative-rate"),
    pytest.param({"request_rates": "100001"}, "request_rates", id="rate-too-high"),
    pytest.param({"request_rates": "nan"}, "request_rates", id="nan-rate"),
    pytest.param({"request_rates": "1, inf"}, "request_rates", id="infinite-rate"),
    pytest.param({"request_rates": "fast"}, "request_rates", id="rate-text"),
    pytest.param({"load_mode": "poisson"}, "load_mode", id="unknown-load-mode"),
    pytest.param({"input_tokens_max": "-1"}, "input_tokens_max", id="negative-input-top"),
    pytest.param({"input_tokens_max": "100"}, "input_tokens_max", id="input-top-below-bottom"),
    pytest.param({"output_tokens_max": "255"}, "output_tokens_max", id="output-top-below-bottom"),
    pytest.param({"objective": "maximize_goodput"}, "objective", id="goodput-without-an-slo"),
]


@pytest.mark.parametrize(("posted", "field"), REFUSED_BY_THE_PAGE)
def test_a_bad_setting_is_refused_by_the_page_in_its_row(signed_in, posted, field):
    response = post_page(signed_in, **posted)

    assert response.status_code == 422
    assert row_errors(response, field)
    assert not Task.objects.exists()


def test_a_range_top_below_its_bottom_says_the_bottom(signed_in):
    response = post_page(signed_in, input_tokens="512", input_tokens_max="100")

    assert row_errors(response, "input_tokens_max") == ["The range's top must be at least 512 (input tokens)."]


def test_goodput_without_an_slo_says_to_set_one(api):
    response = create(api, objective="maximize_goodput")

    assert response.json()["errors"] == [
        {"path": "objective", "message": "Goodput is the highest load meeting every SLO: set at least one SLO."}
    ]


DEFAULTS = {
    "baseline": True,
    "finalists": 3,
    "repeats": 2,
    "warmup_requests": 4,
    "early_stop": True,
    "skip_after_oom": True,
    "load_mode": "concurrency",
    "request_rates": [1, 4, 16],
    "input_tokens_max": None,
    "output_tokens_max": None,
    "shared_prefix": 0.0,
}


def test_a_task_made_through_the_api_without_the_settings_gets_the_defaults(api):
    response = create(api)

    assert response.status_code == 201
    assert stored(DEFAULTS) == DEFAULTS


def test_a_replacement_without_the_settings_sets_them_back_to_the_defaults(api, user):
    task = make_task(created_by=user, baseline=False, finalists=0, repeats=5, warmup_requests=0, early_stop=False)

    response = api.put(f"{LIST}{task.pk}", {**BASE, "parameters": GRID}, format="json")

    assert response.status_code == 200, response.json()
    assert stored(DEFAULTS) == DEFAULTS


def test_the_new_page_offers_the_defaults(signed_in):
    form = page(signed_in.get(NEW)).by_id("task-form")

    def field(name: str) -> dict:
        return form.find("input", name=name).attrs

    assert {name: "checked" in field(name) for name in ("baseline", "early_stop", "skip_after_oom")} == {
        "baseline": True,
        "early_stop": True,
        "skip_after_oom": True,
    }
    assert {name: field(name)["value"] for name in ("finalists", "repeats", "warmup_requests", "request_rates")} == {
        "finalists": "3",
        "repeats": "2",
        "warmup_requests": "4",
        "request_rates": "1, 4, 16",
    }


def test_the_edit_page_shows_stored_rates_as_typed(signed_in, user):
    task = make_task(created_by=user, load_mode="rate", request_rates=[0.5, 2.0, 8.0])

    form = page(signed_in.get(edit_url(task))).by_id("task-form")

    assert form.find("input", name="request_rates").attrs["value"] == "0.5, 2, 8"


def test_the_page_groups_the_settings_in_search_trust_and_workload(signed_in):
    document = page(signed_in.get(NEW))

    def rows(legend: str) -> list[str]:
        section = next(s for s in document.find_all("fieldset", class_="section") if s.find("legend").text == legend)
        return [row.attrs["id"].removeprefix("row-") for row in section.find_all("div", class_="form-row")]

    assert rows("Search")[-3:] == ["gpus", "experiment_timeout", "skip_after_oom"]
    assert rows("Trust") == ["baseline", "finalists", "repeats"]
    assert rows("Workload")[:3] == ["load_mode", "concurrency_levels", "request_rates"]
    assert {"shared_prefix", "warmup_requests", "early_stop", "input_tokens_max"} <= set(rows("Workload"))


# The API schema


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_gives_each_settings_limits(schema):
    fields = schema["components"]["schemas"]["TaskRequest"]["properties"]
    limits = {
        name: (fields[name].get("minimum"), fields[name].get("maximum"))
        for name in ("gpus", "finalists", "repeats", "warmup_requests", "shared_prefix")
    }

    assert limits == {
        "gpus": (1, 1024),
        "finalists": (0, 20),
        "repeats": (1, 10),
        "warmup_requests": (0, 10000),
        "shared_prefix": (0, 0.99),
    }
    assert {fields[name]["type"] for name in ("baseline", "early_stop", "skip_after_oom")} == {"boolean"}
    assert fields["request_rates"]["items"] == {"type": "number", "exclusiveMinimum": 0, "maximum": 100000}
    assert (fields["request_rates"]["minItems"], fields["request_rates"]["maxItems"]) == (1, 20)


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"objective": "maximize_goodput"}, False),
        ({"objective": "maximize_goodput", "slo_ttft_p90_ms": None}, False),
        ({"objective": "maximize_goodput", "slo_min_success_rate": 0.9}, True),
        ({"objective": "maximize_throughput"}, True),
    ],
    ids=["goodput-no-slo", "goodput-null-slo", "goodput-one-slo", "throughput"],
)
def test_the_schema_says_goodput_needs_an_slo_as_the_api_does(api, schema, body, valid):
    request = {"$ref": "#/components/schemas/TaskRequest", "components": schema["components"]}

    assert jsonschema_rs.validator_for(request).is_valid({**BASE, "parameters": GRID, **body}) is valid
    assert (create(api, **body).status_code == 201) is valid
