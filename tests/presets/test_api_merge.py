"""POST /api/presets/merge: presets merged in the order of preset_ids, and every way to ask wrongly."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from presets.models import ParameterPreset
from presets.seeding import seed_system_presets
from tests.factories import make_preset

pytestmark = pytest.mark.django_db

MERGE = "/api/presets/merge"


@pytest.fixture
def ids() -> dict[str, int]:
    """The system presets' ids by name."""
    seed_system_presets()
    return dict(ParameterPreset.objects.values_list("name", "id"))


def merge(api: APIClient, preset_ids: list, strategy: str | None = None):
    body = {"preset_ids": preset_ids}
    if strategy is not None:
        body["merge_strategy"] = strategy
    return api.post(MERGE, body, format="json")


def test_the_seed_example_union(api, ids):
    response = merge(api, [ids["Memory Efficient"], ids["High Throughput"]], "union")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"parameters", "applied_presets", "conflicts", "sources", "combinations"}
    assert body["parameters"]["tp-size"] == [1, 2, 4]
    assert body["parameters"]["mem-fraction-static"] == [0.7, 0.75, 0.9]
    assert body["parameters"]["schedule-policy"] == ["fcfs"]
    assert body["applied_presets"] == ["Memory Efficient", "High Throughput"]
    disjoint = [c for c in body["conflicts"] if c["parameter"] == "mem-fraction-static"]
    assert len(disjoint) == 1
    assert disjoint[0]["kind"] == "disjoint"
    assert disjoint[0]["presets"] == ["Memory Efficient", "High Throughput"]


def test_union_is_the_default_strategy(api, ids):
    preset_ids = [ids["Memory Efficient"], ids["High Throughput"]]

    assert merge(api, preset_ids).json() == merge(api, preset_ids, "union").json()


def test_the_union_reports_its_sources_and_combinations(api, ids):
    body = merge(api, [ids["Memory Efficient"], ids["High Throughput"]]).json()

    assert body["sources"]["tp-size"] == [["Memory Efficient"], ["High Throughput"], ["High Throughput"]]
    assert body["sources"]["mem-fraction-static"] == [["Memory Efficient"], ["Memory Efficient"], ["High Throughput"]]
    # tp-size 3 x mem-fraction-static 3 x one value for each of the three other flags.
    assert body["combinations"] == 9


@pytest.mark.parametrize(
    ("order", "tp_size", "mem_fraction"),
    [
        pytest.param(["High Throughput", "Memory Efficient"], [1], [0.7, 0.75], id="memory-efficient-last"),
        pytest.param(["Memory Efficient", "High Throughput"], [2, 4], [0.9], id="high-throughput-last"),
    ],
)
def test_last_wins_follows_the_order_of_preset_ids(api, ids, order, tp_size, mem_fraction):
    response = merge(api, [ids[name] for name in order], "last_wins")

    assert response.status_code == 200
    body = response.json()
    assert body["parameters"]["tp-size"] == tp_size
    assert body["parameters"]["mem-fraction-static"] == mem_fraction
    assert body["applied_presets"] == order
    overridden = {c["parameter"]: c for c in body["conflicts"]}
    assert overridden["tp-size"]["kind"] == "overridden"
    assert overridden["tp-size"]["overridden_by"] == order[-1]
    assert overridden["tp-size"]["new_values"] == tp_size


def test_intersection_keeps_shared_flags_and_values(api, ids):
    response = merge(api, [ids["Low Latency"], ids["Balanced"]], "intersection")

    assert response.status_code == 200
    body = response.json()
    assert body["parameters"] == {"tp-size": [1, 2], "schedule-policy": ["lpm"], "mem-fraction-static": [0.85]}
    assert body["conflicts"] == []
    assert body["combinations"] == 2


def test_intersection_reports_dropped_flags_as_conflicts(api, ids):
    body = merge(api, [ids["Memory Efficient"], ids["High Throughput"]], "intersection").json()

    assert body["parameters"] == {}
    assert body["combinations"] == 0
    kinds = {c["parameter"]: c["kind"] for c in body["conflicts"]}
    assert kinds == {
        "tp-size": "no_common_values",
        "mem-fraction-static": "no_common_values",
        "chunked-prefill-size": "missing",
        "schedule-policy": "missing",
        "enable-mixed-chunk": "missing",
    }


