"""The tasks API's shapes: they validate what comes in and write what goes out.

Fields check with the validators the pages use (``presets.validators`` for the name, the grid and
the preset ids; ``tasks.validators`` for the concurrency levels and request rates), and a task is
checked whole by the model (``Task.full_clean``: ``Task.clean``'s engine, grid-size, goodput and
range rules, the unique name).
Creating goes through ``Task.objects.create_from_presets``, as the New task page does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers, status
from rest_framework.fields import empty, get_error_detail
from rest_framework.settings import api_settings

from autotuner.http import ApiError
from presets.api_fields import SPACE, GridField, NameField, PresetIdsField, refuse
from presets.merging import MergeStrategy
from presets.models import PresetsNotFound
from presets.serializers import FindingSerializer
from presets.validators import Problem, describe_type, preset_id_problems
from tasks.forms import TASK_SETTINGS
from tasks.models import Task
from tasks.states import Objective, OptimizationStrategy
from tasks.validators import (
    MAX_CONCURRENCY,
    MAX_CONCURRENCY_LEVELS,
    MAX_REQUEST_RATE,
    clean_concurrency_levels,
    clean_request_rates,
)

INT64 = 2**63
STORABLE = r"^[^\u0000]+$"
NOT_BLANK = rf"^[^\u0000]*[^\u0000{SPACE}][^\u0000]*$"  # SPACE: what DRF's trimming removes
# What a replacement (PUT) sets back to the default when it does not send it.
RESET_BY_PUT = [name for name in TASK_SETTINGS if name not in ("name", "model", "runtime", "parameters")]

# What the model accepts beyond what a field's schema can say: the API's schema text names them.
WHOLE_TASK_RULES = (
    " Refused with 400 although each field is well-formed: values the task's engine refuses "
    "(its catalogue, /api/engines/; at `parameters`), a grid search over more runnable combinations "
    "than it may run (at `optimization_strategy`), random or bayesian search without "
    "`max_experiments`, the goodput objective without any SLO (at `objective`), a range's top "
    "below its bottom (`input_tokens_max` under `input_tokens`, `output_tokens_max` under "
    "`output_tokens`; at the top). A name another task has, compared without case or surrounding spaces, is 409; "
    "preset ids that name no preset are 404, each at `presets[i]`."
)


def _integral(value: Any) -> Any:
    """JSON's 3.0 is the integer 3 (JSON Schema says so too)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class StrictCharField(serializers.CharField):
    """Text only: DRF would turn a number into its digits, which the schema does not allow."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharFieldSchema(OpenApiSerializerFieldExtension):
    """The text fields' schema says what their validators refuse: NUL (it cannot be stored) and,
    where a value is required, text that is only spaces (it is trimmed)."""

    target_class = StrictCharField

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        # Blank text is its own alternative in the schema (spectacular adds it): the pattern is for the rest.
        return {**schema, "pattern": STORABLE if self.target.allow_blank else NOT_BLANK}


class StrictIntegerField(serializers.IntegerField):
    """A JSON number that is whole: not a string of digits, not a boolean."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A finite JSON number: not a string, not a boolean, not NaN or infinity."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """JSON's true or false only: DRF would read "yes", "true", 1 and 0 as one, which the schema does not allow."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class NumberListField(serializers.Field):
    """A JSON list of numbers checked by a ``tasks.validators`` function, as the form's NumberListField is."""

    def __init__(self, *, check: Callable[[Any], list[Any]], **kwargs: Any) -> None:
        self.check = check
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[Any]:
        if not isinstance(data, list):
            raise serializers.ValidationError(f"expected a list of numbers, got {describe_type(data)}")
        try:
            return self.check([_integral(number) for number in data])
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": MAX_CONCURRENCY},
        "minItems": 1,
        "maxItems": MAX_CONCURRENCY_LEVELS,
        "description": "Closed loop: the requests in flight at each benchmark level; stored sorted, each once.",
    }
)
class ConcurrencyLevelsField(NumberListField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check=clean_concurrency_levels, **kwargs)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_REQUEST_RATE},
        "minItems": 1,
        "maxItems": MAX_CONCURRENCY_LEVELS,
        "description": "Open loop: the requests per second at each benchmark level; stored sorted, each once.",
    }
)
class RequestRatesField(NumberListField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check=clean_request_rates, **kwargs)


