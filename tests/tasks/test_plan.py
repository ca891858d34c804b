"""A task's experiment plan: the runnable and skipped combinations with their reasons and launch
commands on the task page, in plan.json and plan.sh, through /api/tasks/<id>/plan; the engine
checks and the grid-size limit when a task is saved; the New task page's plan preview."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError

from tasks.models import Task
from tests.factories import make_preset, make_task
from tests.html import Element, accessibility_problems, parse
from tests.tasks.pages.helpers import form_data

pytestmark = pytest.mark.django_db

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SGLANG = f"sglang serve --model-path {MODEL} --host 127.0.0.1 --port 30000"
VLLM = f"vllm serve {MODEL} --host 127.0.0.1 --port 30000"
FOUR_GPUS = "tp-size × dp-size × pp-size = 4 GPUs, over the task's cap of 2 per experiment"
EIGHT_GPUS = "tp-size × dp-size × pp-size = 8 GPUs, over the task's cap of 2 per experiment"
MISSPELT_WARNING = {
    "level": "warning",
    "path": "enable-mixed-chunking",
    "message": "not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?",
}
# 100 × 101 values of two flags no rule reads: 10,100 combinations, every one runnable.
OVERSIZED = {"max-running-requests": list(range(1, 101)), "chunked-prefill-size": list(range(1, 102))}


@pytest.fixture
def tp_sweep(user) -> Task:
    """tp-size 1, 2, 4 and 8 on 2 GPUs: two combinations run, two need more GPUs."""
    return make_task(name="TP sweep", parameters={"tp-size": [1, 2, 4, 8]}, gpus=2, created_by=user)


def body(response) -> Element:
    """The page's <body>: what a reader sees, whatever the <head> holds."""
    return parse(response.content).find("body")


def plan_section(response) -> Element:
    return body(response).by_id("plan")


def plan_commands(response) -> list[str]:
    return [code.text for code in plan_section(response).find_all("code", class_="command")]


# The task page


def test_the_task_page_counts_the_combinations_and_the_skipped_ones(signed_in, tp_sweep):
    response = signed_in.get(tp_sweep.get_absolute_url())

    assert response.status_code == 200
    plan = plan_section(response)
    assert plan.find("p").text.startswith("4 combinations, 2 skipped: 2 can run.")
    assert [item.text for item in plan.find("ul", class_="skipped").find_all("li")] == [
        f"1 skipped: {FOUR_GPUS}",
        f"1 skipped: {EIGHT_GPUS}",
    ]


def test_the_task_page_lists_the_runnable_experiments_with_their_commands(signed_in, tp_sweep):
    response = signed_in.get(tp_sweep.get_absolute_url())

    rows = plan_section(response).find("tbody").find_all("tr")
    assert [row.find("td", class_="num").text for row in rows] == ["1", "2"]
    assert [row.find("td", class_="summary").text for row in rows] == ["tp-size 1", "tp-size 2"]
    assert plan_commands(response) == [f"{SGLANG} --tp-size 1", f"{SGLANG} --tp-size 2"]


def test_each_command_has_a_copy_button_naming_it(signed_in, tp_sweep):
    response = signed_in.get(tp_sweep.get_absolute_url())

    plan = plan_section(response)
    buttons = plan.find_all("button", class_="button")
    assert [button.attrs["data-copy"] for button in buttons] == ["command-1", "command-2"]
    for button in buttons:
        assert button.attrs["type"] == "button"
        assert plan.by_id(button.attrs["data-copy"]).tag == "code"


def test_the_task_page_links_the_plan_downloads(signed_in, tp_sweep):
    response = signed_in.get(tp_sweep.get_absolute_url())

    links = {link.attrs["href"]: link for link in plan_section(response).find_all("a")}
    assert f"/tasks/{tp_sweep.pk}/plan.json" in links
    assert f"/tasks/{tp_sweep.pk}/plan.sh" in links
    assert all("download" in link.attrs for link in links.values())