@pytest.mark.parametrize("strategy", ["union", "intersection", "last_wins"])
def test_conflicts_are_always_a_list(api, ids, strategy):
    body = merge(api, [ids["Balanced"]], strategy).json()

    assert body["conflicts"] == []
    assert body["parameters"] == {
        "tp-size": [1, 2],
        "mem-fraction-static": [0.85],
        "schedule-policy": ["fcfs", "lpm"],
    }


def test_merge_reads_user_presets_of_any_owner(api, other_user, ids):
    theirs = make_preset(name="Grace's grid", parameters={"tp-size": [8]}, created_by=other_user)

    body = merge(api, [ids["Balanced"], theirs.pk]).json()

    assert body["parameters"]["tp-size"] == [1, 2, 8]
    assert body["applied_presets"] == ["Balanced", "Grace's grid"]


def test_a_merge_asked_again_after_an_edit_or_a_rename_is_the_new_merge(api, user):
    # The same merge asked again is answered from a memo (presets.api._merged): keyed on what
    # the presets hold, so an edit or a rename is a new merge.
    first, second = make_preset(name="Left", parameters={"tp-size": [1]}), make_preset(name="Right")
    asked = [merge(api, [first.pk, second.pk]).json() for _ in range(2)]
    assert asked[0] == asked[1]
    assert asked[0]["parameters"]["tp-size"] == [1, 2]
    first.parameters = {"tp-size": [4]}
    first.save(by=user)
    assert merge(api, [first.pk, second.pk]).json()["parameters"]["tp-size"] == [1, 2, 4]
    first.name = "Renamed"
    first.save(by=user)
    answer = merge(api, [first.pk, second.pk]).json()
    assert (answer["applied_presets"], answer["sources"]["tp-size"]) == (
        ["Renamed", "Right"],
        [["Right"], ["Right"], ["Renamed"]],
    )


def test_merge_changes_nothing(api, ids):
    before = list(ParameterPreset.objects.values())

    merge(api, [ids["Memory Efficient"], ids["High Throughput"]])

    assert list(ParameterPreset.objects.values()) == before


# Errors


def error_paths(response) -> list[str]:
    return [error["path"] for error in response.json()["errors"]]


def test_an_empty_preset_ids_answers_400(api, ids):
    response = merge(api, [])

    assert response.status_code == 400
    assert error_paths(response) == ["preset_ids"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="missing"),
        pytest.param({"preset_ids": None}, id="null"),
        pytest.param({"preset_ids": "1,2"}, id="string"),
        pytest.param({"preset_ids": 1}, id="number"),
        pytest.param({"preset_ids": {"0": 1}}, id="object"),
    ],
)
def test_preset_ids_that_is_not_a_list_answers_400(api, ids, body):
    response = api.post(MERGE, body, format="json")

    assert response.status_code == 400
    assert error_paths(response) == ["preset_ids"]


def test_a_repeated_id_answers_400_naming_it(api, ids):
    balanced = ids["Balanced"]

    response = merge(api, [balanced, ids["Low Latency"], balanced])

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "preset_ids[2]", "message": f"preset {balanced} is repeated (first at index 0)"}
    ]
    assert str(balanced) in response.json()["detail"]


def test_ids_that_do_not_exist_answer_404_listing_all_of_them(api, ids):
    response = merge(api, [998, ids["Balanced"], 999])

    assert response.status_code == 404
    assert response.json()["detail"] == "Presets 998, 999 not found"
    assert error_paths(response) == ["preset_ids[0]", "preset_ids[2]"]


def test_one_id_that_does_not_exist_answers_404(api, ids):
    response = merge(api, [ids["Balanced"], 999])

    assert response.status_code == 404
    assert response.json()["detail"] == "Preset 999 not found"


def test_a_deleted_preset_is_not_found(api, ids, user):
    gone = make_preset(name="Gone", created_by=user)
    gone_id = gone.pk
    gone.delete()

    response = merge(api, [ids["Balanced"], gone_id])

    assert response.status_code == 404
    assert str(gone_id) in response.json()["detail"]


