"""HTTP plumbing shared by the APIs: the error shape, a JSON parser that never 500s, the renderer.

Every API error is ``{"detail": "...", "errors": [{"path": "...", "message": "..."}]}``,
``errors`` present when there are problems to list.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, renderers, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.utils import encoders

from presets.validators import Problem, listed


class ApiError(exceptions.APIException):
    """An error with a status, one sentence, and optionally every problem with its path."""

    def __init__(self, status_code: int, detail: str, problems: Iterable[Problem] = ()) -> None:
        self.status_code = status_code
        self.problems = list(problems)
        super().__init__(detail)


def invalid(problems: list[Problem], summary: str = "") -> ApiError:
    """400 listing every problem; the detail is the only problem, or a count."""
    if not summary:
        summary = str(problems[0]) if len(problems) == 1 else f"{len(problems)} problems; see errors"
    return ApiError(status.HTTP_400_BAD_REQUEST, summary, problems)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."


def _flatten(detail: Any, path: str = "") -> list[Problem]:
    """DRF's nested error detail as a flat list of problems with JSON paths."""
    if isinstance(detail, Mapping):
        found: list[Problem] = []
        for key, value in detail.items():
            key = "" if key in ("non_field_errors", "__all__") else str(key)
            found += _flatten(value, Problem(key, "").under(path).path)
        return found
    if isinstance(detail, list):
        if all(not isinstance(item, Mapping | list) for item in detail):
            return [Problem(path, str(item)) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found += _flatten(item, f"{path}[{index}]")
        return found
    return [Problem(path, str(detail))]


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    """The JSON body of an API error: one sentence, and every problem with its path."""
    if isinstance(exc, ApiError):
        problems = listed(exc.problems)
        detail = str(exc.detail)
    elif isinstance(exc, exceptions.ValidationError):
        problems = listed(_flatten(exc.detail))
        detail = str(problems[0]) if len(problems) == 1 else f"{len(problems)} problems; see errors"
    else:
        problems = []
        detail = str(exc.detail)
    body: dict[str, Any] = {"detail": detail}
    if problems:
        body["errors"] = [{"path": problem.path, "message": problem.message} for problem in problems]
    return body


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text='Where, as a JSON path (e.g. "parameters.tp-size[1]"); "" for the whole.')
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """Every API error (``error_body``); for the schema only."""

    detail = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        # "errors" is a Serializer property: a class body cannot declare a field of that name.
        return {**super().get_fields(), "errors": ProblemSerializer(many=True, required=False)}


