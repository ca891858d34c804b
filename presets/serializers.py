"""The presets API's shapes: they validate what comes in and write what goes out.

Each checked field calls the one validator in ``presets.validators`` (as the model, the forms and
import do) and reports every problem at its JSON path: a problem at ``tp-size[1]`` in the
parameters is ``parameters.tp-size[1]`` in the error body (``autotuner.http``). The schema each
field declares is what that validator accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from presets.exchange import FORMAT_VERSION, MAX_USERNAME_LENGTH, MAX_VERSION
from presets.merging import MergeStrategy
from presets.models import MAX_NOTE_LENGTH, ParameterPreset, PresetRevision, RevisionEvent, engine_errors
from presets.validators import (
    MAX_FLAG_LENGTH,
    MAX_MERGE_PRESETS,
    MAX_METADATA_DEPTH,
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
RUNTIME_HELP = "The engine these flags are for; null (or empty) means any engine."

# The schemas below say exactly what presets.validators accepts, so that a client generated from
# the OpenAPI document (or a fuzzer) sends nothing the API refuses, and the reverse.
NUL = "\\u0000"
CONTROL = "\\u0000-\\u001f\\u007f"
STORABLE_TEXT = f"^[^{NUL}]*$"  # PostgreSQL's jsonb refuses NUL


def trimmed_text(first: str, others: str, *, required: bool) -> str:
    """A pattern for text that is trimmed (surrounding spaces dropped), then holds only characters
    from ``others``, starting and ending with one from ``first``."""
    inner = f"[{first}]([{others}]*[{first}])?"
    return f"^\\s*{inner}\\s*$" if required else f"^\\s*({inner})?\\s*$"


NAME_PATTERN = trimmed_text(f"^{CONTROL}\\s", f"^{CONTROL}", required=True)
# Integers are stored within 64 bits; a number written with a fraction or an exponent (1.5, 1e300)
# is a float and may be larger. JSON Schema cannot tell 1e300 from the integer 10**300, so the
# schema allows any number and says so.
NUMBER: dict[str, Any] = {
    "type": "number",
    "description": "Integers must fit in 64 bits; numbers with a fraction or an exponent may be larger.",
}
SCALAR_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_STRING_LENGTH, "pattern": STORABLE_TEXT},
        NUMBER,
        {"type": "boolean"},
    ]
}
FLAG_PATTERN = f"^(--)?[a-z0-9][a-z0-9._-]{{0,{MAX_FLAG_LENGTH - 1}}}$"  # validators.normalize_flag, FLAG_NAME
GRID_SCHEMA: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": MAX_PARAMETERS,
    "propertyNames": {"pattern": FLAG_PATTERN},
    "additionalProperties": {
        "anyOf": [{"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": SCALAR_SCHEMA}, SCALAR_SCHEMA]
    },
    "description": (
        "Each flag mapped to the list of values to try (a single value is a list of one). Flags are "
        'written as the engine spells them; a leading "--" is dropped and "_" becomes "-", so '
        '"--tp_size" is "tp-size" and may not be given next to it. A value given twice is kept once '
        "(1 and 1.0 are one value). A preset for one engine must use values that engine accepts "
        "(its catalogue, /api/engines/): others answer 400 at `parameters.<flag>[i]`."
    ),
}
GRID_OUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": "^[a-z0-9][a-z0-9.-]*$"},
    "additionalProperties": {"type": "array", "items": SCALAR_SCHEMA},
}
JSON_VALUE = "JSONValue"
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value the database can store: no NUL in text, integers within 64 bits.",
    "anyOf": [
        {"type": "string", "pattern": STORABLE_TEXT},
        NUMBER,
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{JSON_VALUE}"}},
        {
            "type": "object",
            "propertyNames": {"pattern": STORABLE_TEXT},
            "additionalProperties": {"$ref": f"#/components/schemas/{JSON_VALUE}"},
        },
    ],
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
    max_length: int | None = None  # of the text as sent, spaces included (the schema's maxLength)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty or (data is None and self.allow_null):
            return super().validate_empty_values(data)
        return False, data

    def to_internal_value(self, data: Any) -> Any:
        limit = self.max_length
        if limit is not None and isinstance(data, str) and len(data) > limit:
            refuse([Problem("", f"at most {limit} characters are allowed, got {len(data)}")])
        value, problems = type(self).check(data)
        refuse(problems)
        return value

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN})
class NameField(CheckedField):
    """A preset name, trimmed; unique ignoring case and spaces (a clash answers 409)."""

    check = staticmethod(name_problems)


@extend_schema_field({"type": "string", "nullable": True, "pattern": STORABLE_TEXT})
class DescriptionField(CheckedField):
    check = staticmethod(lambda value: text_problems(value, limit=None))


@extend_schema_field({"type": "string", "nullable": True, "maxLength": 100, "pattern": STORABLE_TEXT})
class CategoryField(CheckedField):
    check = staticmethod(lambda value: text_problems(value, limit=100))
    max_length = 100


# Trimmed first, then at most MAX_NOTE_LENGTH characters: spaces around a note do not count.
NOTE_PATTERN = f"^\\s*([^{NUL}\\s]([^{NUL}]{{0,{MAX_NOTE_LENGTH - 2}}}[^{NUL}\\s])?)?\\s*$"


@extend_schema_field({"type": "string", "nullable": True, "pattern": NOTE_PATTERN})
class ChangeNoteField(CheckedField):
    check = staticmethod(lambda value: note_problems(value, limit=MAX_NOTE_LENGTH))


@extend_schema_field(GRID_SCHEMA)
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


class MetadataField(CheckedField):
    check = staticmethod(_metadata)


class MetadataFieldSchema(OpenApiSerializerFieldExtension):
    """Metadata's schema: an object of any JSON values (one recursive component)."""

    target_class = MetadataField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        value = ResolvedComponent(
            name=JSON_VALUE, type=ResolvedComponent.SCHEMA, object=JSON_VALUE, schema=JSON_VALUE_SCHEMA
        )
        auto_schema.registry.register_on_missing(value)
        return {
            "type": "object",
            "nullable": True,
            "propertyNames": {"pattern": STORABLE_TEXT},
            "additionalProperties": value.ref,
            "description": f"Free-form: author, tags, recommended_for, … At most {MAX_METADATA_DEPTH} levels deep "
            f"and {MAX_METADATA_SIZE // 1024} KiB of text.",
        }


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
    """A preset's content as exported, and as a version keeps it."""

    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    runtime = serializers.CharField(allow_blank=True, help_text='"" for any engine.')
    parameters = GridOutField()
    metadata = serializers.DictField()


