from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from engines import registry
from engines.catalogue import for_engine
from engines.checks import Finding, check_for_runtime, same_flag, same_value, warnings
from presets.fields import GridField
from presets.merging import (
    Conflict,
    ConflictKind,
    MergeResult,
    MergeStrategy,
    PresetInput,
    count_combinations,
    merge,
)
from presets.naming import NamedQuerySet, UniquelyNamed
from presets.validators import (
    MAX_DESCRIPTION_LENGTH,
    InvalidParameters,
    Problem,
    clean_parameters,
    normalize_parameters,
    validate_metadata,
)

SYSTEM_PRESETS_FILE = Path(__file__).parent / "data" / "system_presets.json"
TRASH_DAYS = 30  # a deleted preset can be restored for this long, then `manage.py purge_trash` removes it
SUGGESTED_CATEGORIES = ["memory", "performance", "general", "custom"]
SYSTEM_READ_ONLY = "System presets are read-only; duplicate it to customize"
# MAX_DESCRIPTION_LENGTH is checked by validation (model, form, API, import), not by the column: it
# stays a text column, so rows written before the limit still load, show and migrate.


# The engines of engines.registry, as choices: a new engine there is a new runtime here.
# django-stubs types only TextChoices("Name", "LABEL") calls, not members given as (value, label).
Runtime: type[models.TextChoices] = models.TextChoices(  # type: ignore[call-overload]
    "Runtime", [(name.upper().replace("-", "_"), (name, label)) for name, label in registry.choices()]
)


class OnConflict(models.TextChoices):
    FAIL = "fail", "Stop: import nothing"
    RENAME = "rename", 'Rename mine: add "(imported)"'
    REPLACE = "replace", "Replace the existing preset"


class NameTaken(Exception):
    """Names that already exist; ``clashes`` pairs the index of each new content with the preset in the way."""

    def __init__(self, clashes: list[tuple[int, ParameterPreset]]) -> None:
        super().__init__(", ".join(str(preset) for _, preset in clashes))
        self.clashes = clashes


class NameInUse(Exception):
    """Restoring would give a preset a name another preset has now."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Another preset is named “{name}” now; choose a new name.")
        self.name = name


class PresetsNotFound(LookupError):
    """Ids of a merge that name no preset (or one in the trash): ``missing`` pairs each one's
    index in the request with the id, in request order."""

    def __init__(self, missing: list[tuple[int, int]]) -> None:
        super().__init__(f"No preset with id {', '.join(str(pk) for _, pk in missing)}.")
        self.missing = missing


class ReadOnlyPreset(PermissionDenied):
    """Raised when a change would touch a system preset."""

    def __init__(self, message: str = SYSTEM_READ_ONLY) -> None:
        super().__init__(message)


def _as_json(content: Mapping[str, Any]) -> str:
    return json.dumps(content, sort_keys=True)


class PresetQuerySet(NamedQuerySet):
    def for_runtime(self, runtime: str) -> PresetQuerySet:
        """Presets usable with ``runtime``: that engine's and the any-engine ones."""
        return self.filter(Q(runtime=runtime) | Q(runtime=""))

    def system(self) -> PresetQuerySet:
        return self.filter(is_system=True)

    def user_made(self) -> PresetQuerySet:
        return self.filter(is_system=False)


