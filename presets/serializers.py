"""The presets API's shapes: they validate what comes in (with presets.api_fields' fields, which
call presets.validators) and write what goes out."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers
from rest_framework.settings import api_settings

from presets.api_fields import (
    CHANGE_NOTE_HELP,
    CategoryField,
    ChangeNoteField,
    DescriptionField,
    GridField,
    GridOutField,
    MetadataField,
    NameField,
    PresetIdsField,
    RuntimeField,
    UsernameField,
    VersionField,
    refuse,
)
from presets.exchange import MAX_VERSION
from presets.merging import ConflictKind, MergeStrategy
from presets.models import ParameterPreset, PresetRevision, RevisionEvent, engine_errors
from presets.validators import (
    Problem,
    describe_type,
    preset_id_problems,
)


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
    # Left as datetimes for the renderer, which writes them as ISO 8601 in UTC with a Z (autotuner.http).
    created_at = serializers.DateTimeField(read_only=True, format=None)
    updated_at = serializers.DateTimeField(read_only=True, format=None)
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
        """Values the preset's engine refuses (its catalogue; for any engine, values every engine
        with that flag refuses): 400 at ``parameters.<flag>[i]``. Flags the engine does not know
        are only warnings."""
        instance = self.instance
        parameters = attrs.get("parameters", instance.parameters if instance else {})
        runtime = attrs.get("runtime", instance.runtime if instance else "")
        if parameters:
            found = engine_errors(parameters, runtime)
            refuse([Problem(finding.path, finding.message) for finding in found], "parameters")
        return attrs


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
    kind = serializers.ChoiceField(choices=[kind.value for kind in ConflictKind])
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
    """A preset's content as a version keeps it (an export writes the same, with runtime null for
    any engine)."""

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
    file = serializers.FileField(
        help_text="A preset or bundle document (UTF-8 JSON, as the JSON body's schema describes), at most 1 MiB."
    )


class PresetVersionSerializer(serializers.ModelSerializer):
    """One version of a preset; ``current`` needs the preset's current version in the context."""

    event = serializers.ChoiceField(choices=RevisionEvent.choices, help_text="How this version came about.")
    created_by = serializers.CharField(
        source="created_by.get_username", allow_null=True, help_text="The username, or null (the system, or gone)."
    )
    author_in_file = serializers.CharField(
        help_text='For an imported version, the author its file named ("" otherwise): kept as text, never credited.'
    )
    current = serializers.SerializerMethodField(help_text="Whether this is the preset's current version.")
    content = PresetContentSerializer(help_text='The preset as it was (runtime "" for any engine).')

    class Meta:
        model = PresetRevision
        fields = ["version", "event", "note", "created_by", "author_in_file", "created_at", "current", "content"]

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
