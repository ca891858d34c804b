"""HTTP plumbing shared by the APIs: the error shape, a JSON parser that never 500s, the renderer.

Every API error is ``{"detail": "...", "errors": [{"path": "...", "message": "..."}]}``,
``errors`` present when there are problems to list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, negotiation, renderers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.utils import encoders
from rest_framework.views import exception_handler

from presets.validators import Problem


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
            found += _flatten(value, f"{path}.{key}" if path and key else path or key)
        return found
    if isinstance(detail, list):
        if all(not isinstance(item, Mapping | list) for item in detail):
            return [Problem(path, str(item)) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found += _flatten(item, f"{path}[{index}]")
        return found
    return [Problem(path, str(detail))]


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ApiError):
        problems = exc.problems
        detail = str(exc.detail)
    elif isinstance(exc, exceptions.ValidationError):
        problems = _flatten(exc.detail)
        detail = str(problems[0]) if len(problems) == 1 else f"{len(problems)} problems; see errors"
    else:
        problems = []
        detail = str(exc.detail) if hasattr(exc, "detail") else str(exc)
    response.data = {"detail": detail}
    if problems:
        response.data["errors"] = [{"path": problem.path, "message": problem.message} for problem in problems]
    return response


class JSONBodyParser(JSONParser):
    """DRF's JSON parser, bounded in size, and answering 400 for documents Python cannot parse at all."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.API_MAX_BODY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is over {limit // 1024} KiB.")
        return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """JSON text to Python, or a ParseError that says where the text breaks."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise exceptions.ParseError(f"The body is not UTF-8 text (byte {error.start}).") from None
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


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer on orjson: about ten times faster on a large list, and able to embed
    JSON text read from the database (``orjson.Fragment``) without parsing it first."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        try:
            return orjson.dumps(data, default=_encoder.default, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
        except TypeError:  # what orjson cannot encode, such as integers over 64 bits
            return super().render(data, accepted_media_type, renderer_context)


_encoder = encoders.JSONEncoder()


class ContentNegotiation(negotiation.DefaultContentNegotiation):
    """DRF's negotiation, answering the common API client (no Accept, */* or JSON) without parsing.

    Parsing the Accept header took a sixth of a merge request's time in the view.
    """

    def select_renderer(self, request: Any, renderers: Any, format_suffix: str | None = None) -> Any:
        accept = request.META.get("HTTP_ACCEPT", "")
        if not format_suffix and accept in ("", "*/*", "application/json") and "format" not in request.GET:
            json_renderer = renderers[0]
            return json_renderer, json_renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """The browsable API with its raw JSON form only: validation lives in one place, not in serializers."""

    def get_rendered_html_form(self, data: Any, view: Any, method: str, request: Any) -> Any:
        return None
