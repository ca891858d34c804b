"""Shapes of the presets API for its OpenAPI schema and the browsable API's forms.

Validation does not happen here: ``presets.validators.preset_fields`` is the one boundary.
"""

from __future__ import annotations

from rest_framework import serializers

from presets.merging import MergeStrategy
from presets.models import MAX_NOTE_LENGTH, ParameterPreset, RevisionEvent, Runtime

# What the API shows of a preset, in this order.
PRESET_FIELDS = (
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
)
# Fields the API names otherwise than the model.
SOURCES = {"version": "current_version"}

CHANGE_NOTE_HELP = f"Why it changed, kept on the new version (optional, at most {MAX_NOTE_LENGTH} characters)."


class PresetSerializer(serializers.ModelSerializer):
    runtime = serializers.ChoiceField(choices=Runtime.choices, allow_null=True, required=False)
    parameters = serializers.DictField(child=serializers.ListField(child=serializers.JSONField()))
    metadata = serializers.DictField(required=False)
    version = serializers.IntegerField(
        source="current_version", read_only=True, help_text="The current version's number (see /versions)."
    )
    change_note = serializers.CharField(
        write_only=True, required=False, allow_null=True, allow_blank=True, help_text=CHANGE_NOTE_HELP
    )

    class Meta:
        model = ParameterPreset
        fields = [*PRESET_FIELDS, "change_note"]
        read_only_fields = ["id", "is_system", "created_at", "updated_at"]


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField()
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = ProblemSerializer(many=True, required=False)


class MergeRequestSerializer(serializers.Serializer):
    preset_ids = serializers.ListField(child=serializers.IntegerField(), help_text="Merged in this order.")
    merge_strategy = serializers.ChoiceField(choices=[s.value for s in MergeStrategy], default="union")
    runtime = serializers.ChoiceField(
        choices=Runtime.choices,
        allow_null=True,
        required=False,
        help_text="Merge for this engine: its aliases are one flag, and `warnings` says what it would refuse.",
    )


class ConflictSerializer(serializers.Serializer):
    parameter = serializers.CharField()
    kind = serializers.ChoiceField(choices=["disjoint", "missing", "no_common_values", "overridden"])
    reason = serializers.CharField()
    presets = serializers.ListField(child=serializers.CharField())
    values = serializers.DictField(required=False)
    overridden_by = serializers.CharField(required=False)
    previous_values = serializers.ListField(child=serializers.JSONField(), required=False)
    new_values = serializers.ListField(child=serializers.JSONField(), required=False)


class MergeResultSerializer(serializers.Serializer):
    parameters = serializers.DictField(child=serializers.ListField(child=serializers.JSONField()))
    applied_presets = serializers.ListField(child=serializers.CharField())
    conflicts = ConflictSerializer(many=True)
    sources = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.CharField())),
        help_text="Per flag, aligned with its values: the presets each value came from.",
    )
    combinations = serializers.IntegerField()
    notes = serializers.ListField(child=serializers.CharField(), required=False)
    warnings = serializers.ListField(child=serializers.DictField(), required=False)


class PresetContentSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    runtime = serializers.CharField(required=False, allow_blank=True)
    parameters = serializers.DictField(child=serializers.ListField(child=serializers.JSONField()))
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


class PresetVersionSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    event = serializers.ChoiceField(choices=RevisionEvent.choices, help_text="How this version came about.")
    note = serializers.CharField(allow_blank=True)
    created_by = serializers.CharField(allow_null=True, help_text="The username, or null (the system, or gone).")
    created_at = serializers.DateTimeField()
    current = serializers.BooleanField(help_text="Whether this is the preset's current version.")
    content = PresetContentSerializer(help_text='The preset as it was, as exported (runtime "" for any engine).')


class ChangeNoteSerializer(serializers.Serializer):
    change_note = serializers.CharField(required=False, allow_null=True, allow_blank=True, help_text=CHANGE_NOTE_HELP)


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


class TrashedPresetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    deleted_at = serializers.DateTimeField()
    deleted_by = serializers.CharField(allow_null=True, help_text="The username, or null.")
    purge_after = serializers.DateTimeField(help_text="When it is removed for good.")
    version = serializers.IntegerField()


class UntrashSerializer(serializers.Serializer):
    name = serializers.CharField(
        required=False, help_text="Restore under this name, when another preset has taken its own."
    )
