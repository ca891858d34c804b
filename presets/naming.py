"""Unique, human names for presets and tasks: compared without case or surrounding spaces.

Both models keep a ``name_key`` (trimmed, case-folded) with a unique index, so "Balanced"
and "balanced " cannot both exist, on SQLite and PostgreSQL alike (their lower() differ on
non-ASCII letters; Python's casefold does not).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

from django.core.exceptions import ValidationError
from django.db import models

from presets.validators import MAX_NAME_LENGTH, messages, name_problems


def name_key(name: str) -> str:
    """What two names are compared by: trimmed and case-folded, so "Balanced" = "balanced "."""
    return name.strip().casefold()


class NamedQuerySet(models.QuerySet):
    def named(self, name: str) -> NamedQuerySet:
        return self.filter(name_key=name_key(name))

    def free_name(self, name: str, *, suffix: str) -> str:
        """``name (suffix)``, then ``name (suffix 2)``, … : the first one nobody has taken."""
        # Shortened so the numbered name still fits in the column.
        base = name.strip()[: MAX_NAME_LENGTH - len(suffix) - 10].rstrip()
        candidate = f"{base} ({suffix})"
        taken = set(self.filter(name_key__startswith=name_key(f"{base} ({suffix}")).values_list("name_key", flat=True))
        number = 1
        while name_key(candidate) in taken:
            number += 1
            candidate = f"{base} ({suffix} {number})"
        return candidate


class UniquelyNamed(models.Model):
    """A model with a unique name and JSON fields checked by the shared validators.

    ``checked_fields`` maps a field to the function that validates and normalises it (raising
    ValidationError); clean_fields runs them, each error listed under its field.
    """

    name = models.CharField(
        max_length=MAX_NAME_LENGTH, help_text="Unique, compared without case or surrounding spaces."
    )
    # Null for a row that holds no name (a preset in the trash): its name is free for others.
    name_key = models.CharField(max_length=1024, unique=True, null=True, editable=False)

    checked_fields: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    noun: ClassVar[str] = "name"  # as in 'A task named "X" already exists.'

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name = self.name.strip()
        self.name_key = name_key(self.name) if self.holds_name else None
        super().save(*args, **kwargs)

    @property
    def holds_name(self) -> bool:
        """Whether this row keeps its name from others (a trashed preset does not)."""
        return True

    def clean_fields(self, exclude: Any = None) -> None:
        # Fields a form already rejected are excluded: their errors would only repeat.
        exclude = set(exclude or ())
        errors: dict[str, list[ValidationError]] = {}
        try:
            super().clean_fields(exclude=exclude | set(self.checked_fields))
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if "name" not in exclude and "name" not in errors:
            self.name, problems = name_problems(self.name)
            if problems:
                errors["name"] = [ValidationError(message) for message in messages(problems)]
        for field, check in self.checked_fields.items():
            if field not in exclude:
                try:
                    setattr(self, field, check(getattr(self, field)))
                except ValidationError as error:
                    errors[field] = [ValidationError(message) for message in error.messages]
        if errors:
            raise ValidationError(errors)

    def validate_unique(self, exclude: Any = None) -> None:
        super().validate_unique(exclude=exclude)
        if exclude and "name" in exclude:
            return
        # Every subclass's default manager is built on NamedQuerySet.
        named = cast(NamedQuerySet, type(self)._default_manager.all())
        existing = named.named(self.name).exclude(pk=self.pk).first()
        if existing is not None:
            raise ValidationError({"name": [f'A {self.noun} named "{existing}" already exists.']})