def test_the_command_spells_every_kind_of_sglang_flag(signed_in):
    task = make_task(
        parameters={
            "tp-size": [2],
            "mem-fraction-static": [0.85],
            "schedule-policy": ["lpm"],
            "enable-mixed-chunk": [True],
            "disable-radix-cache": [False],
        },
        gpus=2,
    )

    response = signed_in.get(task.get_absolute_url())

    # An SGLang switch that is off has no --no- form: it is left out.
    assert plan_commands(response) == [
        f"{SGLANG} --tp-size 2 --mem-fraction-static 0.85 --schedule-policy lpm --enable-mixed-chunk"
    ]


def test_the_command_uses_the_engines_own_name_for_an_alias(signed_in):
    task = make_task(parameters={"tensor-parallel-size": [2], "data-parallel-size": [2]}, gpus=4)

    response = signed_in.get(task.get_absolute_url())

    assert plan_commands(response) == [f"{SGLANG} --tp-size 2 --dp-size 2"]


@pytest.mark.parametrize(
    ("parameters", "command"),
    [
        pytest.param(
            {"tensor-parallel-size": [2], "enable-chunked-prefill": [False]},
            # vllm/utils/argparse_utils.py:120-145: --disable-X is the documented off form, --no-enable-X hidden
            f"{VLLM} --tensor-parallel-size 2 --disable-chunked-prefill",
            id="a-switch-off-as-its-negation",
        ),
        pytest.param(
            {"tp": [2], "enable-prefix-caching": [True]},
            f"{VLLM} --tensor-parallel-size 2 --enable-prefix-caching",
            id="the-short-alias-and-a-switch-on",
        ),
        pytest.param(
            {"gpu-memory-utilization": [0.9], "max-num-seqs": [128]},
            f"{VLLM} --gpu-memory-utilization 0.9 --max-num-seqs 128",
            id="numbers",
        ),
    ],
)
def test_a_vllm_task_renders_vllm_serve_commands(signed_in, parameters, command):
    task = make_task(runtime="vllm", parameters=parameters, gpus=2)

    response = signed_in.get(task.get_absolute_url())

    assert plan_commands(response) == [command]


@pytest.mark.parametrize(
    ("runtime", "command"),
    [
        pytest.param(
            "sglang",
            "sglang serve --model-path '/models/My Llama' --host 127.0.0.1 --port 30000 --tp-size 1",
            id="sglang",
        ),
        pytest.param(
            "vllm",
            "vllm serve '/models/My Llama' --host 127.0.0.1 --port 30000 --tensor-parallel-size 1",
            id="vllm",
        ),
    ],
)
def test_a_model_path_with_spaces_is_quoted(signed_in, runtime, command):
    flag = "tp-size" if runtime == "sglang" else "tensor-parallel-size"
    task = make_task(runtime=runtime, model="/models/My Llama", parameters={flag: [1]})

    response = signed_in.get(task.get_absolute_url())

    assert plan_commands(response) == [command]


def test_the_task_page_shows_the_first_50_runnable_experiments(signed_in):
    task = make_task(parameters={"tp-size": [1, 2], "max-running-requests": list(range(1, 61))}, gpus=1)

    response = signed_in.get(task.get_absolute_url())

    plan = plan_section(response)
    assert plan.find("p").text.startswith("120 combinations, 60 skipped: 60 can run.")
    assert len(plan.find("tbody").find_all("tr")) == 50
    assert plan_commands(response)[-1] == f"{SGLANG} --tp-size 1 --max-running-requests 50"
    assert plan.find("p", class_="muted").text == "The first 50 of 60; the downloads hold them all."


def test_a_task_whose_every_combination_runs_skips_none(signed_in):
    task = make_task(parameters={"tp-size": [1, 2]}, gpus=2)

    response = signed_in.get(task.get_absolute_url())

    plan = plan_section(response)
    assert plan.find("p").text.startswith("2 combinations: 2 can run.")
    assert plan.find("ul", class_="skipped") is None
    assert plan.find("p", class_="muted") is None


