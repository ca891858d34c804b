"""HTTP plumbing shared by the APIs: the error shape, a JSON parser that never 500s, the renderer.

Every API error is ``{"detail": "...", "errors": [{"path": "...", "message": "..."}]}``,
``errors`` present when there are problems to list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, negotiation, renderers, status
from rest_framework.authentication import CSRFCheck
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.utils import encoders
from rest_framework.views import exception_handler

from autotuner.authentication import user_for_token_header
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


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    """The JSON body of an API error: one sentence, and every problem with its path."""
    if isinstance(exc, ApiError):
        problems = exc.problems
        detail = str(exc.detail)
    elif isinstance(exc, exceptions.ValidationError):
        problems = _flatten(exc.detail)
        detail = str(problems[0]) if len(problems) == 1 else f"{len(problems)} problems; see errors"
    else:
        problems = []
        detail = str(exc.detail)
    body: dict[str, Any] = {"detail": detail}
    if problems:
        body["errors"] = [{"path": problem.path, "message": problem.message} for problem in problems]
    return body


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.APIException):
        response.data = error_body(exc)
    return response


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
    """DRF's JSON renderer on orjson: about ten times faster on a large list, and able to embed
    JSON text read from the database (``orjson.Fragment``) without parsing it first."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        try:
            return orjson.dumps(data, default=_encoder.default, option=JSON_OPTIONS)
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


def json_response(data: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    return HttpResponse(orjson.dumps(data, option=JSON_OPTIONS), content_type="application/json", headers=headers)


def fast_json(drf_view: Callable[..., HttpResponse], method: str = "POST") -> Callable[[Callable], Callable]:
    """Serve a hot JSON endpoint without DRF's per-request machinery, keeping its contract.

    The wrapped function takes the request (and, for a POST, the parsed body) and returns the
    response data, or the data and its headers. Authentication is DRF's (a token, or the
    session with its CSRF check), throttles and errors are the API's, and anything else
    (another method, a browser asking for HTML, ``?format=``) goes to ``drf_view``, which also
    keeps the endpoint in the OpenAPI schema. On these machines DRF's request handling cost
    more than a two-preset merge itself.
    """

    def decorator(handle: Callable[..., Any]) -> Callable[[HttpRequest], HttpResponse]:
        @csrf_exempt  # enforced below for session users, exactly as DRF does
        @wraps(handle)
        def view(request: HttpRequest) -> HttpResponse:
            wants_html = "text/html" in request.META.get("HTTP_ACCEPT", "") or "format" in request.GET
            if request.method != method or wants_html:
                return drf_view(request)
            try:
                _authenticate(request)
                _check_throttles(request)
                if method != "POST":
                    answer = handle(request)
                elif request.content_type != "application/json":
                    raise exceptions.UnsupportedMediaType(request.content_type or "(none)")
                else:
                    answer = handle(request, read_json_body(request))
            except exceptions.APIException as exc:
                response = HttpResponse(
                    orjson.dumps(error_body(exc)), status=exc.status_code, content_type="application/json"
                )
                if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
                    response["WWW-Authenticate"] = "Token"
                if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
                    response["Retry-After"] = str(exc.wait)
                return response
            return json_response(*answer) if isinstance(answer, tuple) else json_response(answer)

        return view

    return decorator


def _authenticate(request: HttpRequest) -> None:
    found = user_for_token_header(request.META.get("HTTP_AUTHORIZATION", ""))
    if found is not None:
        request.user = found[0]
        return
    if not request.user.is_authenticated or not request.user.is_active:
        raise exceptions.NotAuthenticated()
    check = CSRFCheck(lambda request: None)
    check.process_request(request)
    try:  # without the header, Django looks for the token in the form body
        reason = check.process_view(request, None, (), {})
    except MultiPartParserError as error:
        raise exceptions.ParseError(f"Multipart form parse error - {error}") from None
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")


def _check_throttles(request: HttpRequest) -> None:
    """DRF's throttles (REST_FRAMEWORK's DEFAULT_THROTTLE_CLASSES), checked as APIView.check_throttles does."""
    waits = []
    for throttle_class in api_settings.DEFAULT_THROTTLE_CLASSES:
        throttle = throttle_class()
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait())
    if waits:
        known = [wait for wait in waits if wait is not None]
        raise exceptions.Throttled(max(known) if known else None)