class ImportedContentSerializer(serializers.Serializer):
    """A preset in an import document: read as a create's body is (unknown fields are ignored)."""

    name = NameField()
    description = DescriptionField(required=False)
    category = CategoryField(required=False)
    runtime = RuntimeField(required=False)
    parameters = GridField()
    metadata = MetadataField(required=False)


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "pattern": f"^[^{CONTROL}]{{0,{MAX_USERNAME_LENGTH}}}$",
        "description": "A username; credited only if such a user exists here.",
    }
)
class UsernameField(serializers.Field):
    pass


class HistoryEntrySerializer(serializers.Serializer):
    version = serializers.IntegerField(
        min_value=1, max_value=MAX_VERSION, help_text="Strictly increasing, oldest first."
    )
    event = serializers.ChoiceField(
        choices=RevisionEvent.choices,
        required=False,
        allow_null=True,
        help_text='By default "created" first, "edited" after.',
    )
    note = ChangeNoteField(required=False)
    created_by = UsernameField(required=False)
    created_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601; UTC if no offset; null if unknown."
    )
    content = ImportedContentSerializer()


class ImportedPresetSerializer(ImportedContentSerializer):
    history = HistoryEntrySerializer(
        many=True,
        required=False,
        allow_null=True,
        help_text=(
            "Its versions (export with ?history=true). On import a new preset gets them as they were; "
            "a replaced one keeps its own history and gains one version."
        ),
    )


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "pattern": "^1(\\.[\\s\\S]*)?$"},
            {"type": "number", "minimum": 1, "exclusiveMaximum": 2},
        ],
        "description": f'The format\'s version: this server writes "{FORMAT_VERSION}" and reads any 1.x.',
    }
)
class VersionField(serializers.Field):
    pass


class ImportDocumentSerializer(serializers.Serializer):
    """An import document, as presets.exchange.parse_document reads it (export writes it)."""

    version = VersionField()
    preset = ImportedPresetSerializer(required=False)
    presets = ImportedPresetSerializer(
        many=True,
        required=False,
        allow_empty=False,
        help_text="Several presets; each name once (ignoring case), or the document answers 400.",
    )


class ImportDocumentSchema(OpenApiSerializerExtension):
    """One preset or several: exactly one of ``preset`` and ``presets``."""

    target_class = ImportDocumentSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "required": ["version"], "oneOf": [{"required": ["preset"]}, {"required": ["presets"]}]}


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
