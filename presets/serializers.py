"""The presets API's shapes: they validate what comes in and write what goes out.

Each checked field calls the one validator in ``presets.validators`` (as the model, the forms and
import do) and reports every problem at its JSON path: a problem at ``tp-size[1]`` in the
parameters is ``parameters.tp-size[1]`` in the error body (``autotuner.http``). The schema each
field declares is what that validator accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from presets.merging import MergeStrategy
from presets.models import MAX_NOTE_LENGTH, ParameterPreset, PresetRevision, RevisionEvent, engine_errors
from presets.validators import (
    FLAG_NAME_PATTERN,
    MAX_FLAG_LENGTH,
    MAX_MERGE_PRESETS,
    MAX_METADATA_SIZE,
    MAX_NAME_LENGTH,
    MAX_PARAMETERS,
    MAX_STRING_LENGTH,
    MAX_VALUES,
    RUNTIMES,
    InvalidParameters,
    Problem,
    describe_type,
    metadata_problems,
    name_problems,
    normalize_parameters,
    note_problems,
    preset_id_problems,
    text_problems,
)

CHANGE_NOTE_HELP = f"Why it changed, kept on the new version (optional, at most {MAX_NOTE_LENGTH} characters)."
MAX_ID = 2**63 - 1
# Text the database can store: no NUL (PostgreSQL's jsonb refuses it; lone surrogates cannot
# travel in UTF-8 JSON at all).
STORABLE_TEXT = r"^[^\u0000]*$"
NAME_PATTERN = r"^[^\u0000-\u001f\u007f]*[^\u0000-\u0020\u007f][^\u0000-\u001f\u007f]*$"
RUNTIME_HELP = "The engine these flags are for; null (or empty) means any engine."

SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_STRING_LENGTH, "pattern": STORABLE_TEXT},
        {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
        {"type": "number"},
        {"type": "boolean"},
    ]
}
GRID_SCHEMA: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": MAX_PARAMETERS,
    "propertyNames": {"pattern": FLAG_NAME_PATTERN, "maxLength": MAX_FLAG_LENGTH + 2},
    "additionalProperties": {
        "anyOf": [{"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": SCALAR_SCHEMA}, SCALAR_SCHEMA]
    },
    "description": (
        "Each flag mapped to the list of values to try (a single value is a list of one). Flags are "
        'written as the engine spells them; a leading "--" is dropped and "_" becomes "-", so '
        '"--tp_size" is "tp-size" and may not be given next to it. Values repeat at most once '
        "(1 and 1.0 are one value). A preset for one engine must use values that engine accepts "
        "(its catalogue, /api/engines/): others answer 400 at `parameters.<flag>[i]`."
    ),
}
GRID_OUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": SCALAR_SCHEMA},
}


def problem_detail(problems: list[Problem]) -> Any:
    """Problems as a ValidationError's detail, every one under its path (``""``: the field itself)."""
    if all(not problem.path for problem in problems):
        return [problem.message for problem in problems]
    detail: dict[str, list[str]] = {}
    for problem in problems:
        detail.setdefault(problem.path, []).append(problem.message)
    return detail


def refuse(problems: list[Problem], under: str = "") -> None:
    if problems:
        raise serializers.ValidationError(problem_detail([problem.under(under) for problem in problems]))


class CheckedField(serializers.Field):
    """A field checked by one of presets.validators' functions, ``check(data) -> (value, problems)``.

    Null reaches the check too: each one says what null means for it.
    """

    default_error_messages = {"required": "this field is required"}
    check: Callable[[Any], tuple[Any, list[Problem]]]

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty or (data is None and self.allow_null):
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data: Any) -> Any:
        value, problems = type(self).check(data)
        refuse(problems)
        return value

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN})
class NameField(CheckedField):
    """A preset name, trimmed; unique ignoring case and spaces (a clash answers 409)."""

    check = staticmethod(name_problems)


def _nullable_text(limit: int | None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "nullable": True, "pattern": STORABLE_TEXT}
    if limit:
        schema["maxLength"] = limit
    return schema


@extend_schema_field(_nullable_text(None))
class DescriptionField(CheckedField):
    check = staticmethod(lambda value: text_problems(value, limit=None))


@extend_schema_field(_nullable_text(100))
class CategoryField(CheckedField):
    check = staticmethod(lambda value: text_problems(value, limit=100))


@extend_schema_field(_nullable_text(MAX_NOTE_LENGTH))
class ChangeNoteField(CheckedField):
    check = staticmethod(lambda value: note_problems(value, limit=MAX_NOTE_LENGTH))


@extend_schema_field({**GRID_SCHEMA, "writeOnly": False})
class GridField(CheckedField):
    """The parameters grid, normalised by ``validators.normalize_parameters``."""

    @staticmethod
    def check(data: Any) -> tuple[Any, list[Problem]]:
        try:
            return normalize_parameters(data), []
        except InvalidParameters as error:
            return None, error.problems


