"""The task page: its configuration, where its grid came from, and the actions offered."""

from __future__ import annotations

import pytest

from tasks.models import Task
from tasks.states import TaskStatus
from tests.factories import make_preset, make_task
from tests.tasks.pages.helpers import (
    HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS,
    page,
)

pytestmark = pytest.mark.django_db


# The detail page


def facts(response) -> dict[str, str]:
    found = {}
    for block in page(response).find_all("dl", class_="facts"):
        terms = block.find_all("dt")
        values = block.find_all("dd")
        found.update({term.text: value.text for term, value in zip(terms, values, strict=True)})
    return found


def test_the_detail_page_shows_the_configuration(signed_in, user):
    task = make_task(
        name="Everything",
        description="All fields",
        model="Qwen/Qwen2.5-7B",
        runtime="vllm",
        engine_version="v0.6.0",
        gpus=2,
        parameters={"tensor-parallel-size": [1, 2], "max-num-seqs": [64, 128, 256]},
        optimization_strategy="random",
        objective="minimize_ttft",
        max_experiments=4,
        concurrency_levels=[1, 8, 64],
        slo_ttft_p90_ms=250,
        slo_min_success_rate=0.99,
        created_by=user,
    )

    response = signed_in.get(task.get_absolute_url())

    assert response.status_code == 200
    document = page(response)
    assert document.find("h1").text == "Everything Draft"
    assert document.find("p", class_="lead").text == "All fields"
    shown = facts(response)
    assert shown["Model"] == "Qwen/Qwen2.5-7B"
    assert shown["Runtime"] == "vLLM (v0.6.0)"
    assert shown["GPUs per experiment"] == "at most 2: each combination takes the GPUs its engine uses"
    assert shown["Made by"].startswith("ada, ")
    assert shown["Strategy"] == "Random sample"
    assert shown["Objective"] == "Minimize time to first token"
    assert shown["Experiments"] == "4 of 6 combinations (capped)"
    assert shown["Timeout per experiment"] == "900 s"
    assert shown["Out of memory"] == "skips the same combination at higher memory fractions"
    assert shown["Baseline"] == "none"
    assert shown["Finalists"] == "none: each measured once"
    assert shown["Load"] == "1, 8, 64 in flight (closed loop)"
    assert shown["Input / output tokens"] == "512 / 256"
    assert shown["Requests per level"] == "100 (at most 120 s); a level stops once its SLOs cannot be met"
    assert shown["p90 TTFT"] == "≤ 250.0 ms"
    assert shown["p90 TPOT"] == "none"
    assert shown["Success rate"] == "≥ 0.99"


def test_the_detail_page_shows_the_trust_and_workload_settings(signed_in):
    task = make_task(
        baseline=True,
        finalists=3,
        repeats=2,
        load_mode="rate",
        request_rates=[0.5, 2.0],
        input_tokens=100,
        input_tokens_max=400,
        output_tokens=64,
        output_tokens_max=128,
        shared_prefix=0.25,
        warmup_requests=4,
        early_stop=False,
        skip_after_oom=False,
    )

    shown = facts(signed_in.get(task.get_absolute_url()))

    assert shown["Baseline"] == "the engine's defaults, first"
    assert shown["Finalists"] == "the best 3, 2 more times each"
    assert shown["Load"] == "0.5, 2.0 requests/s (open loop)"
    assert shown["Input / output tokens"] == "100–400 / 64–128, 25 % of each prompt shared"
    assert shown["Requests per level"] == "100 (at most 120 s), after 4 warm-up"
    assert shown["Out of memory"] == "learns nothing"


def test_the_detail_page_shows_the_grid_as_a_table(signed_in):
    task = make_task(parameters={"tp-size": [1, 2], "enable-mixed-chunk": [True, False], "schedule-policy": ["lpm"]})

    table = page(signed_in.get(task.get_absolute_url())).find("table", class_="grid-table")

    rows = {
        row.find("th").text: [value.text for value in row.find_all("span", class_="value")]
        for row in table.find("tbody").find_all("tr")
    }
    assert rows == {
        "--tp-size": ["1", "2"],
        "--enable-mixed-chunk": ["true", "false"],
        "--schedule-policy": ["lpm"],
    }


