from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from presets.models import ParameterPreset
from presets.validators import clean_parameters, validate_metadata


class JSONTextField(forms.JSONField):
    """A JSON textarea that keeps what the user typed on error and says where JSON breaks."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 12, "class": "json-editor", "spellcheck": "false"}))
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if self.disabled or not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as error:
            raise ValidationError(
                f"Not valid JSON: {error.msg} (line {error.lineno}, column {error.colno}).", code="invalid"
            ) from None
        except ValueError as error:  # e.g. an integer literal with thousands of digits
            raise ValidationError(f"Not valid JSON: {error}.", code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        return initial if self.disabled else data  # the raw text, exactly as typed

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class ParametersField(JSONTextField):
    """The parameters grid: JSON parsed, then normalised by the shared validator."""

    def to_python(self, value: Any) -> Any:
        parsed = super().to_python(value)
        if parsed is None:
            raise ValidationError('Give at least one parameter, e.g. {"tp-size": [1, 2]}.', code="required")
        return clean_parameters(parsed)


class MetadataField(JSONTextField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        parsed = super().to_python(value)
        if parsed is None:
            return {}
        validate_metadata(parsed)
        return parsed


class PresetForm(forms.ModelForm):
    parameters = ParametersField(help_text='Each flag and the values to try, e.g. {"tp-size": [1, 2]}.')
    metadata = MetadataField(help_text='Optional, e.g. {"author": "me", "tags": ["memory"]}.')

    class Meta:
        model = ParameterPreset
        fields = ["name", "description", "category", "runtime", "parameters", "metadata"]