def _metadata(data: Any) -> tuple[Any, list[Problem]]:
    return data or {}, metadata_problems(data)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "additionalProperties": True,
        "description": f"Free-form: author, tags, recommended_for, … (nested at most 10 levels, "
        f"{MAX_METADATA_SIZE // 1024} KiB of text, no NUL).",
    }
)
class MetadataField(CheckedField):
    check = staticmethod(_metadata)


class RuntimeField(serializers.ChoiceField):
    """An engine, or null for any engine (stored as ""); shown as null."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", RUNTIME_HELP)
        super().__init__(
            choices=[(runtime, runtime) for runtime in RUNTIMES], allow_null=True, allow_blank=True, **kwargs
        )
        self.error_messages["invalid_choice"] = '"{input}" is not a runtime; expected "sglang", "vllm" or null (any)'

    def to_internal_value(self, data: Any) -> str:
        if data is None or data == "":
            return ""
        if not isinstance(data, str):
            self.fail("invalid_choice", input=describe_type(data))
        return super().to_internal_value(data)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, ""
        return super().validate_empty_values(data)

    def to_representation(self, value: Any) -> str | None:
        return value or None


class ObjectSerializer(serializers.Serializer):
    default_error_messages = {"invalid": "expected an object, got {datatype}"}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            message = self.error_messages["invalid"].format(datatype=describe_type(data))
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]}, code="invalid")
        return super().to_internal_value(data)


class PresetSerializer(ObjectSerializer, serializers.ModelSerializer):
    """A preset as the API shows it, and the fields a create or an update may send."""

    name = NameField()
    description = DescriptionField(required=False, default="")
    category = CategoryField(required=False, default="")
    runtime = RuntimeField(required=False, default="")
    is_system = serializers.BooleanField(read_only=True)
    parameters = GridField()
    metadata = MetadataField(required=False, default=dict)
    version = serializers.IntegerField(
        source="current_version", read_only=True, help_text="The current version's number (see /versions)."
    )
    change_note = ChangeNoteField(write_only=True, required=False, help_text=CHANGE_NOTE_HELP)

    class Meta:
        model = ParameterPreset
        fields = [
            "id",
            "name",
            "description",
            "category",
            "runtime",
            "is_system",
            "parameters",
            "metadata",
            "created_at",
            "updated_at",
            "version",
            "change_note",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Values the preset's engine refuses (its catalogue): 400 at ``parameters.<flag>[i]``.
        Flags the engine does not know are only warnings, shown with the answer."""
        instance = self.instance
        parameters = attrs.get("parameters", instance.parameters if instance else {})
        runtime = attrs.get("runtime", instance.runtime if instance else "")
        if runtime and parameters:
            found = engine_errors(parameters, runtime)
            refuse([Problem(finding.path, finding.message) for finding in found], "parameters")
        return attrs


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text='Where, as a JSON path (e.g. "parameters.tp-size[1]"); "" for the whole.')
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ProblemSerializer(many=True, required=False)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "minItems": 1,
        "maxItems": MAX_MERGE_PRESETS,
        "uniqueItems": True,
        "description": "Merged in this order.",
    }
)
class PresetIdsField(serializers.Field):
    """A list of preset ids, passed as it came to ``validate_preset_ids``."""

    default_error_messages = {"required": "this field is required: a list of preset ids, in merge order"}

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty:
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class MergeRequestSerializer(ObjectSerializer):
    preset_ids = PresetIdsField()
    merge_strategy = serializers.ChoiceField(
        choices=[s.value for s in MergeStrategy], default=MergeStrategy.UNION.value, allow_null=True, allow_blank=True
    )
    runtime = RuntimeField(
        required=False,
        default="",
        help_text="Merge for this engine: its aliases are one flag, and `warnings` says what it would refuse.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["merge_strategy"].error_messages["invalid_choice"] = (
            "unknown strategy {input}; expected one of " + ", ".join(s.value for s in MergeStrategy)
        )

    def validate_preset_ids(self, value: Any) -> list[int]:
        refuse(preset_id_problems(value))
        return list(value)

    def validate_merge_strategy(self, value: str | None) -> MergeStrategy:
        return MergeStrategy(value or MergeStrategy.UNION)


class ConflictSerializer(serializers.Serializer):
    parameter = serializers.CharField()
    kind = serializers.ChoiceField(choices=["disjoint", "missing", "no_common_values", "overridden"])
    reason = serializers.CharField()
    presets = serializers.ListField(child=serializers.CharField())
    values = serializers.DictField(required=False)
    overridden_by = serializers.CharField(required=False)
    previous_values = serializers.ListField(child=serializers.JSONField(), required=False)
    new_values = serializers.ListField(child=serializers.JSONField(), required=False)


class FindingSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=["error", "warning"])
    path = serializers.CharField()
    message = serializers.CharField()