def test_the_task_page_shows_the_engines_warnings(signed_in):
    task = make_task(parameters={"enable-mixed-chunking": [True]})

    response = signed_in.get(task.get_absolute_url())

    warnings = body(response).find("section", aria_label="Engine warnings")
    assert [item.text for item in warnings.find_all("li")] == [
        "⚠ enable-mixed-chunking: not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?"
    ]


def test_the_task_pages_title_is_the_task_name(signed_in, tp_sweep):
    response = signed_in.get(tp_sweep.get_absolute_url())

    document = parse(response.content)
    assert document.find("title").text == "TP sweep · autotuner"
    assert len([element for element in document.iter() if element.attrs.get("id") == "plan"]) == 1


@pytest.mark.parametrize("suffix", ["", "plan.json", "plan.sh"], ids=["page", "json", "shell"])
def test_the_plan_pages_need_a_login(client, tp_sweep, suffix):
    url = f"/tasks/{tp_sweep.pk}/{suffix}"

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_the_task_page_with_its_plan_passes_the_accessibility_check(signed_in, tp_sweep):
    response = signed_in.get(tp_sweep.get_absolute_url())

    assert accessibility_problems(response.content) == []


# The downloads


def test_plan_json_holds_every_runnable_experiment_and_the_skipped_reasons(signed_in, tp_sweep):
    response = signed_in.get(f"/tasks/{tp_sweep.pk}/plan.json")

    assert response.status_code == 200
    assert 'filename="plan-tp-sweep.json"' in response["Content-Disposition"]
    assert json.loads(response.content) == {
        "task": "TP sweep",
        "runtime": "sglang",
        "model": MODEL,
        "combinations": 4,
        "runnable": 2,
        "skipped": {FOUR_GPUS: 1, EIGHT_GPUS: 1},
        "experiments": [
            {"number": 1, "parameters": {"tp-size": 1}, "command": f"{SGLANG} --tp-size 1"},
            {"number": 2, "parameters": {"tp-size": 2}, "command": f"{SGLANG} --tp-size 2"},
        ],
    }


def test_plan_json_holds_more_than_the_page_shows(signed_in):
    task = make_task(parameters={"max-running-requests": list(range(1, 61))})

    response = signed_in.get(f"/tasks/{task.pk}/plan.json")

    experiments = json.loads(response.content)["experiments"]
    assert [experiment["number"] for experiment in experiments] == list(range(1, 61))
    assert experiments[-1]["command"] == f"{SGLANG} --max-running-requests 60"


def test_plan_sh_is_a_shell_script_with_one_command_per_line(signed_in, tp_sweep):
    response = signed_in.get(f"/tasks/{tp_sweep.pk}/plan.sh")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/x-shellscript; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="plan-tp-sweep.sh"'
    lines = response.content.decode().splitlines()
    assert lines[0] == "#!/bin/sh"
    assert [line for line in lines if not line.startswith("#")] == [
        f"{SGLANG} --tp-size 1  # experiment 1",
        f"{SGLANG} --tp-size 2  # experiment 2",
    ]
    assert response.content.endswith(b"\n")


# The plan API


@pytest.fixture
def five_runnable() -> Task:
    return make_task(parameters={"tp-size": [1, 2], "max-running-requests": [1, 2, 3, 4, 5]}, gpus=1)


def test_the_plan_api_pages_the_runnable_experiments(api, five_runnable):
    response = api.get(f"/api/tasks/{five_runnable.pk}/plan", {"page_size": 2})

    assert response.status_code == 200
    assert response["X-Total-Count"] == "5"
    assert response["Link"] == (f'<http://testserver/api/tasks/{five_runnable.pk}/plan?page_size=2&page=2>; rel="next"')
    assert response.json() == {
        "combinations": 10,
        "runnable": 5,
        "skipped": {"tp-size × dp-size × pp-size = 2 GPUs, over the task's cap of 1 per experiment": 5},
        "page": 1,
        "experiments": [
            {
                "number": 1,
                "parameters": {"tp-size": 1, "max-running-requests": 1},
                "command": f"{SGLANG} --tp-size 1 --max-running-requests 1",
            },
            {
                "number": 2,
                "parameters": {"tp-size": 1, "max-running-requests": 2},
                "command": f"{SGLANG} --tp-size 1 --max-running-requests 2",
            },
        ],
    }


