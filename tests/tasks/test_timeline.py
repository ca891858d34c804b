"""The GPU timeline on the task page (a lane per GPU, a bar per experiment on each GPU it held) and the
dashboard's GPUs, read from experiments and GPU slots as workers leave them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.gpus import GpuSlot
from tasks.models import Task
from tasks.states import ExperimentRole, ExperimentStatus, TaskStatus
from tasks.timeline import LEFT, RIGHT, Timeline, gpu_timeline, task_timeline
from tests.tasks.runs import HTMX, in_status, make_experiment, page, progress_url

pytestmark = pytest.mark.django_db

SVG = "{http://www.w3.org/2000/svg}"
START = timezone.now() - timedelta(hours=1)


def at(seconds: float):
    return START + timedelta(seconds=seconds)


def ran(task: Task, number: int, gpus: list[str], start: float, end: float | None, **fields):
    """An experiment that ran on these GPUs of host "node-a" from ``start`` to ``end`` (seconds)."""
    status = fields.pop("status", ExperimentStatus.SUCCEEDED if end is not None else ExperimentStatus.BENCHMARKING)
    values = {
        "host": "node-a",
        "gpu_ids": gpus,
        "started_at": at(start),
        "finished_at": None if end is None else at(end),
    }
    return make_experiment(task, number, status, **{**values, **fields})


def bars(timeline: Timeline) -> dict[tuple[int, str], tuple[float, float]]:
    """(experiment number, GPU) → (left, right) of its bar."""
    return {
        (bar.number, timeline.lanes[bar.lane].gpu): (round(bar.x, 1), round(bar.x + bar.width, 1))
        for bar in timeline.bars
    }


def svg_of(response) -> ET.Element:
    figure = page(response).by_id("gpu-timeline").find("figure")
    assert figure is not None
    start = response.content.decode().index('<svg xmlns="http://www.w3.org/2000/svg" class="timeline"')
    return ET.fromstring(response.content.decode()[start:].split("</svg>")[0] + "</svg>")


def bar_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if "timeline-bar" in g.get("class", "").split()]


@pytest.fixture
def packed(draft) -> Task:
    """Two experiments side by side on GPUs 0-1 and 2-3, then a third on GPU 0 once the first ended."""
    task = in_status(draft, TaskStatus.COMPLETED)
    ran(task, 1, ["0", "1"], 0, 40, serving_at=at(10))
    ran(task, 2, ["2", "3"], 0, 60, status=ExperimentStatus.FAILED)
    ran(task, 3, ["0"], 45, 90, status=ExperimentStatus.CANCELLED)
    return task


def test_experiments_packed_on_four_gpus_get_a_lane_each_and_a_bar_per_gpu_they_held(packed):
    timeline = gpu_timeline(list(packed.experiments.all()), now=timezone.now())

    assert [lane.label for lane in timeline.lanes] == ["GPU 0", "GPU 1", "GPU 2", "GPU 3"]
    drawn = bars(timeline)
    assert sorted(drawn) == [(1, "0"), (1, "1"), (2, "2"), (2, "3"), (3, "0")]
    # Side by side: the first two start together; the third follows the first on GPU 0.
    assert drawn[1, "0"] == drawn[1, "1"]
    assert drawn[2, "2"] == drawn[2, "3"]
    assert drawn[1, "0"][0] == drawn[2, "2"][0] == LEFT
    assert drawn[1, "0"][1] < drawn[3, "0"][0] < drawn[3, "0"][1] <= RIGHT
    # 40 s, 60 s and 90 s on an axis to 90 s (ticks every 15 s).
    assert [tick.label for tick in timeline.ticks] == ["0", "15 s", "30 s", "45 s", "60 s", "75 s", "90 s"]
    assert drawn[3, "0"][1] == RIGHT


def test_a_bar_is_lighter_while_the_engine_starts_and_says_what_ran_where_for_how_long(packed):
    timeline = gpu_timeline(list(packed.experiments.all()), now=timezone.now())

    first = next(bar for bar in timeline.bars if bar.number == 1)
    assert first.startup_width == pytest.approx(first.width / 4, abs=0.1)  # serving after 10 of 40 s
    assert first.title == "#1 tp-size 1, schedule-policy fcfs · GPUs 0,1 · 40 s · succeeded"
    never_served = next(bar for bar in timeline.bars if bar.number == 2)
    assert never_served.startup_width == never_served.width


def test_the_task_page_draws_the_timeline_with_outcome_classes_and_a_table_for_screen_readers(signed_in, packed):
    ran(packed, 4, ["1"], 50, None, status=ExperimentStatus.STARTING)
    make_experiment(packed, 5, ExperimentStatus.SKIPPED, host="node-a", gpu_ids=["2"], started_at=at(70))
    make_experiment(packed, 6, ExperimentStatus.PENDING)

    response = signed_in.get(packed.get_absolute_url())

    groups = bar_groups(svg_of(response))
    outcomes = {(int(g.get("data-number")), g.get("class")) for g in groups}
    assert outcomes == {
        (1, "timeline-bar timeline-succeeded"),
        (2, "timeline-bar timeline-failed"),
        (3, "timeline-bar timeline-cancelled"),
        (4, "timeline-bar timeline-running"),
    }
    assert len(groups) == 6  # a bar per GPU held: 2 + 2 + 1 + 1; skipped and pending never ran
    assert groups[0].find(f"{SVG}title").text == "#1 tp-size 1, schedule-policy fcfs · GPUs 0,1 · 40 s · succeeded"
    table = page(response).by_id("gpu-timeline").find("table")
    rows = [[cell.text for cell in row.find_all("td")] for row in table.find("tbody").find_all("tr")]
    assert rows[0] == ["#1 tp-size 1, schedule-policy fcfs", "0, 1 on node-a", "0 s", "10 s", "40 s", "Succeeded"]
    assert [row[0].split()[0] for row in rows] == ["#1", "#2", "#3", "#4"]


def test_a_running_experiments_bar_ends_now(draft):
    task = in_status(draft, TaskStatus.RUNNING)
    ran(task, 1, ["0"], 0, 20)
    ran(task, 2, ["1"], 10, None)

    timeline = gpu_timeline(list(task.experiments.all()), now=at(30))

    drawn = bars(timeline)
    assert [tick.label for tick in timeline.ticks] == ["0", "5 s", "10 s", "15 s", "20 s", "25 s", "30 s"]
    assert drawn[2, "1"] == (round(LEFT + (RIGHT - LEFT) / 3, 1), RIGHT)
    assert drawn[1, "0"][1] == round(LEFT + (RIGHT - LEFT) * 2 / 3, 1)
    assert next(bar.title for bar in timeline.bars if bar.number == 2).endswith("· 20 s so far · running")


def test_an_experiment_without_gpus_gets_no_lane_and_is_counted(signed_in, draft):
    task = in_status(draft, TaskStatus.COMPLETED)
    ran(task, 1, ["0"], 0, 30)
    ran(task, 2, [], 0, 30, host="")

    timeline = gpu_timeline(list(task.experiments.all()), now=timezone.now())
    assert [lane.gpu for lane in timeline.lanes] == ["0"]
    assert {bar.number for bar in timeline.bars} == {1}
    assert timeline.without_gpus == 1
    assert "1 experiment recorded no GPUs and is not shown." in page(signed_in.get(task.get_absolute_url())).text


def test_a_run_on_a_host_without_gpu_ids_says_so_in_one_line(signed_in, draft):
    task = in_status(draft, TaskStatus.COMPLETED)
    ran(task, 1, [], 0, 30, host="")

    response = signed_in.get(progress_url(task), headers=HTMX)

    note = page(response).by_id("gpu-timeline")
    assert note.tag == "p"
    assert (
        note.text == "No GPU timeline: no experiment recorded its GPUs (the worker's host sets no AUTOTUNER_GPU_IDS)."
    )
    assert b'class="timeline"' not in response.content


def test_a_draft_shows_no_timeline(signed_in, draft):
    assert b'id="gpu-timeline"' not in signed_in.get(draft.get_absolute_url()).content


def test_lanes_follow_the_order_each_host_offers_its_gpus_and_name_the_host_when_there_are_several(draft):
    task = in_status(draft, TaskStatus.COMPLETED)
    for position, gpu in enumerate(["7", "1", "10"]):  # AUTOTUNER_GPU_IDS=7,1,10 on node-b
        GpuSlot.objects.create(host="node-b", gpu=gpu, position=position, seen_at=timezone.now())
    ran(task, 1, ["10", "1"], 0, 30, host="node-b")
    ran(task, 2, ["7"], 0, 30, host="node-b")
    ran(task, 3, ["2", "10"], 0, 30, host="a-very-long-hostname.example")  # no slots left: by id, as numbers

    timeline = task_timeline(list(task.experiments.all()), now=timezone.now())

    assert [(lane.host, lane.gpu) for lane in timeline.lanes] == [
        ("a-very-long-hostname.example", "2"),
        ("a-very-long-hostname.example", "10"),
        ("node-b", "7"),
        ("node-b", "1"),
        ("node-b", "10"),
    ]
    assert [lane.label for lane in timeline.lanes][:3] == ["a-very-lon…", "a-very-lon…", "node-b · 7"]
    assert next(bar.title for bar in timeline.bars if bar.number == 1).endswith(
        "· GPUs 10,1 on node-b · 30 s · succeeded"
    )


def test_an_experiment_row_names_its_gpus_and_its_role(signed_in, draft):
    task = in_status(draft, TaskStatus.COMPLETED)
    make_experiment(task, 0, role=ExperimentRole.BASELINE, parameters={}, host="node-a", gpu_ids=["0", "1"])
    original = ran(task, 1, ["2"], 0, 30)
    ran(task, 2, ["3"], 30, 60, role=ExperimentRole.REPEAT, repeat_of=original)

    rows = page(signed_in.get(task.get_absolute_url())).find("table", class_="experiments-table").find("tbody")

    cells = [row.find_all("td")[1].text for row in rows.find_all("tr")]
    assert cells == [
        "Succeeded Baseline GPUs 0,1 on node-a",
        "Succeeded GPU 2 on node-a",
        "Succeeded Repeat of #1 GPU 3 on node-a",
    ]


# The dashboard's GPUs


def test_the_dashboard_shows_each_hosts_gpus_with_what_runs_on_them_now(signed_in, draft):
    task = in_status(draft, TaskStatus.RUNNING)
    running = ran(task, 3, ["1"], 0, None)
    for position, gpu in enumerate(["0", "1"]):
        GpuSlot.objects.create(host="node-a", gpu=gpu, position=position, seen_at=timezone.now())
    GpuSlot.objects.filter(gpu="1").update(experiment=running, leased_at=timezone.now() - timedelta(minutes=5))

    gpus = page(signed_in.get("/")).by_id("gpus")

    assert gpus.find("h3").text == "node-a"
    rows = gpus.find("tbody").find_all("tr")
    assert [row.attrs["class"] for row in rows] == ["gpu-free", "gpu-busy"]
    assert rows[0].text == "0 Free"
    assert rows[1].text == "1 Llama sweep · experiment #3 5 minutes ago"
    links = [link.attrs["href"] for link in rows[1].find_all("a")]
    assert links == [task.get_absolute_url(), f"{task.get_absolute_url()}#experiment-3"]


def test_the_dashboard_says_when_no_worker_offered_gpus(signed_in):
    gpus = page(signed_in.get("/")).by_id("gpus")

    assert gpus.find("p").text == "No worker has offered GPUs yet (AUTOTUNER_GPU_IDS)."