@extend_schema_field(GRID_OUT_SCHEMA)
class GridOutField(serializers.DictField):
    pass


class MergeResultSerializer(serializers.Serializer):
    parameters = GridOutField()
    applied_presets = serializers.ListField(child=serializers.CharField())
    conflicts = ConflictSerializer(many=True)
    sources = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
        help_text="Per flag, aligned with its values: the presets each value came from.",
    )
    combinations = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField(), required=False)
    warnings = FindingSerializer(many=True, required=False)


class PresetContentSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    runtime = serializers.CharField(required=False, allow_blank=True)
    parameters = GridOutField()
    metadata = serializers.DictField(required=False)


class HistoryEntrySerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="Strictly increasing, oldest first.")
    event = serializers.ChoiceField(
        choices=RevisionEvent.choices, required=False, help_text='By default "created" first, "edited" after.'
    )
    note = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=MAX_NOTE_LENGTH)
    created_by = serializers.CharField(
        required=False, allow_null=True, help_text="A username; credited only if such a user exists here."
    )
    created_at = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO 8601; UTC if no offset.")
    content = PresetContentSerializer()


class ExportedPresetSerializer(PresetContentSerializer):
    history = HistoryEntrySerializer(
        many=True,
        required=False,
        help_text=(
            "Its versions (export with ?history=true). On import a new preset gets them as they were; "
            "a replaced one keeps its own history and gains one version."
        ),
    )


class ExportDocumentSerializer(serializers.Serializer):
    version = serializers.CharField()
    preset = ExportedPresetSerializer(required=False)
    presets = ExportedPresetSerializer(many=True, required=False)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A preset or bundle document, at most 1 MiB.")


class PresetVersionSerializer(serializers.ModelSerializer):
    """One version of a preset; ``current`` needs the preset's current version in the context."""

    event = serializers.ChoiceField(choices=RevisionEvent.choices, help_text="How this version came about.")
    created_by = serializers.CharField(
        source="created_by.get_username", allow_null=True, help_text="The username, or null (the system, or gone)."
    )
    current = serializers.SerializerMethodField(help_text="Whether this is the preset's current version.")
    content = PresetContentSerializer(help_text='The preset as it was, as exported (runtime "" for any engine).')

    class Meta:
        model = PresetRevision
        fields = ["version", "event", "note", "created_by", "created_at", "current", "content"]

    def get_current(self, revision: PresetRevision) -> bool:
        return revision.version == self.context["current_version"]


class ChangeNoteSerializer(ObjectSerializer):
    default_error_messages = {"invalid": 'expected an object like {{"change_note": "…"}}, got {datatype}'}

    change_note = ChangeNoteField(required=False, help_text=CHANGE_NOTE_HELP)


class ParameterChangeSerializer(serializers.Serializer):
    flag = serializers.CharField()
    added = serializers.ListField(child=serializers.JSONField(), help_text="Values only in the later version.")
    removed = serializers.ListField(child=serializers.JSONField(), help_text="Values only in the earlier version.")
    reordered = serializers.BooleanField(help_text="The same values in another order.")


class ParameterChangesSerializer(serializers.Serializer):
    added = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField()), help_text="Flags only in `to`, with their values."
    )
    removed = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField()), help_text="Flags only in `from`, with their values."
    )
    changed = ParameterChangeSerializer(many=True)


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.ChoiceField(choices=["name", "description", "category", "runtime", "metadata"])
    old = serializers.JSONField()
    new = serializers.JSONField()


class PresetDiffSerializer(serializers.Serializer):
    to = serializers.IntegerField()
    summary = serializers.CharField(help_text='One line, e.g. "1 flag added, 2 changed; name changed".')
    parameters = ParameterChangesSerializer()
    flags_reordered = serializers.BooleanField(help_text="The flags both versions set appear in another order.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # Names a class body cannot declare: "from" is a keyword, "fields" a Serializer property.
        declared = super().get_fields()
        return {
            "from": serializers.IntegerField(),
            "to": declared.pop("to"),
            "summary": declared.pop("summary"),
            "parameters": declared.pop("parameters"),
            "fields": FieldChangeSerializer(many=True),
            **declared,
        }


class TrashedPresetSerializer(serializers.ModelSerializer):
    deleted_by = serializers.CharField(
        source="deleted_by.get_username", allow_null=True, help_text="The username, or null."
    )
    purge_after = serializers.DateTimeField(help_text="When it is removed for good.")
    version = serializers.IntegerField(source="current_version")

    class Meta:
        model = ParameterPreset
        fields = ["id", "name", "deleted_at", "deleted_by", "purge_after", "version"]


class UntrashSerializer(ObjectSerializer):
    default_error_messages = {"invalid": 'expected an object like {{"name": "…"}}, got {datatype}'}

    name = NameField(
        required=False, allow_null=True, help_text="Restore under this name, when another preset has taken its own."
    )