def test_the_last_plan_page_links_only_to_the_previous_one(api, five_runnable):
    response = api.get(f"/api/tasks/{five_runnable.pk}/plan/", {"page_size": 2, "page": 3})

    assert response.status_code == 200
    assert response["Link"] == f'<http://testserver/api/tasks/{five_runnable.pk}/plan/?page_size=2&page=2>; rel="prev"'
    assert [experiment["number"] for experiment in response.json()["experiments"]] == [5]


def test_the_plan_api_follows_its_next_links_to_every_experiment(api, five_runnable):
    url, numbers = f"/api/tasks/{five_runnable.pk}/plan?page_size=2", []
    while url:
        response = api.get(url)
        numbers += [experiment["number"] for experiment in response.json()["experiments"]]
        following = [link for link in response.get("Link", "").split(", ") if link.endswith('rel="next"')]
        url = following[0].split(">")[0].removeprefix("<") if following else None

    assert numbers == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "query",
    [{"page_size": 1001}, {"page_size": 0}, {"page_size": "ten"}, {"page": 0}],
    ids=["page-size-over-1000", "page-size-0", "page-size-not-a-number", "page-0"],
)
def test_the_plan_api_refuses_a_bad_page_or_page_size(api, five_runnable, query):
    response = api.get(f"/api/tasks/{five_runnable.pk}/plan", query)

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == list(query)


def test_the_plan_api_accepts_the_largest_page_size(api, five_runnable):
    response = api.get(f"/api/tasks/{five_runnable.pk}/plan", {"page_size": 1000})

    assert response.status_code == 200
    assert len(response.json()["experiments"]) == 5


# A random search over 4 × 10^8 combinations, a quarter of which need more GPUs than the task has.
HUGE = {"tp-size": [1, 2, 4, 8], **{f"max-running-requests-{index}": list(range(1, 11)) for index in range(8)}}


@pytest.fixture
def huge_random(user) -> Task:
    return make_task(
        name="Huge", parameters=HUGE, gpus=4, optimization_strategy="random", max_experiments=20, created_by=user
    )


def test_a_plan_page_far_into_a_huge_grid_is_the_page_at_that_place(api, huge_random):
    response = api.get(f"/api/tasks/{huge_random.pk}/plan", {"page": 300_000, "page_size": 1000})

    assert response.status_code == 200
    body = response.json()
    assert (body["combinations"], body["runnable"]) == (4 * 10**8, 3 * 10**8)
    experiments = body["experiments"]
    assert [experiments[0]["number"], experiments[-1]["number"]] == [299_999_001, 300_000_000]
    # The last experiment: tp-size 4 (8 is skipped) with every other flag at its last value.
    assert experiments[-1]["parameters"] == {"tp-size": 4, **{flag: 10 for flag in list(HUGE)[1:]}}
    assert response["X-Total-Count"] == str(3 * 10**8)


def test_a_random_search_over_a_huge_grid_starts_with_its_own_sample(signed_in, huge_random):
    from tasks.strategies import planned_combinations

    sample = planned_combinations(huge_random, seed=7)

    assert len(sample) == 20
    assert len({json.dumps(combination) for combination in sample}) == 20
    assert all(combination["tp-size"] != 8 for combination in sample)
    assert sample == planned_combinations(huge_random, seed=7)


@pytest.mark.parametrize("suffix", ["plan.json", "plan.sh"])
def test_a_plan_longer_than_a_download_takes_is_refused_with_a_way_to_read_it(signed_in, huge_random, suffix):
    response = signed_in.get(f"/tasks/{huge_random.pk}/{suffix}")

    assert response.status_code == 400
    text = body(response).text
    assert "has 300000000 runnable experiments" in text
    assert "only up to 10000 experiments" in text
    assert f"/api/tasks/{huge_random.pk}/plan" in text