class PresetManager(models.Manager.from_queryset(PresetQuerySet)):  # type: ignore[misc]
    """Presets not in the trash: what every page, the API and the merge see."""

    def get_queryset(self) -> PresetQuerySet:
        return super().get_queryset().filter(deleted_at__isnull=True)

    def merge(
        self, preset_ids: Sequence[int], *, strategy: MergeStrategy | str, runtime: str = ""
    ) -> tuple[MergeResult, list[dict[str, Any]]]:
        """Merge the presets with these ids in this order, and the provenance a task keeps of them
        (``[{"id", "name"}]``, in that order). The ids are checked for shape by
        ``validators.preset_id_problems``; here, only whether they exist: PresetsNotFound.
        The page, the merge API and the task API all merge through this.

        Flags that are one flag for the engine (``tp-size`` and ``tensor-parallel-size``) merge as
        one: the engine is ``runtime``, else the one engine the presets name. A preset for another
        engine than ``runtime``, or presets naming two engines, make an ``engines`` conflict."""
        ids = list(preset_ids)
        found: dict[int, PresetInput] = {}
        engines: dict[int, str] = {}
        for pk, name, parameters, preset_runtime in self.filter(pk__in=ids).values_list(
            "pk", "name", "parameters", "runtime"
        ):
            found[pk], engines[pk] = PresetInput(name, parameters), preset_runtime
        missing = [(index, pk) for index, pk in enumerate(ids) if pk not in found]
        if missing:
            raise PresetsNotFound(missing)
        inputs = [found[pk] for pk in ids]
        named = {engines[pk] for pk in ids if engines[pk]}
        if not runtime and len(named) == 1:
            runtime = next(iter(named))
        catalogue = for_engine(runtime) if runtime else None
        flags = [flag for preset in inputs for flag in preset.parameters]
        result = merge(inputs, strategy, same_flag=same_flag(flags, catalogue), same_value=same_value(flags, catalogue))
        everyone = [(found[pk].name, engines[pk]) for pk in ids]
        strangers = [(name, preset_runtime) for name, preset_runtime in everyone if preset_runtime not in ("", runtime)]
        if strangers:  # with no runtime named or inferred, every preset naming an engine
            result.conflicts.insert(0, _engines_conflict(strangers, runtime, everyone))
        return result, [{"id": pk, "name": found[pk].name} for pk in ids]


def _engines_conflict(strangers: list[tuple[str, str]], runtime: str, everyone: list[tuple[str, str]]) -> Conflict:
    """Presets for different engines: one task runs one engine, and each spells its flags its own way."""
    if runtime:
        wanted = _label(runtime)
        names = ", ".join(f"“{name}” is for {_label(other)}" for name, other in strangers)
        reason = f"{names}, not {wanted}: one task runs one engine, and each spells its flags its own way."
    else:
        by_engine: dict[str, list[str]] = {}
        for name, preset_runtime in everyone:
            if preset_runtime:
                by_engine.setdefault(_label(preset_runtime), []).append(f"“{name}”")
        reason = (
            "These presets are for different engines ("
            + "; ".join(f"{label}: {', '.join(names)}" for label, names in by_engine.items())
            + "): one task runs one engine, and each spells its flags its own way "
            "(tp-size in SGLang is tensor-parallel-size in vLLM), so their flags are not merged as one."
        )
    involved = tuple(name for name, preset_runtime in everyone if preset_runtime)
    values = {name: [preset_runtime] for name, preset_runtime in everyone if preset_runtime}
    return Conflict("runtime", ConflictKind.ENGINES, reason, involved, values)


def _label(runtime: str) -> str:
    return registry.engine(runtime).label if registry.is_engine(runtime) else runtime


def engine_errors(grid: dict[str, Any], runtime: str) -> list[Finding]:
    return [finding for finding in check_for_runtime(grid, runtime) if finding.level == "error"]


