from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from presets.models import SYSTEM_READ_ONLY, ParameterPreset, ReadOnlyPreset
from tests.factories import make_preset

pytestmark = pytest.mark.django_db


# Names


def test_name_is_stored_trimmed():
    preset = make_preset(name="  Balanced  ")

    preset.refresh_from_db()
    assert preset.name == "Balanced"
    assert preset.name_key == "balanced"


def test_full_clean_refuses_a_name_that_differs_only_in_case_and_spaces():
    make_preset(name="Balanced")
    clash = ParameterPreset(name="balanced ", parameters={"tp-size": [1]})

    with pytest.raises(ValidationError) as caught:
        clash.full_clean()

    assert caught.value.message_dict["name"] == ['A preset named "Balanced" already exists.']
    assert ParameterPreset.objects.count() == 1


def test_the_database_refuses_a_name_that_differs_only_in_case_and_spaces():
    make_preset(name="Balanced")

    with pytest.raises(IntegrityError), transaction.atomic():
        ParameterPreset(name="balanced ", parameters={"tp-size": [1]}).save()

    assert list(ParameterPreset.objects.values_list("name", flat=True)) == ["Balanced"]


def test_full_clean_accepts_the_preset_keeping_its_own_name():
    preset = make_preset(name="Balanced")
    preset.name = "BALANCED"

    preset.full_clean()
    preset.save()

    preset.refresh_from_db()
    assert preset.name == "BALANCED"


# Parameters are normalised on save


def test_flag_names_are_stored_without_dashes_prefix_and_underscores():
    preset = make_preset(parameters={"--tp_size": [1, 2], "mem_fraction_static": [0.8]})

    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [1, 2], "mem-fraction-static": [0.8]}


def test_a_bare_scalar_is_stored_as_a_one_value_list():
    preset = make_preset(parameters={"tp-size": 4, "schedule-policy": "lpm"})

    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [4], "schedule-policy": ["lpm"]}


def test_duplicate_values_keep_the_first_spelling():
    preset = make_preset(parameters={"tp-size": [1, 1.0, 2], "mem-fraction-static": [0.5, 0.50, 1.0, 1]})

    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [1, 2], "mem-fraction-static": [0.5, 1.0]}
    assert type(preset.parameters["tp-size"][0]) is int
    assert type(preset.parameters["mem-fraction-static"][1]) is float


def test_true_and_one_are_kept_as_different_values():
    preset = make_preset(parameters={"enable-mixed-chunk": [True, 1, False, 0]})

    preset.refresh_from_db()
    stored = preset.parameters["enable-mixed-chunk"]
    assert [(type(value).__name__, value) for value in stored] == [
        ("bool", True),
        ("int", 1),
        ("bool", False),
        ("int", 0),
    ]


# Validation


def test_full_clean_reports_every_problem_with_its_place():
    preset = ParameterPreset(
        name="Broken\x00name",
        parameters={"tp-size": [1, None], "Bad Flag": [1], "mem-fraction-static": []},
        metadata={"tags": ["ok", float("nan")]},
    )

    with pytest.raises(ValidationError) as caught:
        preset.full_clean()

    errors = caught.value.message_dict
    assert errors["name"] == ["control characters are not allowed in a name"]
    assert "tp-size[1]: null is not allowed" in errors["parameters"]
    assert any(message.startswith("Bad Flag: not a valid flag name") for message in errors["parameters"])
    assert "mem-fraction-static: an empty list is not allowed; give at least one value" in errors["parameters"]
    assert len(errors["parameters"]) == 3
    assert errors["metadata"] == ["tags[1]: NaN and Infinity are not allowed"]


def test_full_clean_refuses_empty_parameters_and_metadata_that_is_not_an_object():
    preset = ParameterPreset(name="Empty", parameters={}, metadata=["author", "me"])

    with pytest.raises(ValidationError) as caught:
        preset.full_clean()

    # Django's own blank check may speak first; the validator's message must be there too.
    assert "at least one parameter is required" in caught.value.message_dict["parameters"]
    assert caught.value.message_dict["metadata"] == ["expected an object, got a list"]


def test_nothing_is_written_when_full_clean_fails():
    make_preset(name="Existing")
    preset = ParameterPreset(name="New", parameters={"tp-size": [None]})

    with pytest.raises(ValidationError):
        preset.full_clean()

    assert ParameterPreset.objects.count() == 1
    assert preset.pk is None