def test_the_task_page_of_a_huge_plan_offers_the_api_instead_of_downloads(signed_in, huge_random):
    response = signed_in.get(f"/tasks/{huge_random.pk}/")

    links = [link.attrs.get("href") for link in plan_section(response).find_all("a")]
    assert f"/tasks/{huge_random.pk}/plan.json" not in links
    assert f"/api/tasks/{huge_random.pk}/plan" in plan_section(response).text


def test_a_plan_of_exactly_the_download_limit_downloads(signed_in, user):
    task = make_task(parameters={"max-running-requests": list(range(1, 101)), "page-size": list(range(1, 101))})

    response = signed_in.get(f"/tasks/{task.pk}/plan.sh")

    assert response.status_code == 200
    assert response.content.decode().count("# experiment ") == 10_000


def test_a_task_whose_parallel_flags_have_too_many_value_combinations_is_refused(api):
    parameters = {"tp-size": list(range(1, 501)), "dp-size": list(range(1, 501))}
    response = api.post(
        "/api/tasks/",
        api_task(parameters=parameters, optimization_strategy="random", max_experiments=5),
        format="json",
    )

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["path"] == "parameters"
    assert "tp-size, dp-size have 250,000 combinations of values" in error["message"]


def test_the_plan_api_answers_404_for_an_unknown_task(api):
    response = api.get("/api/tasks/999999/plan")

    assert response.status_code == 404
    assert response.json()["detail"] == "Task 999999 not found"


def test_the_task_api_shows_runnable_skipped_and_no_warnings(api, tp_sweep):
    response = api.get(f"/api/tasks/{tp_sweep.pk}")

    body = response.json()
    assert body["combinations"] == 4
    assert body["runnable"] == 2
    assert body["skipped"] == {FOUR_GPUS: 1, EIGHT_GPUS: 1}
    assert body["warnings"] == []


def test_the_task_api_warns_of_an_unknown_flag(api):
    task = make_task(parameters={"enable-mixed-chunking": [True], "tp-size": [1]})

    response = api.get(f"/api/tasks/{task.pk}")

    assert response.json()["warnings"] == [MISSPELT_WARNING]


# Saving a task: the engine checks and the size of a grid search


def api_task(**fields) -> dict:
    return {"name": "Llama sweep", "model": MODEL, "runtime": "sglang", "parameters": {"tp-size": [1]}, **fields}


def test_a_grid_search_over_10000_runnable_combinations_is_refused_by_the_api(api):
    response = api.post("/api/tasks/", api_task(parameters=OVERSIZED), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "optimization_strategy",
            "message": "The grid has 10,100 runnable combinations; a grid search runs at most 10,000. "
            "Choose random or bayesian search with a max experiments cap.",
        }
    ]
    assert not Task.objects.exists()