def test_the_detail_page_says_how_many_experiments_a_whole_grid_runs(signed_in):
    task = make_task(parameters={"tp-size": [1, 2, 4], "schedule-policy": ["fcfs", "lpm"]}, gpus=4)

    assert facts(signed_in.get(task.get_absolute_url()))["Experiments"] == "6 (6 combinations)"


def test_the_detail_page_links_the_presets_it_came_from_in_order(signed_in, built_from_presets, high, memory):
    response = signed_in.get(built_from_presets.get_absolute_url())

    provenance = page(response).find("ol", class_="provenance")
    links = [(link.attrs["href"], link.text) for link in provenance.find_all("a")]
    assert links == [(f"/presets/{high.pk}/", "High Throughput"), (f"/presets/{memory.pk}/", "Memory Efficient")]
    assert page(response).find("span", class_="note") is None


def test_the_detail_page_names_the_merge_strategy_in_words(signed_in, built_from_presets):
    response = signed_in.get(built_from_presets.get_absolute_url())

    provenance = page(response).find("ol", class_="provenance")
    assert provenance.parent.find("p").text.startswith("last wins merge of, in this order:")


def test_the_detail_page_marks_a_grid_edited_after_the_presets(signed_in, built_from_presets):
    Task.objects.filter(pk=built_from_presets.pk).update(parameters_edited=True)

    response = signed_in.get(built_from_presets.get_absolute_url())

    assert page(response).find("span", class_="note").text == "then edited by hand"


def test_the_detail_page_marks_a_deleted_preset_and_keeps_the_snapshot_and_grid(
    signed_in, user, built_from_presets, high
):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)
    Task.objects.filter(pk=built_from_presets.pk).update(
        applied_presets=[{"id": high.pk, "name": "High Throughput"}, {"id": mine.pk, "name": "Mine"}]
    )
    mine.delete()

    response = signed_in.get(built_from_presets.get_absolute_url())

    assert response.status_code == 200
    items = page(response).find("ol", class_="provenance").find_all("li")
    assert [item.text for item in items] == ["High Throughput", "Mine (deleted)"]
    assert items[1].find("a") is None
    built_from_presets.refresh_from_db()
    assert [entry["name"] for entry in built_from_presets.applied_presets] == ["High Throughput", "Mine"]
    assert built_from_presets.parameters == HIGH_THROUGHPUT_THEN_MEMORY_EFFICIENT_LAST_WINS
    assert "--tp-size" in page(response).find("table", class_="grid-table").text


def test_the_detail_page_shows_a_renamed_presets_new_name(signed_in, user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1]}, created_by=user)
    task = make_task(applied_presets=[{"id": mine.pk, "name": "Mine"}], merge_strategy="union")
    mine.name = "Renamed"
    mine.save()

    item = page(signed_in.get(task.get_absolute_url())).find("ol", class_="provenance").find("li")

    assert item.text == "Mine (now “Renamed”)"


def test_the_detail_page_of_a_hand_typed_grid_says_so(signed_in):
    task = make_task()

    main = page(signed_in.get(task.get_absolute_url())).find("main")

    assert "Typed by hand, without presets." in main.text
    assert main.find("ol", class_="provenance") is None


def actions(response) -> list[str]:
    bar = page(response).find("div", class_="actions")
    return [element.text for element in bar.iter() if element.tag in ("a", "button")]


def test_the_owner_sees_every_action_on_a_draft(signed_in, built_from_presets):
    assert actions(signed_in.get(built_from_presets.get_absolute_url())) == [
        "Edit",
        "Duplicate",
        "Save grid as preset",
        "Delete",
    ]


def test_another_user_may_only_duplicate_or_save_the_grid(client, other_user, built_from_presets):
    client.force_login(other_user)

    assert actions(client.get(built_from_presets.get_absolute_url())) == ["Duplicate", "Save grid as preset"]


def test_a_running_task_offers_no_edit_or_delete(signed_in, built_from_presets):
    Task.objects.filter(pk=built_from_presets.pk).update(status=TaskStatus.RUNNING)

    assert actions(signed_in.get(built_from_presets.get_absolute_url())) == ["Duplicate", "Save grid as preset"]


def test_a_missing_task_is_404(signed_in):
    assert signed_in.get("/tasks/999/").status_code == 404
