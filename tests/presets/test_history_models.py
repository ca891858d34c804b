"""Preset history and trash at the model level: versions, immutability, restore, trash, purge, seeding."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError
from django.utils import timezone

from presets.models import (
    ImmutableRevision,
    NameInUse,
    ParameterPreset,
    PresetRevision,
    PresetsNotFound,
    ReadOnlyPreset,
    RevisionEvent,
)
from presets.seeding import seed_system_presets
from tests.factories import make_preset, system_presets

pytestmark = pytest.mark.django_db


def versions(preset: ParameterPreset) -> list[int]:
    return list(preset.revisions.order_by("version").values_list("version", flat=True))


def edit(preset: ParameterPreset, *, by=None, note: str = "", **fields) -> ParameterPreset:
    for field, value in fields.items():
        setattr(preset, field, value)
    preset.save(by=by, note=note)
    return preset


# Versions


def test_a_new_preset_is_version_1_with_its_content_author_and_event(user):
    preset = make_preset(name="Fast", parameters={"tp-size": [1, 2]}, created_by=user)

    [revision] = preset.revisions.all()
    assert (preset.current_version, revision.version, revision.event) == (1, 1, RevisionEvent.CREATED)
    assert revision.created_by == user
    assert revision.content == preset.content()


def test_each_edit_that_changes_the_content_is_the_next_version_with_its_note_and_author(user, other_user):
    preset = make_preset(name="Fast", created_by=user)

    edit(preset, by=other_user, note="more GPUs", parameters={"tp-size": [1, 2, 4]})
    edit(preset, by=user, description="Now documented")

    assert versions(preset) == [1, 2, 3]
    assert ParameterPreset.objects.get(pk=preset.pk).current_version == 3
    second = preset.revisions.get(version=2)
    assert (second.note, second.created_by, second.event) == ("more GPUs", other_user, RevisionEvent.EDITED)
    assert second.parameters == {"tp-size": [1, 2, 4]}
    assert preset.revisions.get(version=3).content["description"] == "Now documented"


def test_saving_without_a_change_adds_no_version():
    preset = make_preset()

    preset.save()
    edit(preset, parameters={"tp-size": [1, 2]})  # the same grid

    assert versions(preset) == [1]


def test_a_value_of_1_instead_of_true_is_a_change():
    preset = make_preset(parameters={"enable-mixed-chunk": [True]})

    edit(preset, parameters={"enable-mixed-chunk": [1]})

    assert versions(preset) == [1, 2]


def test_numbering_is_per_preset():
    first, second = make_preset(), make_preset()
    edit(first, description="a")
    edit(first, description="b")

    edit(second, description="c")

    assert versions(first) == [1, 2, 3]
    assert versions(second) == [1, 2]


def test_a_duplicate_starts_its_own_history_saying_where_it_came_from(user):
    original = edit(make_preset(name="Base"), description="v2")

    copy = original.duplicate(by=user)

    [revision] = copy.revisions.all()
    assert revision.version == 1
    assert "“Base” version 2" in revision.note


# Immutability


def test_a_revision_cannot_be_changed_or_deleted_on_its_own():
    revision = make_preset().revisions.get()

    revision.note = "rewritten"
    with pytest.raises(ImmutableRevision):
        revision.save()
    with pytest.raises(ImmutableRevision):
        revision.delete()
    with pytest.raises(ImmutableRevision):
        PresetRevision.objects.filter(pk=revision.pk).update(note="rewritten")
    with pytest.raises(ImmutableRevision):
        PresetRevision.objects.filter(pk=revision.pk).delete()
    assert PresetRevision.objects.get(pk=revision.pk).note == ""


def test_two_revisions_cannot_share_a_version():
    preset = make_preset()

    with pytest.raises(IntegrityError):
        PresetRevision.objects.create(preset=preset, version=1, content=preset.content())


# Restore


def test_restoring_a_version_adds_a_new_version_equal_to_it(user):
    preset = make_preset(name="Fast", parameters={"tp-size": [1]})
    edit(preset, parameters={"tp-size": [2]}, description="two")
    edit(preset, parameters={"tp-size": [4]}, description="four")

    preset.restore_version(1, by=user)

    assert versions(preset) == [1, 2, 3, 4]
    fourth = preset.revisions.get(version=4)
    assert fourth.content == preset.revisions.get(version=1).content
    assert (fourth.event, fourth.created_by, fourth.note) == (RevisionEvent.RESTORED, user, "Restored version 1.")
    preset.refresh_from_db()
    assert (preset.parameters, preset.description, preset.current_version) == ({"tp-size": [1]}, "", 4)


def test_restoring_the_current_version_still_records_the_restore():
    preset = make_preset()

    preset.restore_version(1, by=None)

    assert versions(preset) == [1, 2]


def test_restoring_a_name_another_preset_took_since_is_refused_and_changes_nothing(user):
    preset = make_preset(name="Fast")
    edit(preset, name="Quick")
    make_preset(name="fast ")  # takes the old name (names compare without case and spaces)

    with pytest.raises(NameInUse):
        preset.restore_version(1, by=user)

    assert versions(preset) == [1, 2]
    assert ParameterPreset.objects.get(pk=preset.pk).name == "Quick"


def test_a_system_preset_is_never_restored_by_a_user():
    seed_system_presets(system_presets()[:1])
    preset = ParameterPreset.objects.system().get()

    with pytest.raises(ReadOnlyPreset):
        preset.restore_version(1, by=None)


def test_an_unknown_version_does_not_exist():
    with pytest.raises(PresetRevision.DoesNotExist):
        make_preset().restore_version(7, by=None)


# Trash


def test_a_trashed_preset_leaves_every_list_and_frees_its_name(user):
    preset = make_preset(name="Scratch", created_by=user)

    preset.trash(by=user)

    assert not ParameterPreset.objects.filter(pk=preset.pk).exists()
    with pytest.raises(PresetsNotFound):
        ParameterPreset.objects.merge([preset.pk], strategy="union")
    trashed = ParameterPreset.everything.get(pk=preset.pk)
    assert trashed.in_trash
    assert trashed.deleted_by == user
    assert trashed.purge_after == trashed.deleted_at + timedelta(days=30)
    assert make_preset(name="scratch").name == "scratch"
    assert versions(trashed) == [1]  # its history stays with it


def test_untrash_brings_it_back_with_its_history():
    preset = edit(make_preset(name="Scratch"), description="v2")
    preset.trash(by=None)

    preset.untrash(by=None)

    back = ParameterPreset.objects.get(pk=preset.pk)
    assert back.name == "Scratch"
    assert not back.in_trash
    assert versions(back) == [1, 2]


def test_untrash_into_a_taken_name_asks_for_a_new_one_then_records_the_rename(user):
    preset = make_preset(name="Scratch")
    preset.trash(by=user)
    make_preset(name="Scratch")

    with pytest.raises(NameInUse) as refusal:
        preset.untrash(by=user)
    assert "choose a new name" in str(refusal.value)
    assert ParameterPreset.everything.get(pk=preset.pk).in_trash

    preset.untrash(by=user, name="Scratch (old)")

    back = ParameterPreset.objects.get(pk=preset.pk)
    assert back.name == "Scratch (old)"
    assert back.revisions.get(version=2).note == "Restored from the trash as “Scratch (old)”."


def test_a_system_preset_never_goes_to_the_trash():
    seed_system_presets(system_presets()[:1])

    with pytest.raises(ReadOnlyPreset):
        ParameterPreset.objects.system().get().trash(by=None)


# Purge


def test_purge_deletes_only_what_has_been_in_the_trash_longer_than_30_days_with_its_history():
    old, recent, kept = make_preset(name="Old"), make_preset(name="Recent"), make_preset(name="Kept")
    old.trash(by=None)
    recent.trash(by=None)
    ParameterPreset.everything.filter(pk=old.pk).update(deleted_at=timezone.now() - timedelta(days=31))
    ParameterPreset.everything.filter(pk=recent.pk).update(deleted_at=timezone.now() - timedelta(days=29))
    out = StringIO()

    call_command("purge_trash", stdout=out)

    assert set(ParameterPreset.everything.values_list("name", flat=True)) == {"Recent", "Kept"}
    assert not PresetRevision.objects.filter(preset_id=old.pk).exists()
    assert PresetRevision.objects.filter(preset_id=recent.pk).exists()
    assert "Purged 1 preset(s)" in out.getvalue()
    assert kept.revisions.exists()


def test_purge_dry_run_deletes_nothing_and_a_negative_age_is_refused():
    preset = make_preset()
    preset.trash(by=None)
    out = StringIO()

    call_command("purge_trash", "--days", "0", "--dry-run", stdout=out)

    assert "Would purge 1 preset(s)" in out.getvalue()
    assert ParameterPreset.everything.filter(pk=preset.pk).exists()
    with pytest.raises(CommandError, match="--days must be 0 or more"):
        call_command("purge_trash", "--days", "-1")


# Seeding


def test_seeding_a_changed_system_preset_records_a_version_showing_the_upgrade():
    [definition] = system_presets()[:1]
    seed_system_presets([definition])
    changed = {**definition, "parameters": {**definition["parameters"], "tp-size": [1, 2, 8]}}

    seed_system_presets([changed])
    seed_system_presets([changed])  # unchanged now: no third version

    preset = ParameterPreset.objects.system().get()
    assert versions(preset) == [1, 2]
    upgrade = preset.revisions.get(version=2)
    assert upgrade.event == RevisionEvent.SEEDED
    assert upgrade.parameters["tp-size"] == [1, 2, 8]
    assert preset.revisions.get(version=1).parameters["tp-size"] == definition["parameters"]["tp-size"]
