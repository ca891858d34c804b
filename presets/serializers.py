"""Shapes of the presets API for its OpenAPI schema and the browsable API's forms.

Validation does not happen here: ``presets.validators.preset_fields`` is the one boundary.
"""

from __future__ import annotations

from rest_framework import serializers

from presets.merging import MergeStrategy
from presets.models import ParameterPreset, Runtime

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
)


class PresetSerializer(serializers.ModelSerializer):
    runtime = serializers.ChoiceField(choices=Runtime.choices, allow_null=True, required=False)
    parameters = serializers.DictField(child=serializers.ListField(child=serializers.JSONField()))
    metadata = serializers.DictField(required=False)

    class Meta:
        model = ParameterPreset
        fields = list(PRESET_FIELDS)
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


class ExportDocumentSerializer(serializers.Serializer):
    version = serializers.CharField()
    preset = PresetContentSerializer(required=False)
    presets = PresetContentSerializer(many=True, required=False)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A preset or bundle document, at most 1 MiB.")
