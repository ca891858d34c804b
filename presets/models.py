from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.db.models import Q
from django.urls import reverse

from engines.checks import Finding, check_for_runtime, warnings
from presets.fields import GridField
from presets.merging import PresetInput, count_combinations
from presets.naming import NamedQuerySet, UniquelyNamed, name_key
from presets.validators import (
    InvalidParameters,
    clean_parameters,
    normalize_parameters,
    validate_metadata,
)

SYSTEM_PRESETS_FILE = Path(__file__).parent / "data" / "system_presets.json"
SUGGESTED_CATEGORIES = ["memory", "performance", "general", "custom"]
SYSTEM_READ_ONLY = "System presets are read-only; duplicate it to customise"


class Runtime(models.TextChoices):
    SGLANG = "sglang", "SGLang"
    VLLM = "vllm", "vLLM"


class OnConflict(models.TextChoices):
    FAIL = "fail", "Stop: import nothing"
    RENAME = "rename", 'Rename mine: add "(imported)"'
    REPLACE = "replace", "Replace the existing preset"


class NameTaken(Exception):
    """Names that already exist; ``clashes`` pairs the index of each new content with the preset in the way."""

    def __init__(self, clashes: list[tuple[int, ParameterPreset]]) -> None:
        super().__init__(", ".join(str(preset) for _, preset in clashes))
        self.clashes = clashes


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
    def merge_inputs(self, ids: Iterable[int]) -> dict[int, PresetInput]:
        """The merge inputs of the presets with these ids, by id (missing ids are absent).

        Hand-written SQL: the merge endpoint is hot, and compiling this query through the
        ORM cost more than the merge itself.
        """
        ids = list(ids)
        if not ids:
            return {}
        meta = self.model._meta
        quote = connection.ops.quote_name
        parameters = meta.get_field("parameters")
        placeholders = ", ".join(["%s"] * len(ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote(meta.pk.column)}, {quote('name')}, {quote(parameters.column)} "
                f"FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} IN ({placeholders})",
                ids,
            )
            rows = cursor.fetchall()
        return {pk: PresetInput(name, parameters.from_db_value(value, None, connection)) for pk, name, value in rows}

    @transaction.atomic
    def import_contents(self, contents: list[dict[str, Any]], *, on_conflict: str, by: Any) -> list[ParameterPreset]:
        """Create presets from validated contents, all or none; name clashes resolved per ``on_conflict``.

        Raises NameTaken (fail), ReadOnlyPreset or PermissionDenied (replace of a preset ``by`` may not change).
        """
        on_conflict = OnConflict(on_conflict)
        keys = [name_key(content["name"]) for content in contents]
        existing = {preset.name_key: preset for preset in self.filter(name_key__in=keys)}
        clashes = [(index, existing[key]) for index, key in enumerate(keys) if key in existing]
        if clashes and on_conflict == OnConflict.FAIL:
            raise NameTaken(clashes)
        if on_conflict == OnConflict.REPLACE:
            for _, preset in clashes:
                if preset.is_system:
                    raise ReadOnlyPreset(f'"{preset.name}" is a system preset and is never replaced.')
                if not preset.can_change(by):
                    raise PermissionDenied(f'Only the creator of "{preset.name}" or staff can replace it.')

        imported: list[ParameterPreset] = []
        for key, content in zip(keys, contents, strict=True):
            target = existing.get(key)
            if target is not None and on_conflict == OnConflict.REPLACE:
                for field, value in content.items():
                    setattr(target, field, value)
                target.save()
                imported.append(target)
                continue
            if target is not None or self.filter(name_key=key).exists():
                content = {**content, "name": self.free_name(content["name"], suffix="imported")}
            preset = self.model(**content, created_by=by if by and by.is_authenticated else None)
            preset.save()
            imported.append(preset)
        return imported

    @transaction.atomic
    def seed_system_presets(self, definitions: Iterable[Mapping[str, Any]] | None = None) -> dict[str, list[str]]:
        """Create or restore the shipped system presets. Idempotent; returns names by outcome."""
        if definitions is None:
            definitions = json.loads(SYSTEM_PRESETS_FILE.read_text())["presets"]
        outcome: dict[str, list[str]] = {"created": [], "restored": [], "unchanged": []}
        for definition in definitions:
            wanted = {
                "name": definition["name"],
                "description": definition.get("description", ""),
                "category": definition.get("category", ""),
                "runtime": definition.get("runtime", ""),
                "parameters": definition["parameters"],
                "metadata": definition.get("metadata", {}),
            }
            preset = self.filter(name_key=name_key(wanted["name"])).first()
            if preset is None:
                preset = self.model(is_system=True, **wanted)
                preset.full_clean()
                preset.save()
                outcome["created"].append(preset.name)
                continue
            if not preset.is_system:
                raise ValidationError(
                    f'A user preset is named "{preset.name}", which a system preset needs; rename it first.'
                )
            wanted["parameters"] = clean_parameters(wanted["parameters"])
            # Compared as JSON text: in Python True == 1, but a flag set to 1 instead of true has changed.
            if _as_json(preset.content()) == _as_json(wanted):
                outcome["unchanged"].append(preset.name)
                continue
            for field, value in wanted.items():
                setattr(preset, field, value)
            preset.full_clean()
            preset.save()
            outcome["restored"].append(preset.name)
        return outcome


def engine_errors(grid: dict[str, Any], runtime: str) -> list[Finding]:
    return [finding for finding in check_for_runtime(grid, runtime) if finding.level == "error"]


def clean_metadata(metadata: Any) -> dict[str, Any]:
    validate_metadata(metadata)
    return metadata or {}


class ParameterPreset(UniquelyNamed):
    description = models.TextField(blank=True)
    category = models.CharField(
        max_length=100,
        blank=True,
        db_index=True,
        help_text="Free text; suggested: " + ", ".join(SUGGESTED_CATEGORIES) + ".",
    )
    runtime = models.CharField(
        max_length=16,
        choices=Runtime.choices,
        blank=True,
        db_index=True,
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

    objects = PresetManager()

    class Meta:
        db_table = "parameter_presets"
        ordering = ["name_key"]
        verbose_name = "parameter preset"

    noun = "preset"
    checked_fields = {"parameters": clean_parameters, "metadata": clean_metadata}

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The stored grid is always the normalised one, whichever path the data came in by.
        self.parameters = clean_parameters(self.parameters)
        if self.metadata is None:
            self.metadata = {}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("presets:detail", args=[self.pk])

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.is_system:
            raise ReadOnlyPreset()
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        # The flags of a preset for one engine are checked against that engine's catalogue.
        if not self.runtime:
            return
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
        return warnings(check_for_runtime(self.parameters, self.runtime)) if self.runtime else []

    @property
    def combinations(self) -> int:
        return count_combinations(self.parameters)

    @property
    def runtime_label(self) -> str:
        return self.get_runtime_display() if self.runtime else "any"

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
        copy.save()
        return copy
