"""Checks of a task's own fields, shared by the model, the form and the API serializer."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

MAX_CONCURRENCY_LEVELS = 20
MAX_CONCURRENCY = 100_000


def clean_concurrency_levels(value: Any) -> list[int]:
    """A list of 1 to 20 distinct positive integers (a comma-separated string is accepted too)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        try:
            value = [int(part) for part in parts]
        except ValueError:
            raise ValidationError("Give whole numbers separated by commas, e.g. 1, 8, 32.") from None
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one concurrency level, e.g. 1, 8, 32.")
    if len(value) > MAX_CONCURRENCY_LEVELS:
        raise ValidationError(f"At most {MAX_CONCURRENCY_LEVELS} concurrency levels.")
    problems = [
        f"[{index}]: {level!r} is not a whole number from 1 to 100000"
        for index, level in enumerate(value)
        if type(level) is not int or not 1 <= level <= MAX_CONCURRENCY
    ]
    if problems:
        raise ValidationError(problems)
    return sorted(set(value))