@pytest.mark.parametrize(
    "strategy",
    [
        pytest.param("bogus", id="unknown"),
        pytest.param("UNION", id="upper-case"),
        pytest.param("last-wins", id="dash"),
        pytest.param(["union"], id="list"),
        pytest.param({"name": "union"}, id="object"),
        pytest.param(3, id="number"),
    ],
)
def test_an_unknown_strategy_answers_400_listing_the_valid_ones(api, ids, strategy):
    response = merge(api, [ids["Balanced"]], strategy)

    assert response.status_code == 400
    assert error_paths(response) == ["merge_strategy"]
    message = response.json()["errors"][0]["message"]
    for valid in ("union", "intersection", "last_wins"):
        assert valid in message


@pytest.mark.parametrize(
    "bad_id",
    [
        pytest.param("1", id="string"),
        pytest.param("abc", id="text"),
        pytest.param(1.5, id="float"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(None, id="null"),
        pytest.param([1], id="list"),
        pytest.param({"id": 1}, id="object"),
    ],
)
def test_a_non_integer_id_answers_400_at_its_index(api, ids, bad_id):
    response = merge(api, [ids["Balanced"], bad_id])

    assert response.status_code == 400
    assert error_paths(response) == ["preset_ids[1]"]


def test_an_id_written_as_a_whole_float_is_that_id(api, ids):
    # JSON has one number type: 3.0 is the integer 3, to JSON Schema and to the tasks API too.
    response = merge(api, [float(ids["Balanced"]), ids["Low Latency"]])

    assert response.status_code == 200
    assert response.json()["applied_presets"] == ["Balanced", "Low Latency"]


def test_every_problem_is_listed_at_once(api, ids):
    balanced = ids["Balanced"]

    response = merge(api, [balanced, "x", balanced, None], "bogus")

    assert response.status_code == 400
    assert error_paths(response) == ["preset_ids[1]", "preset_ids[2]", "preset_ids[3]", "merge_strategy"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([1, 2], id="array"),
        pytest.param("union", id="string"),
        pytest.param(42, id="number"),
        pytest.param(None, id="null"),
        pytest.param(True, id="boolean"),
    ],
)
def test_a_body_that_is_not_an_object_answers_400(api, ids, body):
    response = api.post(MERGE, json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"]


@pytest.mark.parametrize("huge", [2**63, 10**30], ids=["2-to-the-63", "ten-to-the-30"])
def test_an_id_too_large_for_the_database_never_answers_500(user, ids, huge):
    client = APIClient(raise_request_exception=False)
    client.force_login(user)

    response = merge(client, [ids["Balanced"], huge])

    assert response.status_code in (400, 404)


def test_a_merge_takes_at_most_fifty_presets_as_the_task_pages_do(api):
    response = merge(api, list(range(1, 52)))

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "preset_ids", "message": "at most 50 presets can be merged at once, got 51"}
    ]


def test_a_hundred_thousand_ids_are_refused_at_once_without_reading_them(api, django_assert_num_queries):
    with django_assert_num_queries(2):  # the session and its user: no preset is read
        response = merge(api, list(range(1, 100_001)))

    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "preset_ids"


def test_every_unknown_id_is_reported_at_its_index(api, ids):
    known = ids["Balanced"]
    response = merge(api, [known, *range(10**12, 10**12 + 49)])

    assert response.status_code == 404
    errors = response.json()["errors"]
    assert [error["path"] for error in errors] == [f"preset_ids[{index}]" for index in range(1, 50)]
    assert errors[0]["message"] == f"no preset with id {10**12}"


def test_a_union_bigger_than_the_grid_limit_answers_400_naming_it(api):
    # Each preset is within the limit (10^9 and 10^6 combinations); their union is 10^15.
    first = make_preset(name="Three knobs", parameters={f"knob-{index}": list(range(1000)) for index in range(3)})
    second = make_preset(name="Two knobs", parameters={f"dial-{index}": list(range(1000)) for index in range(2)})

    response = merge(api, [first.pk, second.pk], "union")

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "path": "preset_ids",
            "message": "the grid has 1,000,000,000,000,000 combinations; at most 1,000,000,000,000 (10^12) "
            "are allowed: give its flags fewer values",
        }
    ]
    assert merge(api, [first.pk, second.pk], "intersection").status_code == 200
