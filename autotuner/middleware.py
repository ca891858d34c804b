from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.utils.functional import SimpleLazyObject, empty
from django_htmx.http import HttpResponseClientRedirect

from autotuner.database import is_unavailable, location
from autotuner.errors import CLIENT_ERRORS, error_response, is_api
from autotuner.logs import current_request_id

logger = logging.getLogger("autotuner.requests")

# An id from a proxy or client is kept when it is short and plain (it goes into logs and headers).
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")


class RequestIdMiddleware:
    """Gives every request an id (a sane X-Request-ID from the proxy, or a new one), returns it in the
    X-Request-ID header, and logs one line per request: method, path, status, duration, user, id.

    Errors from views: a database that is away or busy answers 503 with Retry-After, here and for
    every path; anything else under /api/ answers JSON 500 quoting the id, logged with its traceback
    (DRF re-raises what it does not know). Pages' other errors go to handler500 (autotuner.errors).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        # For autotuner.logs.RequestIdFilter, which reads it from a record's request.
        request.request_id = request_id  # type: ignore[attr-defined]  # an attribute of ours, not HttpRequest's
        token = current_request_id.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            duration_ms = (time.perf_counter() - started) * 1000
            logger.info(
                "%s %s %s %.1fms user=%s",
                request.method,
                request.get_full_path()[:500],
                response.status_code,
                duration_ms,
                _user_id(request),
            )
            return response
        finally:
            current_request_id.reset(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if is_unavailable(exception):
            logger.warning("database unavailable at %s: %s", location(), exception)
        elif is_api(request) and not isinstance(exception, CLIENT_ERRORS):
            logger.error("Server error: %s %s", request.method, request.path, exc_info=exception)
        else:
            return None  # Django logs it with its traceback and renders handler500 (or, in DEBUG, its debug page)
        response = error_response(request, exception)
        # Logged just above; Django would log it again, without the traceback. Django's own flag, which
        # django-stubs does not declare.
        response._has_been_logged = True  # type: ignore[attr-defined]
        return response


def _user_id(request: HttpRequest) -> str:
    """The user's id if the request already knew it; never a query just for the log line."""
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return "-"
    return str(user.pk) if user.is_authenticated else "-"


class HtmxLoginRedirectMiddleware:
    """When a session ends, an htmx request's redirect to the login page would swap the whole
    login page into a fragment. Send the browser there instead, returning to the page it was on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        htmx = getattr(request, "htmx", None)  # set by django_htmx's middleware
        if response.status_code != 302 or not htmx:
            return response
        login_path = resolve_url(settings.LOGIN_URL)
        if urlsplit(response["Location"]).path != login_path:
            return response
        current = urlsplit(htmx.current_url or "/")
        back_to = current.path + (f"?{current.query}" if current.query else "")
        return HttpResponseClientRedirect(f"{login_path}?{urlencode({'next': back_to})}")