class MergeStrategyField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "help_text", "How `presets` are merged (default union); null when the grid was typed by hand."
        )
        super().__init__(choices=[strategy.value for strategy in MergeStrategy], allow_null=True, **kwargs)

    def to_representation(self, value: Any) -> Any:  # None for "": not set
        return value or None


@extend_schema_field({"type": "string", "nullable": True})
class BlankAsNullField(serializers.CharField):
    def to_representation(self, value: Any) -> Any:
        return value or None


class AppliedPresetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Its name when merged.")


class StatusChangeSerializer(serializers.Serializer):
    status = serializers.CharField()
    at = serializers.DateTimeField()
    note = serializers.CharField(allow_blank=True)


class TaskSerializer(serializers.ModelSerializer):
    """A task as the API shows it, and what a create or a change may send."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.BigIntegerField: StrictIntegerField,
        models.FloatField: StrictFloatField,
        models.BooleanField: StrictBooleanField,
    }
    default_error_messages = {"invalid": "expected a JSON object describing the task"}

    name = NameField(help_text="Unique, compared without case or surrounding spaces.")
    parameters = GridField(required=False)
    concurrency_levels = ConcurrencyLevelsField(required=False)
    request_rates = RequestRatesField(required=False)
    seed = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=-INT64,
        max_value=INT64 - 1,
        help_text=Task._meta.get_field("seed").help_text,
    )
    presets = PresetIdsField(required=False, write_only=True)
    merge_strategy = MergeStrategyField(required=False)
    combinations = serializers.IntegerField(read_only=True, help_text="Combinations of the grid.")
    runnable = serializers.IntegerField(
        source="plan_summary.runnable", read_only=True, help_text="Combinations the engine constraints let run."
    )
    skipped = serializers.DictField(
        source="plan_summary.skipped",
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Why the others are skipped, with how many.",
    )
    warnings = FindingSerializer(source="engine_warnings", many=True, read_only=True)
    applied_presets = AppliedPresetSerializer(many=True, read_only=True, help_text="The presets merged, in order.")
    preset_versions = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text="The version of each applied preset when merged."
    )
    status_history = StatusChangeSerializer(many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    error = BlankAsNullField(read_only=True, help_text="Why the last run failed or stopped, in one sentence.")

    class Meta:
        model = Task
        fields = [
            "id",
            "status",
            "applied_presets",
            "parameters_edited",
            "combinations",
            "runnable",
            "skipped",
            "warnings",
            *TASK_SETTINGS,
            "catalogue_version",
            "presets",
            "merge_strategy",
            "created_by",
            "created_at",
            "updated_at",
            "preset_versions",
            "status_changed_at",
            "status_history",
            "started_at",
            "finished_at",
            "error",
        ]
        read_only_fields = [
            "status",
            "parameters_edited",
            "catalogue_version",
            "status_changed_at",
            "started_at",
            "finished_at",
        ]

    def run_validation(self, data: Any = empty) -> Any:
        if not isinstance(data, dict):  # a list, a string, a number, null: not a task
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [self.error_messages["invalid"]]})
        return super().run_validation(data)

    def validate_presets(self, value: Any) -> list[int]:
        refuse(preset_id_problems(value))  # PresetIdsField reads 3.0 as 3 already
        return list(value)

    def to_internal_value(self, data: dict[str, Any]) -> Any:
        """The fields' problems, and a whole task (create, replace) without a grid or presets: all at once."""
        errors: dict[str, Any] = {}
        try:
            attrs = super().to_internal_value(data)
        except serializers.ValidationError as error:
            errors, attrs = dict(error.detail), None  # type: ignore[arg-type]  # a serializer's detail is a dict
        whole = self.instance is None or not self.partial
        if whole and data.get("parameters") is None and data.get("presets") is None:
            errors.setdefault("parameters", ["give the grid, presets to merge, or both"])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def create(self, validated: dict[str, Any]) -> Task:
        _name_free(validated["name"], None)
        presets, strategy, parameters = _merge_input(validated)
        user = self.context["request"].user
        with _model_errors():
            return Task.objects.create_from_presets(
                presets=presets or [], strategy=strategy, parameters=parameters, by=user, **validated
            )

    def update(self, task: Task, validated: dict[str, Any]) -> Task:
        if "name" in validated:
            _name_free(validated["name"], task)
        presets, strategy, parameters = _merge_input(validated)
        if not self.partial:  # a replacement: what it does not send is the default again
            for name in RESET_BY_PUT:
                field = Task._meta.get_field(name)
                if name not in validated and isinstance(field, models.Field):
                    setattr(task, name, field.get_default())
        for name, value in validated.items():
            setattr(task, name, value)
        with _model_errors():
            if presets is not None:
                task.use_presets(presets, strategy=strategy, parameters=parameters)
            elif parameters is not None and not self.partial:
                task.use_presets([], strategy=strategy, parameters=parameters)
            elif parameters is not None:
                task.parameters = parameters
                task.parameters_edited = task.parameters_edited or bool(task.applied_presets)
            task.full_clean()
            task.save()
        return task