def test_the_same_grid_as_a_capped_random_search_is_accepted(api):
    response = api.post(
        "/api/tasks/",
        api_task(parameters=OVERSIZED, optimization_strategy="random", max_experiments=50),
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["runnable"] == 10_100
    assert Task.objects.get().experiments_planned == 50


@pytest.mark.parametrize(
    ("parameters", "status"),
    [
        pytest.param(
            {"max-running-requests": list(range(1, 101)), "chunked-prefill-size": list(range(1, 101))},
            201,
            id="exactly-10000",
        ),
        pytest.param(
            {"max-running-requests": list(range(1, 74)), "chunked-prefill-size": list(range(1, 138))},
            400,
            id="10001",
        ),
        pytest.param(
            {
                "tp-size": [1, 2],
                "max-running-requests": list(range(1, 101)),
                "chunked-prefill-size": list(range(1, 101)),
            },
            201,
            id="20000-of-which-10000-can-run-on-one-gpu",
        ),
    ],
)
def test_a_grid_search_is_limited_by_its_runnable_combinations(api, parameters, status):
    response = api.post("/api/tasks/", api_task(parameters=parameters, gpus=1), format="json")

    assert response.status_code == status


def task_form(**overrides) -> dict:
    """The New task form as "Create task" posts it, with a one-combination grid typed by hand."""
    return form_data(**{"parameters": '{"tp-size": [1]}', **overrides})


def row_errors(response, field: str) -> list[str]:
    return [item.text for item in parse(response.content).by_id(f"row-{field}").find_all("li")]


def test_the_new_task_page_refuses_an_oversized_grid_search_suggesting_random_or_bayesian(signed_in):
    response = signed_in.post("/tasks/new/", task_form(parameters=json.dumps(OVERSIZED)))

    assert response.status_code == 422
    [message] = row_errors(response, "optimization_strategy")
    assert message.startswith("The grid has 10,100 runnable combinations")
    assert "Choose random or bayesian search" in message
    assert not Task.objects.exists()


def test_the_new_task_page_accepts_the_oversized_grid_as_a_capped_random_search(signed_in):
    response = signed_in.post(
        "/tasks/new/",
        task_form(parameters=json.dumps(OVERSIZED), optimization_strategy="random", max_experiments="50"),
    )

    assert response.status_code == 302
    task = Task.objects.get()
    assert (task.optimization_strategy, task.max_experiments, task.combinations) == ("random", 50, 10_100)


def test_a_task_with_a_value_the_engine_refuses_is_refused_by_the_api(api):
    response = api.post("/api/tasks/", api_task(parameters={"mem-fraction-static": [9]}), format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "parameters", "message": "mem-fraction-static[0]: 9 is outside (0, 1]"}
    ]
    assert not Task.objects.exists()


def test_a_task_with_a_value_the_engine_refuses_is_refused_by_the_page(signed_in):
    response = signed_in.post("/tasks/new/", task_form(parameters='{"mem-fraction-static": [9]}'))

    assert response.status_code == 422
    assert row_errors(response, "parameters") == ["mem-fraction-static[0]: 9 is outside (0, 1]"]
    assert not Task.objects.exists()


def test_a_vllm_task_is_checked_against_vllm(api):
    response = api.post(
        "/api/tasks/",
        api_task(runtime="vllm", parameters={"gpu-memory-utilization": [0.9, 1.1], "mem-fraction-static": [9]}),
        format="json",
    )

    # mem-fraction-static is no vLLM flag: a warning, not an error; only vLLM's own bound blocks.
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "parameters", "message": "gpu-memory-utilization[1]: 1.1 is outside (0, 1]"}
    ]


def test_a_task_with_an_unknown_flag_is_saved_with_its_warning(api):
    response = api.post("/api/tasks/", api_task(parameters={"enable-mixed-chunking": [True]}), format="json")

    assert response.status_code == 201
    assert response.json()["warnings"] == [MISSPELT_WARNING]


def test_a_task_none_of_whose_combinations_can_run_is_still_saved(api):
    response = api.post("/api/tasks/", api_task(parameters={"tp-size": [4, 8]}, gpus=2), format="json")

    assert response.status_code == 201
    assert (response.json()["runnable"], response.json()["combinations"]) == (0, 2)


# The New task page's preview of presets merged for an engine


@pytest.fixture
def alias_presets():
    first = make_preset(name="TP short", runtime="sglang", parameters={"tp-size": [1]})
    second = make_preset(name="TP long", runtime="sglang", parameters={"tensor-parallel-size": [2, 4]})
    return first, second


def merge_preview(response) -> Element:
    return parse(response.content).by_id("merge-preview")


def preview_flags(response) -> list[str]:
    rows = merge_preview(response).find("tbody").find_all("tr")
    return [row.find("th").text for row in rows]


def test_the_new_task_preview_merges_aliases_into_one_row_with_a_note(signed_in, alias_presets):
    first, second = alias_presets

    response = signed_in.get("/tasks/new/", {"presets": f"{first.pk},{second.pk}"})

    assert response.status_code == 200
    assert preview_flags(response) == ["--tp-size"]
    notes = [item.text for item in merge_preview(response).find("ul", class_="notes").find_all("li")]
    assert len(notes) == 1
    assert "is the same flag as tp-size" in notes[0]
    assert notes[0] == "ℹ tensor-parallel-size in TP long is the same flag as tp-size: merged as tp-size"