def import_engine_problems(document: object, contents: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """What a save would refuse of each imported preset (engine_errors: its engine's, or every
    engine's for any engine), at its path in the document (``presets[1].parameters.tp-size[0]``)."""
    bundle = isinstance(document, Mapping) and "presets" in document
    problems: list[Problem] = []
    for index, content in enumerate(contents):
        where = f"presets[{index}]" if bundle else "preset"
        found = engine_errors(content["parameters"], content.get("runtime") or "") if content.get("parameters") else []
        problems += [Problem(f"{where}.parameters.{finding.path}", finding.message) for finding in found]
    return problems


def clean_metadata(metadata: Any) -> dict[str, Any]:
    validate_metadata(metadata)
    return metadata or {}


class ParameterPreset(UniquelyNamed):
    description = models.TextField(
        blank=True,
        max_length=MAX_DESCRIPTION_LENGTH,
        validators=[MaxLengthValidator(MAX_DESCRIPTION_LENGTH)],
        help_text=f"Optional; at most {MAX_DESCRIPTION_LENGTH:,} characters.",
    )
    category = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text="Free text, at most 100 characters; suggested: " + ", ".join(SUGGESTED_CATEGORIES) + ".",
    )
    runtime = models.CharField(
        max_length=16,
        choices=Runtime.choices,
        blank=True,
        help_text="The engine these flags are for; empty means any engine.",
    )
    is_system = models.BooleanField(default=False, db_index=True, editable=False)
    parameters = GridField(help_text="Each flag mapped to the list of values to try.")
    metadata = models.JSONField(default=dict, blank=True, help_text="Author, tags, recommended_for, …")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="presets",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    current_version = models.PositiveIntegerField(default=0, editable=False, help_text="Its latest revision's number.")
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    objects = PresetManager()  # the default: never a preset in the trash
    everything = models.Manager.from_queryset(PresetQuerySet)()  # the trash too

    class Meta:
        db_table = "parameter_presets"
        ordering = ["name_key", "id"]
        verbose_name = "parameter preset"
        # Partial indexes on the presets in use, in the list's orders, so a page stops after its
        # rows and its count reads only an index (bench/server_bench.py). No plain index on
        # deleted_at or runtime: SQLite would prefer one (it guesses an equality is selective)
        # and sort every matching row for a 100-row page.
        indexes = [
            models.Index(fields=["name_key"], condition=Q(deleted_at__isnull=True), name="preset_live_name_idx"),
            models.Index(
                fields=["category", "name_key"], condition=Q(deleted_at__isnull=True), name="preset_live_category_idx"
            ),
            models.Index(
                fields=["category", "runtime"], condition=Q(deleted_at__isnull=True), name="preset_live_runtime_idx"
            ),
            models.Index(
                fields=["-is_system", "name_key"], condition=Q(deleted_at__isnull=True), name="preset_live_system_idx"
            ),
            models.Index(fields=["deleted_at"], condition=Q(deleted_at__isnull=False), name="preset_trash_idx"),
        ]

    noun = "preset"
    checked_fields = {"parameters": clean_parameters, "metadata": clean_metadata}

    def save(self, *args: Any, by: Any = None, note: str = "", event: str = "", **kwargs: Any) -> None:
        """Save, and record a revision when the content changed (always for a restore).

        ``by`` (a user) and ``note`` are written on that revision; ``event`` says how it came
        (RevisionEvent; by default created or edited).
        """
        # The stored grid is always the normalised one, whichever path the data came in by.
        self.parameters = clean_parameters(self.parameters)
        if self.metadata is None:
            self.metadata = {}
        with transaction.atomic():
            super().save(*args, **kwargs)
            if self.deleted_at is None:
                self._record_revision(by=by, note=note, event=event)

    def _record_revision(self, *, by: Any, note: str, event: str) -> PresetRevision | None:
        # The row lock numbers concurrent edits 1, 2, 3 … on PostgreSQL (SQLite's write lock already does).
        type(self).everything.select_for_update().filter(pk=self.pk).values_list("pk", flat=True).first()
        latest = self.revisions.order_by("-version").first()
        content = self.content()
        if latest is not None and event != RevisionEvent.RESTORED and _as_json(latest.content) == _as_json(content):
            return None  # nothing changed: no new version
        if not event:
            event = RevisionEvent.EDITED if latest is not None else RevisionEvent.CREATED
        author = by if by is not None and getattr(by, "is_authenticated", False) else None
        if author is None and latest is None:
            author = self.created_by
        revision = PresetRevision.objects.create(
            preset=self,
            version=(latest.version if latest is not None else 0) + 1,
            content=content,
            event=event,
            note=note.strip()[:MAX_NOTE_LENGTH],
            created_by=author,
        )
        type(self).everything.filter(pk=self.pk).update(current_version=revision.version)
        self.current_version = revision.version
        return revision

    @property
    def holds_name(self) -> bool:
        return self.deleted_at is None

    @property
    def in_trash(self) -> bool:
        return self.deleted_at is not None

    def restore_version(self, version: int, *, by: Any, note: str = "") -> PresetRevision:
        """Make ``version``'s content current again, as a new version (history only grows).

        Raises PresetRevision.DoesNotExist, ReadOnlyPreset, or NameInUse when another preset took its name.
        """
        if self.is_system:
            raise ReadOnlyPreset()
        revision = self.revisions.get(version=version)
        content = revision.content
        if type(self).objects.named(content["name"]).exclude(pk=self.pk).exists():
            raise NameInUse(content["name"])
        for field, value in content.items():
            setattr(self, field, value)
        self.save(by=by, note=note or f"Restored version {version}.", event=RevisionEvent.RESTORED)
        return self.revisions.latest("version")

    def trash(self, *, by: Any) -> None:
        """Move to the trash: gone from every list, its name free, restorable for TRASH_DAYS days."""
        if self.is_system:
            raise ReadOnlyPreset()
        self.deleted_at = timezone.now()
        self.deleted_by = by if by is not None and getattr(by, "is_authenticated", False) else None
        self.save(update_fields=["deleted_at", "deleted_by", "name_key"])

    def untrash(self, *, by: Any, name: str | None = None) -> None:
        """Bring back from the trash, under ``name`` if given; raises NameInUse if the name is taken."""
        wanted = (name if name is not None else self.name).strip()
        if type(self).objects.named(wanted).exists():
            raise NameInUse(wanted)
        renamed = wanted != self.name
        self.name = wanted
        self.deleted_at = None
        self.deleted_by = None
        note = f"Restored from the trash as “{wanted}”." if renamed else ""
        self.save(by=by, note=note)

    @property
    def purge_after(self) -> Any:
        return self.deleted_at + timedelta(days=TRASH_DAYS) if self.deleted_at else None

    def get_absolute_url(self) -> str:
        return reverse("presets:detail", args=[self.pk])

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        """Delete for good, with its history (``trash`` is what users do; the purge ends here)."""
        if self.is_system:
            raise ReadOnlyPreset()
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        # The flags are checked against the preset's engine's catalogue, or every engine's for any engine.
        try:
            grid = normalize_parameters(self.parameters)
        except InvalidParameters:
            return  # already reported by clean_fields
        if grid:
            found = engine_errors(grid, self.runtime)
            if found:
                raise ValidationError({"parameters": [str(finding) for finding in found]})

    @property
    def engine_warnings(self) -> list[Finding]:
        return warnings(check_for_runtime(self.parameters, self.runtime))

    @property
    def combinations(self) -> int:
        return count_combinations(self.parameters)

    @property
    def runtime_label(self) -> str:
        return self.get_runtime_display() if self.runtime else "Any engine"

    def can_change(self, user: Any) -> bool:
        """Edit, replace and delete rights: the creator and staff, never for a system preset."""
        if self.is_system or not user.is_authenticated:
            return False
        return user.is_staff or self.created_by_id == user.pk

    def as_merge_input(self) -> PresetInput:
        return PresetInput(self.name, self.parameters)

    def content(self) -> dict[str, Any]:
        """The fields that define a preset, as exported and imported."""
        return {
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "runtime": self.runtime,
            "parameters": self.parameters,
            "metadata": self.metadata or {},
        }

    def duplicate(self, *, by: Any) -> ParameterPreset:
        """A user-owned copy named "<name> (copy)", free to edit."""
        content = self.content()
        content["name"] = type(self).objects.free_name(self.name, suffix="copy")
        copy = type(self)(**content, created_by=by if by and by.is_authenticated else None)
        copy.save(by=by, note=f"A copy of “{self.name}” version {self.current_version}.")
        return copy


