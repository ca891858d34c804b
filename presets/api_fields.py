"""The presets API's fields: each validates with presets.validators, the one check of a preset's
content (as the model, the forms and import do), reports every problem at its JSON path, and
declares the schema of exactly what it accepts.

A problem at ``tp-size[1]`` in the parameters is ``parameters.tp-size[1]`` in the error body
(autotuner.http). Where the schema cannot say it all (values an engine refuses), its
description does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from engines.registry import quoted_names
from presets.exchange import FORMAT_VERSION, MAX_USERNAME_LENGTH
from presets.models import MAX_NOTE_LENGTH
from presets.validators import (
    MAX_DESCRIPTION_LENGTH,
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
    listed,
    metadata_problems,
    name_problems,
    normalize_parameters,
    note_problems,
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
# What trimming removes (Python's str.strip, as the validators and DRF trim), spelled out: regex
# engines read \s differently (Python's counts U+0085 and U+001C-U+001F, ECMA's U+FEFF, the Rust
# one schemathesis validates with neither U+0085 nor U+001C-U+001F).
SPACE = "\\t-\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"


def trimmed_text(first: str, others: str, *, required: bool) -> str:
    """A pattern for text that is trimmed (surrounding spaces dropped), then holds only characters
    from ``others``, starting and ending with one from ``first``."""
    inner = f"[{first}]([{others}]*[{first}])?"
    return f"^[{SPACE}]*{inner}[{SPACE}]*$" if required else f"^[{SPACE}]*({inner})?[{SPACE}]*$"


NAME_PATTERN = trimmed_text(f"^{CONTROL}{SPACE}", f"^{CONTROL}", required=True)
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
        '"--tp_size" is "tp-size"; given next to it, the two are one flag with both lists of values, in '
        "order (at most the maximum of values together). A value given twice is kept once "
        "(1 and 1.0 are one value). A preset for one engine must use values that engine accepts "
        "(its catalogue, /api/engines/), a preset for any engine values that some engine with the flag "
        "accepts: others answer 400 at `parameters.<flag>[i]`."
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
    problems = listed(problems)
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
    max_length = MAX_NAME_LENGTH


@extend_schema_field(
    {"type": "string", "nullable": True, "maxLength": MAX_DESCRIPTION_LENGTH, "pattern": STORABLE_TEXT}
)
class DescriptionField(CheckedField):
    check = staticmethod(lambda value: text_problems(value, limit=MAX_DESCRIPTION_LENGTH, trim=False))
    max_length = MAX_DESCRIPTION_LENGTH


@extend_schema_field({"type": "string", "nullable": True, "maxLength": 100, "pattern": STORABLE_TEXT})
class CategoryField(CheckedField):
    check = staticmethod(lambda value: text_problems(value, limit=100))
    max_length = 100


# Trimmed first, then at most MAX_NOTE_LENGTH characters: spaces around a note do not count.
NOTE_PATTERN = f"^[{SPACE}]*([^{NUL}{SPACE}]([^{NUL}]{{0,{MAX_NOTE_LENGTH - 2}}}[^{NUL}{SPACE}])?)?[{SPACE}]*$"


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
            f"and {MAX_METADATA_SIZE // 1024} KiB as JSON.",
        }


class RuntimeField(serializers.ChoiceField):
    """An engine, or null for any engine (stored as ""); shown as null."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", RUNTIME_HELP)
        super().__init__(
            choices=[(runtime, runtime) for runtime in RUNTIMES], allow_null=True, allow_blank=True, **kwargs
        )
        expected = f"expected {quoted_names()} or null (any)"
        self.error_messages["invalid_choice"] = '"{input}" is not a runtime; ' + expected

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

    def to_representation(self, value: Any) -> Any:
        return value or None


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
        if isinstance(data, list):  # JSON's 3.0 is the integer 3 (JSON Schema says so too), as for tasks
            return [int(item) if isinstance(item, float) and item.is_integer() else item for item in data]
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(GRID_OUT_SCHEMA)
class GridOutField(serializers.DictField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "pattern": f"^[^{CONTROL}]{{0,{MAX_USERNAME_LENGTH}}}$",
        "description": "The author's username, kept as text: an imported version is credited to the importer.",
    }
)
class UsernameField(serializers.Field):
    pass


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
