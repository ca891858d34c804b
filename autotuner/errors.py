"""What a failing request answers: a database that is away gives 503 with Retry-After, anything
else 500; both quote the request's id (the one in the logs), as JSON under /api/ and as a short
page elsewhere, never a traceback."""

from __future__ import annotations

import sys

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template import loader
from django.templatetags.static import static
from django.views import defaults

from autotuner.database import is_unavailable
from autotuner.logs import current_request_id

RETRY_AFTER_SECONDS = 5
# What Django itself answers with a 4xx (django.core.handlers.exception): not server errors.
CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, MultiPartParserError, SuspiciousOperation)


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def error_response(request: HttpRequest, error: BaseException | None) -> HttpResponse:
    """503 when ``error`` says the database is away or busy, 500 otherwise."""
    request_id = current_request_id.get()
    unavailable = is_unavailable(error)
    status = 503 if unavailable else 500
    if is_api(request):
        if unavailable:
            detail = (
                f"The database is busy or unreachable; try again in {RETRY_AFTER_SECONDS} s (request id {request_id})."
            )
        else:
            detail = f"Server error; quote request id {request_id} when you report it."
        response: HttpResponse = JsonResponse({"detail": detail, "request_id": request_id}, status=status)
    else:
        # A standalone page: base.html needs the database (the user, messages), which may be what failed.
        html = loader.render_to_string(f"{status}.html", {"request_id": request_id, "stylesheet": _stylesheet()})
        response = HttpResponse(html, status=status)
    if unavailable:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: under /api/, the API's JSON error shape for a path no route matches (an
    encoded ``..%2F..`` included), so a client never has to read an HTML page; elsewhere Django's."""
    if is_api(request):
        return JsonResponse({"detail": f"No API endpoint at {request.path_info[:200]}; see /api/docs/."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500, for what escapes views and middleware alike; it runs while the exception is handled."""
    return error_response(request, sys.exception())


def _stylesheet() -> str | None:
    try:
        return static("css/app.css")
    except ValueError:  # not collected yet: the page is readable without it
        return None