def error_responses(*codes: int, why: Mapping[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """An operation's error answers for its schema, each in the one error shape: 401 and 429 always
    (signing in, the throttles), then ``codes``; ``why`` describes them."""
    why = why or {}
    return {
        code: OpenApiResponse(ErrorSerializer, description=why.get(code, "")) for code in sorted({401, 429, *codes})
    }


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, TooManyFieldsSent):
        # Django's guard against a flood of parameters; left to Django, an API client got its HTML 400.
        exc = _too_many_fields(context["request"].META.get("QUERY_STRING", ""))
    # Imported here: rest_framework.views reads the renderer setting, which names this module.
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        response.data = error_body(exc)
    return response


def _too_many_fields(query: str) -> ApiError:
    """A 400 for more parameters than Django reads, at the one repeated most when the query string
    holds them, or at the body."""
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    names = [field.partition("=")[0] for field in query.split("&")]
    where = (Counter(names).most_common(1)[0][0][:100] or "query") if len(names) > limit else "body"
    return invalid([Problem(where, f"more than {limit:,} parameters were sent")], f"More than {limit:,} parameters.")


def read_json_body(stream: Any) -> Any:
    """A request body parsed as JSON, at most API_MAX_BODY_SIZE bytes (413 over it)."""
    limit = settings.API_MAX_BODY_SIZE
    raw = stream.read(limit + 1) if stream is not None else b""
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is over {limit // 1024} KiB.")
    return parse_json(raw)


class JSONBodyParser(JSONParser):
    """DRF's JSON parser, bounded in size, and answering 400 for documents Python cannot parse at all."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return read_json_body(stream)


def parse_json(raw: bytes) -> Any:
    """JSON text to Python, or a 400 that says where the text breaks or nests too deeply."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise exceptions.ParseError(f"The body is not UTF-8 text (byte {error.start}).") from None
    _check_depth(text, settings.API_MAX_JSON_DEPTH)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise exceptions.ParseError(
            f"Not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
        ) from None
    except RecursionError:
        raise exceptions.ParseError("Not valid JSON here: nested too deeply.") from None
    except ValueError as error:  # e.g. an integer with thousands of digits
        raise exceptions.ParseError(f"Not valid JSON here: {error}.") from None


# The tokens that shape a JSON document: strings (skipped whole, so brackets inside them do not
# count), brackets, commas and colons.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]')
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^\[\]{}"]+')
_INNERMOST = re.compile(r"\[\]|\{\}")


def _check_depth(text: str, limit: int) -> None:
    """A 400 when arrays and objects nest deeper than ``limit``, naming the path where.

    Checked on the text before parsing, in a loop: a deeply nested document must not reach the
    parser's recursion (100,000 levels of ``[`` fit in 100 KB). Counting brackets first skips the
    scan for the usual small document. Malformed text is left to the parser to describe.
    """
    if text.count("[") + text.count("{") <= limit:
        return
    # In C: keep only the brackets outside strings, then take away one level of innermost pairs
    # at a time. Emptied within the limit, the document is shallow enough; otherwise it is too
    # deep or malformed, and the scan below tells which (and where).
    shape = _NOT_BRACKETS.sub("", text)
    for _ in range(limit):
        shape = _INNERMOST.sub("", shape)
        if not shape:
            return
    # One frame per open container: [is_object, its index now (arrays) or key (objects)].
    stack: list[list[Any]] = []
    last_string = ""
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            if len(stack) == limit:
                path = _json_path(stack)
                message = f"nesting deeper than {limit} levels"
                raise invalid([Problem(path, message)], f"JSON {message} at path {path}.")
            stack.append([token == "{", None if token == "{" else 0])
        elif token in "]}":
            if stack:
                stack.pop()
        elif not stack:
            continue
        elif token == ",":
            frame = stack[-1]
            frame[1] = None if frame[0] else frame[1] + 1
        elif token == ":":
            if stack[-1][0]:
                stack[-1][1] = last_string
        else:
            last_string = token


def _json_path(stack: list[list[Any]]) -> str:
    """Where the next container opens, as the API's errors write paths: ``a.b[2]``."""
    path = ""
    for is_object, position in stack:
        if not is_object:
            path = f"{path}[{position}]"
            continue
        try:
            key = json.loads(position)
        except (TypeError, ValueError):
            key = "?"
        path = f"{path}.{key}" if path else str(key)
    return path


# Datetimes as the API writes them: UTC with a Z. Naive ones are UTC too: SQLite's driver
# reads stored times without their zone.
JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer on orjson, which writes large lists of presets far faster than the
    standard library. Indented (two spaces, all orjson offers) when DRF asks for an indent: the
    browsable API does, and so does ``Accept: application/json; indent=4``."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        option = JSON_OPTIONS
        if self.get_indent(accepted_media_type or "", renderer_context or {}):
            option |= orjson.OPT_INDENT_2
        try:
            return orjson.dumps(data, default=_encoder.default, option=option)
        except TypeError:
            # What orjson cannot encode: integers over 64 bits, and text with a lone surrogate (an
            # error message quoting what a client sent). The standard library writes both, the
            # surrogate escaped as \udXXX, which JSON allows and UTF-8 output cannot hold raw.
            indent = 2 if option & orjson.OPT_INDENT_2 else None
            return json.dumps(data, cls=encoders.JSONEncoder, ensure_ascii=True, indent=indent).encode()


_encoder = encoders.JSONEncoder()