def test_the_new_task_preview_skips_what_one_gpu_cannot_run(signed_in, alias_presets):
    first, second = alias_presets
    data = task_form(use_presets="on", presets=[str(first.pk), str(second.pk)], action="refresh", gpus="1")

    response = signed_in.post("/tasks/new/", data)

    assert response.status_code == 200
    preview = merge_preview(response)
    assert preview.find("p", class_="combinations").text == "3 combinations, 2 skipped"
    assert [item.text for item in preview.find("ul", class_="skipped").find_all("li")] == [
        "1 skipped: tp-size × dp-size × pp-size = 2 GPUs, over the task's cap of 1 per experiment",
        "1 skipped: tp-size × dp-size × pp-size = 4 GPUs, over the task's cap of 1 per experiment",
    ]


@pytest.mark.parametrize(
    ("first", "second", "problem"),
    [
        pytest.param(
            {f"knob-{index}": list(range(1000)) for index in range(3)},
            {f"dial-{index}": list(range(1000)) for index in range(2)},
            "The merged grid is too big: the grid has 1,000,000,000,000,000 combinations",
            id="union-over-the-grid-limit",
        ),
        pytest.param(
            {"tp-size": list(range(1, 501))},
            {"dp-size": list(range(1, 501))},
            "tp-size, dp-size have 250,000 combinations of values between them",
            id="parallel-flags-over-the-plan-limit",
        ),
    ],
)
def test_the_new_task_preview_explains_a_merge_too_big_to_plan(signed_in, first, second, problem):
    ids = [str(make_preset(name=name, parameters=grid).pk) for name, grid in (("First", first), ("Second", second))]
    data = task_form(use_presets="on", presets=ids, action="refresh", gpus="8")

    response = signed_in.post("/tasks/new/", data)

    assert response.status_code == 200
    assert problem in merge_preview(response).find("ul", class_="errorlist").text


def test_the_new_task_preview_skips_nothing_with_enough_gpus(signed_in, alias_presets):
    first, second = alias_presets
    data = task_form(use_presets="on", presets=[str(first.pk), str(second.pk)], action="refresh", gpus="4")

    response = signed_in.post("/tasks/new/", data, headers={"HX-Request": "true"})

    preview = merge_preview(response)
    assert preview.find("p", class_="combinations").text == "3 combinations"
    assert preview.find("ul", class_="skipped") is None


def test_the_new_task_preview_without_a_runtime_merges_one_engines_aliases(signed_in, alias_presets):
    first, second = alias_presets
    data = task_form(use_presets="on", presets=[str(first.pk), str(second.pk)], action="refresh", runtime="")

    response = signed_in.post("/tasks/new/", data)

    assert preview_flags(response) == ["--tp-size"]


def test_the_new_task_preview_explains_presets_of_another_engine(signed_in):
    vllm = make_preset(name="VL base", runtime="vllm", parameters={"tensor-parallel-size": [2]})
    data = task_form(use_presets="on", presets=[str(vllm.pk)], action="refresh", runtime="sglang")

    response = signed_in.post("/tasks/new/", data)

    reasons = [item.text for item in merge_preview(response).find_all("li", class_="conflict-engines")]
    assert reasons == [
        "⚠ “VL base” is for vLLM, not SGLang: one task runs one engine, and each spells its flags its own way."
    ]


def test_a_task_refuses_presets_of_another_engine(api):
    vllm = make_preset(name="VL base", runtime="vllm", parameters={"tensor-parallel-size": [2]})
    body = {"name": "Mixed", "model": MODEL, "runtime": "sglang", "presets": [vllm.pk]}

    response = api.post("/api/tasks/", body, format="json")

    assert response.status_code == 400
    reason = "“VL base” is for vLLM, not SGLang: one task runs one engine, and each spells its flags its own way."
    assert response.json()["errors"] == [{"path": "runtime", "message": reason}]
    assert not Task.objects.filter(name="Mixed").exists()


