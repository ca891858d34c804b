from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.urls import reverse
from rest_framework.exceptions import APIException

from autotuner.http import parse_json
from engines.checks import check_for_runtime, errors, warnings
from presets.exchange import MAX_IMPORT_SIZE
from presets.merging import count_combinations
from presets.models import MAX_NOTE_LENGTH, OnConflict, ParameterPreset, Runtime
from presets.validators import MAX_NAME_LENGTH, RUNTIMES, Problem, clean_parameters, listed, validate_metadata

NAME_HELP = f"Unique, compared without case or surrounding spaces; at most {MAX_NAME_LENGTH} characters."


def printable(text: str) -> str:
    """Text a page can hold: a lone surrogate (which a JSON escape such as \\ud800 gives, and UTF-8
    cannot encode) written as its escape, as the API's renderer writes it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class JSONEditor(forms.Textarea):
    """A JSON textarea as tall as its text: a line per line and one to type on, within EDITOR_ROWS,
    so a blank editor stays small and a long grid scrolls inside the editor."""

    EDITOR_ROWS = (4, 30)

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"class": "json-editor", "spellcheck": "false", **(attrs or {})})

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        low, high = self.EDITOR_ROWS
        context["widget"]["attrs"]["rows"] = max(
            low, min(high, len(str(context["widget"]["value"] or "").splitlines()) + 1)
        )
        return context


class JSONTextField(forms.JSONField):
    """A JSON textarea that keeps what the user typed on error and says where JSON breaks."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("widget", JSONEditor())
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> Any:
        if self.disabled or not isinstance(value, str):
            return value
        if not value.strip():
            return None
        try:  # the API's parser: bounded in depth, so 2,000 nested arrays are a message, not a crash
            return parse_json(value.encode("utf-8", "surrogatepass"))
        except APIException as error:
            raise ValidationError(str(error.detail), code="invalid") from None

    def clean(self, value: Any) -> Any:
        try:
            return super().clean(value)
        except ValidationError as error:  # a message may quote a flag named with a JSON escape
            shown = listed([Problem("", message) for message in error.messages])
            raise ValidationError([printable(str(problem)) for problem in shown], code="invalid") from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        return initial if self.disabled else data  # the raw text, exactly as typed

    def prepare_value(self, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


def format_grid(grid: dict[str, Any]) -> str:
    """A grid as JSON text for the editor: one flag per line, its values on that line."""
    lines = [f"  {json.dumps(flag)}: {json.dumps(values, ensure_ascii=False)}" for flag, values in grid.items()]
    return "{\n" + ",\n".join(lines) + "\n}" if lines else "{}"


class ParametersField(JSONTextField):
    """The parameters grid: JSON parsed, then normalised by the shared validator."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return format_grid(value)
        return super().prepare_value(value)

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
    # The preset's updated_at when the form was opened: a save over someone else's is refused.
    version = forms.CharField(widget=forms.HiddenInput, required=False)
    # Not a model field: the view writes it on the revision this save records. Declared last,
    # so it renders just above the Save button.
    change_note = forms.CharField(
        required=False,
        max_length=MAX_NOTE_LENGTH,
        help_text=f"Why you changed it; shown in the history. At most {MAX_NOTE_LENGTH} characters.",
    )

    class Meta:
        model = ParameterPreset
        fields = ["name", "description", "category", "runtime", "parameters", "metadata"]
        help_texts = {"name": NAME_HELP}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "metadata": JSONEditor(),
            "category": forms.TextInput(attrs={"list": "category-suggestions", "autocomplete": "off"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The admin's read-only view of a system preset builds this form with no fields.
        if "runtime" in self.fields:
            cast(forms.ChoiceField, self.fields["runtime"]).choices = [("", "Any engine"), *Runtime.choices]
        if "parameters" in self.fields:
            # The live check: on a pause in typing, the editor's text goes to the preview view.
            self.fields["parameters"].widget.attrs.update(
                {
                    "hx-post": reverse("presets:preview"),
                    "hx-trigger": "input changed delay:300ms",
                    "hx-target": "#parameters-preview",
                    "hx-swap": "outerHTML",
                    "hx-sync": "this:replace",
                    "aria-describedby": "id_parameters_helptext parameters-preview",
                }
            )
        if self.instance.pk and not self.is_bound:
            self.initial["version"] = self.instance.updated_at.isoformat()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Checked when the form was sent with the version it opened (the pages always send it).
        if self.instance.pk and "version" in self.data:
            stored = type(self.instance).objects.filter(pk=self.instance.pk)
            current = stored.values_list("updated_at", flat=True).first()
            if current is not None and cleaned.get("version") != current.isoformat():
                # Show the current version in the re-rendered form: saving again is a deliberate overwrite.
                data = cast(QueryDict, self.data).copy()
                data["version"] = current.isoformat()
                self.data = data
                raise ValidationError(
                    "Someone else saved this preset since you opened it. Nothing was saved; your text is kept "
                    "below. Open the preset in another tab to compare, or save again to replace their version "
                    "with yours.",
                    code="stale",
                )
        return cleaned


class ImportForm(forms.Form):
    file = forms.FileField(
        label="Preset file",
        required=False,  # not when the document of a refused try is kept (clean says so)
        help_text="A JSON document exported from autotuner: one preset or a bundle, at most 1 MiB.",
    )
    on_conflict = forms.ChoiceField(
        label="If a name is already taken",
        choices=OnConflict.choices,
        initial=OnConflict.FAIL,
        widget=forms.RadioSelect,
    )
    # A browser never fills a file input again: the document of a refused try rides along here,
    # so the next try (another conflict choice, say) needs no new choice of the file.
    document = forms.CharField(widget=forms.HiddenInput, required=False, strip=False)
    document_name = forms.CharField(widget=forms.HiddenInput, required=False)

    def clean(self) -> dict[str, Any]:
        """``content`` (the document's bytes) and ``name``: the chosen file's, or the kept document's."""
        cleaned = super().clean() or {}
        upload, kept = cleaned.get("file"), cleaned.get("document")
        if upload:  # its size is known before it is read
            size, name = upload.size, upload.name
        elif kept:
            content = kept.encode("utf-8", "surrogatepass")
            size, name = len(content), cleaned.get("document_name") or "the file"
        else:
            if "file" not in self.errors:  # an empty file says so itself
                self.add_error("file", self.fields["file"].error_messages["required"])
            return cleaned
        if size > MAX_IMPORT_SIZE:
            self.add_error("file", f"The file is {size:,} bytes; at most 1 MiB (1,048,576 bytes) is accepted.")
            return cleaned
        cleaned["content"], cleaned["name"] = upload.read() if upload else content, name
        return cleaned

    def keep_document(self) -> None:
        """After a refusal: keep the document for the next try, and say so beside the file input."""
        content, name = self.cleaned_data["content"], self.cleaned_data["name"]
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if not text or "\x00" in text:  # not text a form field can carry back
            self["file"].help_text = "Choose the file again to import it, once it is fixed."
            return
        data = cast(QueryDict, self.data).copy()
        data["document"], data["document_name"] = text, name
        self.data = data
        self["file"].help_text = (  # the bound field's: it was made while the form was checked
            f"Still chosen: “{name}” ({len(content):,} bytes), kept from your last try. Import again to use "
            "it, or choose another file."
        )


def preview_parameters(text: Any, runtime: str = "") -> dict[str, Any]:
    """What the live preview shows for the editor's text: the normalised grid, or every problem,
    and with an engine chosen, what that engine would refuse or not know."""
    field = ParametersField()
    if not isinstance(text, str):
        text = field.prepare_value(text)
    if not text or not text.strip():
        return {"problems": ["Type the parameters as a JSON object."], "grid": None}
    try:
        grid = field.clean(text)
    except ValidationError as error:
        return {"problems": error.messages, "grid": None}
    findings = check_for_runtime(grid, runtime) if runtime in ("", *RUNTIMES) else []
    return {
        "problems": [],
        "grid": grid,
        "combinations": count_combinations(grid),
        "findings": findings,
        # The summary line tells the worst of them: an error blocks the save, warnings do not.
        "errors": len(errors(findings)),
        "warnings": len(warnings(findings)),
    }