MAX_NOTE_LENGTH = 500


class RevisionEvent(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    RESTORED = "restored", "Restored"
    IMPORTED = "imported", "Imported"
    SEEDED = "seeded", "System update"


class ImmutableRevision(Exception):
    """Revisions are history: written once, never changed or deleted (but with their preset)."""


class RevisionQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise ImmutableRevision("Preset revisions cannot be changed.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableRevision("Preset revisions are deleted only with their preset.")


class PresetRevision(models.Model):
    """One version of a preset: its whole content as it was, who made it, when and why."""

    preset = models.ForeignKey(ParameterPreset, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    # name, description, category, runtime, parameters, metadata: as JSON text, the flag order kept
    content = GridField()
    event = models.CharField(max_length=16, choices=RevisionEvent.choices, default=RevisionEvent.EDITED)
    note = models.CharField(
        max_length=MAX_NOTE_LENGTH,
        blank=True,
        help_text=f"Why it changed (optional, at most {MAX_NOTE_LENGTH} characters).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # An imported version is credited to whoever imported it; the author its file named is kept as
    # text only, so that a file can never credit a local user with work they did not do.
    author_in_file = models.CharField(max_length=150, blank=True, help_text="The author an imported file named.")

    objects = RevisionQuerySet.as_manager()

    class Meta:
        ordering = ["preset", "-version"]
        constraints = [models.UniqueConstraint(fields=["preset", "version"], name="revision_version_unique")]

    def __str__(self) -> str:
        return f"{self.content.get('name', self.preset_id)} v{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ImmutableRevision("Preset revisions cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableRevision("Preset revisions are deleted only with their preset.")

    @property
    def parameters(self) -> dict[str, list[Any]]:
        return self.content.get("parameters", {})
