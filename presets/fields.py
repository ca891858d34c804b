from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

if TYPE_CHECKING:
    from django.db.models.expressions import Combinable

    # Typed as the parsed grid (what the attribute holds), not the stored text. Django's fields
    # are generic only in the stubs, hence the alias.
    _GridBase = models.TextField[dict[str, Any] | Combinable, dict[str, Any]]
else:
    _GridBase = models.TextField


class GridField(_GridBase):
    """A parameter grid, stored as JSON text.

    Not a JSONField: PostgreSQL's jsonb reorders object keys, and the order of the flags is
    the one the user wrote (and the order experiments are planned in). Nothing queries
    inside a grid, so plain text loses nothing.
    """

    description = "A parameter grid (JSON text; the order of the flags is kept)"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return value
        return json.loads(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ValidationError("Not valid JSON.", code="invalid") from None
        return value

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False)

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": forms.JSONField, **kwargs})