def test_the_new_task_preview_shows_the_engines_findings(signed_in):
    preset = make_preset(runtime="sglang", parameters={"enable-mixed-chunking": [True]})
    data = task_form(use_presets="on", presets=[str(preset.pk)], action="refresh")

    response = signed_in.post("/tasks/new/", data)

    findings = [item.text for item in merge_preview(response).find_all("li", class_="conflict")]
    assert findings == ["⚠ enable-mixed-chunking: not a sglang 0.5.23 flag; did you mean enable-mixed-chunk?"]


# What the plan counts agrees with what it lists


@pytest.mark.parametrize(
    ("runtime", "gpus", "parameters"),
    [
        pytest.param("sglang", 2, {"tp-size": [1, 2, 4, 8]}, id="sglang-gpus"),
        pytest.param(
            "sglang",
            8,
            {
                "tp-size": [1, 2, 4, 8],
                "dp-size": [1, 2, 4],
                "pp-size": [1, 2],
                "schedule-policy": ["lpm", "fcfs"],
                "disable-radix-cache": [True, False],
                "enable-hierarchical-cache": [True, False],
            },
            id="sglang-every-rule",
        ),
        pytest.param("sglang", 4, {"tensor-parallel-size": [1, 2, 4, 8], "data-parallel-size": [1, 2]}, id="aliases"),
        pytest.param("vllm", 4, {"tp": [1, 2, 4], "pipeline-parallel-size": [1, 2, 4]}, id="vllm"),
    ],
)
def test_the_plans_counts_agree_with_the_experiments_it_lists(runtime, gpus, parameters):
    task = make_task(runtime=runtime, gpus=gpus, parameters=parameters)

    experiments = list(task.plan())
    summary = task.plan_summary

    assert summary.total == task.combinations
    assert summary.runnable == len(experiments)
    assert summary.runnable + sum(summary.skipped.values()) == summary.total
    assert [number for number, _, _ in experiments] == list(range(1, len(experiments) + 1))
    for _, _, command in experiments:
        flags = [word for word in command.split() if word.startswith("--")]
        assert len(flags) == len(set(flags)), command


def test_a_grid_naming_one_flag_under_two_names_is_refused():
    task = Task(
        name="Twice",
        model="org/model",
        runtime="sglang",
        gpus=8,
        parameters={"tp-size": [1, 2], "tensor-parallel-size": [4]},
    )

    with pytest.raises(ValidationError) as raised:
        task.full_clean()

    assert raised.value.message_dict["parameters"] == [
        "tensor-parallel-size: the same sglang 0.5.23 flag as tp-size; give its values once"
    ]


# A runtime from outside is never taken as a file pattern or a hash key


@pytest.mark.parametrize("runtime", [["sglang"], {"engine": "sglang"}], ids=["list", "object"])
def test_a_task_from_presets_with_a_runtime_that_is_not_text_answers_400(api, runtime):
    preset = make_preset(runtime="sglang", parameters={"tp-size": [1]})

    response = api.post("/api/tasks/", api_task(runtime=runtime, presets=[preset.pk]), format="json")

    assert response.status_code == 400
    assert [error["path"] for error in response.json()["errors"]] == ["runtime"]


def test_the_new_task_preview_of_an_unknown_runtime_checks_as_with_no_engine_chosen(signed_in):
    # No engine chosen yet: the grid is checked as an any-engine preset is, against every engine.
    preset = make_preset(runtime="sglang", parameters={"enable-mixed-chunking": [True]})
    data = task_form(use_presets="on", presets=[str(preset.pk)], action="refresh", runtime="*")

    response = signed_in.post("/tasks/new/", data)

    assert response.status_code == 200
    findings = [item.text for item in merge_preview(response).find_all("li", class_="conflict")]
    assert findings == ["⚠ enable-mixed-chunking: not a flag of any engine; did you mean enable-mixed-chunk?"]
