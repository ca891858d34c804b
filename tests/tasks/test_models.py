"""The Task model: defaults, validation by field, the experiments it plans, duplicating it, saving its
grid as a preset, and the snapshot of the presets it was built from."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError

from presets.merging import MergeStrategy
from presets.models import PresetsNotFound
from tasks.models import Task
from tasks.states import TaskStatus
from tests.factories import make_preset, make_task

pytestmark = pytest.mark.django_db


def errors_of(task: Task) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        task.full_clean()
    return caught.value.message_dict


# Defaults


def test_a_new_task_has_the_documented_defaults():
    task = Task.objects.create(name="Defaults", model="org/model", runtime="sglang", parameters={"tp-size": [1]})

    task.refresh_from_db()
    assert task.concurrency_levels == [1, 8, 32]
    assert task.input_tokens == 512
    assert task.output_tokens == 256
    assert task.requests_per_level == 100
    assert task.max_seconds_per_level == 120
    assert task.experiment_timeout == 900
    assert task.gpus == 1
    assert task.status == TaskStatus.DRAFT
    assert task.optimization_strategy == "grid"
    assert task.objective == "maximize_throughput"
    assert task.max_experiments is None
    assert task.applied_presets == []
    assert task.merge_strategy == ""
    assert task.parameters_edited is False


def test_each_task_gets_its_own_list_of_concurrency_levels():
    first = Task(name="First", model="org/model", runtime="sglang", parameters={"tp-size": [1]})
    second = Task(name="Second", model="org/model", runtime="sglang", parameters={"tp-size": [1]})

    first.concurrency_levels.append(64)

    assert second.concurrency_levels == [1, 8, 32]


def test_a_valid_task_passes_full_clean():
    task = Task(name="Valid", model="org/model", runtime="vllm", parameters={"tensor-parallel-size": [1, 2]})

    task.full_clean()


def test_saving_trims_the_name_and_normalises_the_grid():
    task = make_task(name="  Sweep  ", parameters={"--tp_size": [1, 2, 2]})

    task.refresh_from_db()
    assert task.name == "Sweep"
    assert task.name_key == "sweep"
    assert task.parameters == {"tp-size": [1, 2]}


def test_str_is_the_name_and_the_address_is_the_detail_page():
    task = make_task(name="Llama sweep")

    assert str(task) == "Llama sweep"
    assert task.get_absolute_url() == f"/tasks/{task.pk}/"


# Validation names the field


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        pytest.param({"name": ""}, "name", "This field cannot be blank.", id="name-blank"),
        pytest.param({"name": "tab\there"}, "name", "control characters are not allowed in a name", id="name-control"),
        pytest.param({"model": ""}, "model", "This field cannot be blank.", id="model-blank"),
        pytest.param({"runtime": "tgi"}, "runtime", "Value 'tgi' is not a valid choice.", id="runtime-unknown"),
        pytest.param({"parameters": {}}, "parameters", "at least one parameter is required", id="parameters-empty"),
        pytest.param(
            {"parameters": {"tp-size": [1, None]}},
            "parameters",
            "tp-size[1]: null is not allowed",
            id="parameters-null",
        ),
        pytest.param(
            {"concurrency_levels": []},
            "concurrency_levels",
            "Give at least one concurrency level, e.g. 1, 8, 32.",
            id="concurrency-empty",
        ),
        pytest.param(
            {"concurrency_levels": [1, 0]},
            "concurrency_levels",
            "[1]: 0 is not a whole number from 1 to 100000",
            id="concurrency-zero",
        ),
        pytest.param(
            {"concurrency_levels": list(range(1, 22))},
            "concurrency_levels",
            "At most 20 concurrency levels.",
            id="concurrency-too-many",
        ),
        pytest.param({"gpus": 0}, "gpus", "Ensure this value is greater than or equal to 1.", id="gpus-zero"),
        pytest.param(
            {"experiment_timeout": 5},
            "experiment_timeout",
            "Ensure this value is greater than or equal to 10.",
            id="timeout-short",
        ),
        pytest.param(
            {"slo_min_success_rate": 1.5},
            "slo_min_success_rate",
            "Ensure this value is less than or equal to 1.0.",
            id="success-rate-over-one",
        ),
        pytest.param(
            {"optimization_strategy": "random"},
            "max_experiments",
            "Required for random and bayesian search: how many experiments to run.",
            id="random-without-max",
        ),
        pytest.param(
            {"optimization_strategy": "bayesian"},
            "max_experiments",
            "Required for random and bayesian search: how many experiments to run.",
            id="bayesian-without-max",
        ),
    ],
)
def test_full_clean_names_the_field_that_is_wrong(overrides, field, message):
    fields = {"name": "Checked", "model": "org/model", "runtime": "sglang", "parameters": {"tp-size": [1]}}
    task = Task(**{**fields, **overrides})

    errors = errors_of(task)

    assert message in errors[field]


def test_full_clean_refuses_a_name_another_task_has_in_any_case():
    make_task(name="Llama sweep")
    task = Task(name=" LLAMA SWEEP ", model="org/model", runtime="sglang", parameters={"tp-size": [1]})

    assert errors_of(task) == {"name": ['A task named "Llama sweep" already exists.']}


def test_full_clean_lets_a_task_keep_its_own_name():
    task = make_task(name="Llama sweep")

    task.full_clean()


def test_random_search_with_a_cap_is_valid():
    task = Task(
        name="Random",
        model="org/model",
        runtime="sglang",
        parameters={"tp-size": [1, 2]},
        optimization_strategy="random",
        max_experiments=5,
    )

    task.full_clean()


def test_concurrency_levels_typed_as_text_become_a_sorted_list_without_repeats():
    task = Task(
        name="Levels",
        model="org/model",
        runtime="sglang",
        parameters={"tp-size": [1]},
        concurrency_levels="32, 1; 8, 8",
    )

    task.full_clean()

    assert task.concurrency_levels == [1, 8, 32]


# The experiments it plans


@pytest.mark.parametrize(
    ("strategy", "max_experiments", "planned"),
    [
        pytest.param("grid", None, 12, id="grid-runs-every-combination"),
        pytest.param("grid", 5, 5, id="grid-capped"),
        pytest.param("random", 5, 5, id="random-sample"),
        pytest.param("bayesian", 50, 12, id="cap-above-the-grid"),
    ],
)
def test_experiments_planned_is_the_runnable_grid_capped_by_max_experiments(strategy, max_experiments, planned):
    task = make_task(
        parameters={"tp-size": [1, 2, 4], "mem-fraction-static": [0.8, 0.9], "schedule-policy": ["fcfs", "lpm"]},
        optimization_strategy=strategy,
        max_experiments=max_experiments,
        gpus=4,  # every tp-size fits, so every combination is runnable
    )

    assert task.combinations == 12
    assert task.experiments_planned == planned


@pytest.mark.parametrize(
    ("status", "locked"),
    [(status.value, status in (TaskStatus.QUEUED, TaskStatus.RUNNING)) for status in TaskStatus],
    ids=[status.value for status in TaskStatus],
)
def test_only_a_queued_or_running_task_is_locked(status, locked):
    assert make_task(status=status).is_locked is locked


def test_the_creator_and_staff_may_change_a_task_nobody_else(user, other_user, staff_user):
    task = make_task(created_by=user)

    assert task.can_change(user)
    assert task.can_change(staff_user)
    assert not task.can_change(other_user)
    assert not task.can_change(AnonymousUser())


# Creating a task from presets


BASE = {"name": "Llama sweep", "model": "meta-llama/Llama-3.1-8B-Instruct", "runtime": "sglang"}


def test_create_from_presets_follows_the_order_given_and_records_where_the_grid_came_from(user, system_presets):
    high, memory = system_presets["High Throughput"], system_presets["Memory Efficient"]

    first = Task.objects.create_from_presets(
        presets=[high.pk, memory.pk], strategy=MergeStrategy.LAST_WINS, by=user, **BASE
    )
    second = Task.objects.create_from_presets(
        presets=[memory.pk, high.pk], strategy="last_wins", by=user, **{**BASE, "name": "Other order"}
    )

    assert first.parameters["tp-size"] == [1]
    assert second.parameters["tp-size"] == [2, 4]
    first.refresh_from_db()
    assert first.applied_presets == [
        {"id": high.pk, "name": "High Throughput"},
        {"id": memory.pk, "name": "Memory Efficient"},
    ]
    assert (first.merge_strategy, first.parameters_edited, first.created_by) == ("last_wins", False, user)
    assert first.preset_versions == {str(high.pk): high.current_version, str(memory.pk): memory.current_version}
    assert [entry["name"] for entry in second.applied_presets] == ["Memory Efficient", "High Throughput"]


def test_hand_edits_go_over_the_merge_flag_by_flag_and_mark_the_grid_edited(user, system_presets):
    high = system_presets["High Throughput"]

    task = Task.objects.create_from_presets(
        presets=[high.pk], strategy="union", parameters={"tp-size": [8]}, by=user, **BASE
    )

    assert task.parameters == {**high.parameters, "tp-size": [8]}
    assert task.parameters_edited is True


def test_the_grid_as_left_in_the_editor_is_the_grid_even_without_a_merged_flag(user, system_presets):
    high = system_presets["High Throughput"]

    task = Task.objects.create_from_presets(
        presets=[high.pk], strategy="union", parameters={"tp-size": [1]}, whole_grid=True, by=user, **BASE
    )

    assert task.parameters == {"tp-size": [1]}
    assert [entry["id"] for entry in task.applied_presets] == [high.pk]
    assert task.parameters_edited is True


def test_without_presets_the_grid_is_the_parameters_and_no_provenance(user):
    task = Task.objects.create_from_presets(presets=[], strategy="union", parameters={"tp-size": [1]}, by=user, **BASE)

    assert (task.parameters, task.applied_presets, task.merge_strategy) == ({"tp-size": [1]}, [], "")
    assert task.parameters_edited is False


def test_create_from_presets_names_a_missing_preset_and_saves_nothing(user, system_presets):
    high = system_presets["High Throughput"]

    with pytest.raises(PresetsNotFound) as missing:
        Task.objects.create_from_presets(presets=[high.pk, 999], strategy="union", by=user, **BASE)

    assert missing.value.missing == [(1, 999)]
    assert not Task.objects.exists()


def test_create_from_presets_checks_the_task_whole(user, system_presets):
    high = system_presets["High Throughput"]

    with pytest.raises(ValidationError) as refused:
        Task.objects.create_from_presets(
            presets=[high.pk], strategy="union", by=user, **{**BASE, "optimization_strategy": "random"}
        )

    assert list(refused.value.message_dict) == ["max_experiments"]
    assert not Task.objects.exists()


# Duplicating


def test_duplicate_makes_a_draft_copy_owned_by_whoever_copied_it(user, other_user, system_presets):
    high = system_presets["High Throughput"]
    original = make_task(
        name="Llama sweep",
        status=TaskStatus.COMPLETED,
        created_by=other_user,
        parameters={"tp-size": [2, 4]},
        applied_presets=[{"id": high.pk, "name": high.name}],
        merge_strategy="union",
        parameters_edited=True,
        gpus=4,
        concurrency_levels=[1, 64],
    )

    copy = original.duplicate(by=user)

    copy.refresh_from_db()
    original.refresh_from_db()
    assert copy.pk != original.pk
    assert copy.name == "Llama sweep (copy)"
    assert copy.status == TaskStatus.DRAFT
    assert copy.created_by == user
    assert copy.parameters == {"tp-size": [2, 4]}
    assert copy.applied_presets == [{"id": high.pk, "name": "High Throughput"}]
    assert copy.merge_strategy == "union"
    assert copy.parameters_edited is True
    assert (copy.gpus, copy.concurrency_levels) == (4, [1, 64])
    assert original.name == "Llama sweep"
    assert original.status == TaskStatus.COMPLETED
    assert original.created_by == other_user


def test_duplicating_again_numbers_the_copies(user):
    original = make_task(name="Llama sweep")

    names = [original.duplicate(by=user).name for _ in range(3)]

    assert names == ["Llama sweep (copy)", "Llama sweep (copy 2)", "Llama sweep (copy 3)"]


def test_a_copy_made_by_an_anonymous_user_has_no_owner():
    copy = make_task(name="Orphan").duplicate(by=AnonymousUser())

    assert copy.created_by is None


# Saving the grid as a preset


def test_save_grid_as_preset_makes_a_user_preset_with_the_grid_and_runtime(user):
    task = make_task(name="Llama sweep", runtime="vllm", parameters={"tensor-parallel-size": [1, 2]})

    preset = task.save_grid_as_preset(by=user)

    preset.refresh_from_db()
    assert preset.name == "Llama sweep (grid)"
    assert preset.parameters == {"tensor-parallel-size": [1, 2]}
    assert preset.runtime == "vllm"
    assert preset.category == "custom"
    assert preset.is_system is False
    assert preset.created_by == user
    assert preset.metadata == {"source_task": task.pk}


def test_saving_the_grid_twice_numbers_the_presets(user):
    task = make_task(name="Llama sweep")

    names = [task.save_grid_as_preset(by=user).name for _ in range(2)]

    assert names == ["Llama sweep (grid)", "Llama sweep (grid 2)"]


# The snapshot outlives the presets


def test_deleting_a_preset_leaves_the_task_grid_and_snapshot_intact(user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1, 2]}, created_by=user)
    mine_id = mine.pk
    task = make_task(
        parameters={"tp-size": [1, 2]}, applied_presets=[{"id": mine_id, "name": "Mine"}], merge_strategy="union"
    )

    mine.delete()

    task.refresh_from_db()
    assert task.parameters == {"tp-size": [1, 2]}
    assert task.applied_presets == [{"id": mine_id, "name": "Mine"}]
    assert task.merge_strategy == "union"
    assert task.applied_presets_now() == [{"id": mine_id, "name": "Mine", "preset": None}]


def test_editing_a_preset_leaves_the_task_grid_and_snapshot_intact(user):
    mine = make_preset(name="Mine", parameters={"tp-size": [1, 2]}, created_by=user)
    task = make_task(parameters={"tp-size": [1, 2]}, applied_presets=[{"id": mine.pk, "name": "Mine"}])

    mine.name = "Renamed"
    mine.parameters = {"tp-size": [8]}
    mine.save()

    task.refresh_from_db()
    assert task.parameters == {"tp-size": [1, 2]}
    assert task.applied_presets == [{"id": mine.pk, "name": "Mine"}]
    [entry] = task.applied_presets_now()
    assert entry["name"] == "Mine"
    assert entry["preset"] == mine
    assert entry["preset"].name == "Renamed"


def test_experiments_planned_leaves_out_combinations_that_need_more_gpus_than_the_task_has():
    task = make_task(parameters={"tp-size": [1, 2, 4], "schedule-policy": ["fcfs", "lpm"]}, gpus=2)

    assert task.combinations == 6
    assert task.experiments_planned == 4
    skipped = {"tp-size × dp-size × pp-size = 4 GPUs, over the task's cap of 2 per experiment": 2}
    assert dict(task.plan_summary.skipped) == skipped
