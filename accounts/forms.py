from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.models import MAX_NAME_LENGTH, ApiToken


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=MAX_NAME_LENGTH,
        help_text="What uses it, e.g. “CI pipeline”, so you know which one to revoke.",
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if any(ord(char) < 32 for char in name):
            raise ValidationError("Use letters, digits, spaces and punctuation only.")
        if ApiToken.objects.of(self.user).filter(name=name).exists():
            raise ValidationError("You already have a token with this name.")
        return name