class TaskSerializerSchema(OpenApiSerializerExtension):
    """What a whole task (create, replace) needs beyond each field's shape, where the schema can say it:
    a grid, presets to merge, or both; max_experiments for a sampled search; an SLO for goodput."""

    target_class = TaskSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request" and not getattr(self.target, "partial", False):
            schema["anyOf"] = [{"required": ["parameters"]}, {"required": ["presets"]}]
            # Task.clean: random and bayesian search need to know how many experiments to run.
            sampled = [OptimizationStrategy.RANDOM.value, OptimizationStrategy.BAYESIAN.value]
            # Task.clean: goodput is the highest load meeting every SLO, so it needs one.
            slos = [field.name for field in Task._meta.fields if field.name.startswith("slo_")]
            schema["allOf"] = [
                {
                    "if": {
                        "properties": {"optimization_strategy": {"enum": sampled}},
                        "required": ["optimization_strategy"],
                    },
                    "then": {"properties": {"max_experiments": {"type": "integer"}}, "required": ["max_experiments"]},
                },
                {
                    "if": {
                        "properties": {"objective": {"enum": [Objective.MAXIMIZE_GOODPUT.value]}},
                        "required": ["objective"],
                    },
                    "then": {"anyOf": [{"properties": {slo: {"type": "number"}}, "required": [slo]} for slo in slos]},
                },
            ]
        return schema


def _name_free(name: str, task: Task | None) -> None:
    """A name another task has is a conflict (409), as for presets; the model checks it again on save."""
    taken = Task.objects.named(name).exclude(pk=task.pk if task else None).first()
    if taken is not None:
        message = f'A task named "{taken.name}" already exists.'
        raise ApiError(status.HTTP_409_CONFLICT, message, [Problem("name", message)])


def _merge_input(validated: dict[str, Any]) -> tuple[list[int] | None, MergeStrategy, Any]:
    presets = validated.pop("presets", None)
    strategy = MergeStrategy(validated.pop("merge_strategy", None) or MergeStrategy.UNION)
    return presets, strategy, validated.pop("parameters", None)


@contextmanager
def _model_errors() -> Iterator[None]:
    """The model's ValidationError as the API's 400, every message under its field; ids that name
    no preset a 404 naming each at ``presets[i]``."""
    try:
        yield
    except PresetsNotFound as error:  # 404, as the merge API answers for the same ids
        problems = [Problem(f"presets[{index}]", f"no preset with id {pk}") for index, pk in error.missing]
        detail = str(problems[0]) if len(problems) == 1 else f"{len(problems)} presets not found; see errors"
        raise ApiError(status.HTTP_404_NOT_FOUND, detail, problems) from None
    except DjangoValidationError as error:
        raise serializers.ValidationError(get_error_detail(error)) from None