def test_save_refuses_invalid_parameters_and_writes_nothing():
    preset = ParameterPreset(name="New", parameters={"tp-size": [1, None]})

    with pytest.raises(ValidationError) as caught:
        preset.save()

    assert caught.value.messages == ["tp-size[1]: null is not allowed"]
    assert not ParameterPreset.objects.exists()


# Queries


def test_for_runtime_returns_that_engines_presets_and_the_any_engine_ones():
    vllm = make_preset(name="vLLM only", runtime="vllm")
    make_preset(name="SGLang only", runtime="sglang")
    anywhere = make_preset(name="Any engine", runtime="")

    found = ParameterPreset.objects.for_runtime("vllm")

    assert set(found) == {vllm, anywhere}


# System presets


def test_a_system_preset_cannot_be_deleted():
    preset = make_preset(name="Balanced", is_system=True)

    with pytest.raises(ReadOnlyPreset, match=SYSTEM_READ_ONLY):
        preset.delete()

    assert ParameterPreset.objects.filter(pk=preset.pk).exists()


def test_a_user_preset_can_be_deleted():
    preset = make_preset()

    preset.delete()

    assert not ParameterPreset.objects.exists()


# Who may change a preset


def test_the_creator_can_change_their_preset(user):
    assert make_preset(created_by=user).can_change(user)


def test_another_user_cannot_change_the_preset(user, other_user):
    assert not make_preset(created_by=user).can_change(other_user)


def test_staff_can_change_anyones_preset(user, staff_user):
    assert make_preset(created_by=user).can_change(staff_user)


def test_nobody_can_change_a_system_preset(staff_user, superuser):
    preset = make_preset(is_system=True, created_by=staff_user)

    assert not preset.can_change(staff_user)
    assert not preset.can_change(superuser)


def test_an_anonymous_visitor_cannot_change_any_preset():
    assert not make_preset().can_change(AnonymousUser())
    assert not make_preset(created_by=None).can_change(AnonymousUser())


# Duplicating


def test_duplicate_copies_the_content_under_a_free_name(user):
    original = make_preset(
        name="Balanced",
        description="Both policies",
        category="general",
        runtime="sglang",
        parameters={"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]},
        metadata={"author": "system", "tags": ["general"]},
        is_system=True,
    )

    copy = original.duplicate(by=user)

    copy.refresh_from_db()
    assert copy.pk != original.pk
    assert copy.name == "Balanced (copy)"
    assert copy.description == "Both policies"
    assert copy.category == "general"
    assert copy.runtime == "sglang"
    assert copy.parameters == {"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]}
    assert copy.metadata == {"author": "system", "tags": ["general"]}
    assert copy.is_system is False
    assert copy.created_by == user
    assert copy.can_change(user)


def test_duplicating_again_numbers_the_copies(user):
    original = make_preset(name="Balanced")

    first = original.duplicate(by=user)
    second = original.duplicate(by=user)
    third = original.duplicate(by=user)

    assert [first.name, second.name, third.name] == ["Balanced (copy)", "Balanced (copy 2)", "Balanced (copy 3)"]


def test_duplicating_a_preset_with_a_name_of_the_longest_length_gives_a_name_that_fits(user):
    original = make_preset(name="x" * 255)

    copies = [original.duplicate(by=user) for _ in range(2)]

    for copy in copies:
        copy.full_clean()
        assert len(copy.name) <= 255
    assert copies[0].name.endswith(" (copy)")
    assert copies[1].name.endswith(" (copy 2)")


def test_duplicate_by_an_anonymous_visitor_has_no_creator():
    copy = make_preset(name="Balanced").duplicate(by=AnonymousUser())

    copy.refresh_from_db()
    assert copy.created_by is None


# Small properties


def test_combinations_multiplies_the_number_of_values_of_each_flag():
    preset = make_preset(parameters={"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm", "random"], "x": [True]})

    assert preset.combinations == 6


def test_str_is_the_name():
    assert str(make_preset(name="Low Latency")) == "Low Latency"


def test_presets_live_in_the_parameter_presets_table():
    assert ParameterPreset._meta.db_table == "parameter_presets"
    assert "parameter_presets" in connection.introspection.table_names()
