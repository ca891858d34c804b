"""The current request's id, for every log line written while it is served.

``autotuner.middleware.RequestIdMiddleware`` sets it; the ``request_id`` logging filter (see
LOGGING in the settings) copies it onto each record, "-" outside a request.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            # Django logs a 4xx or 5xx response after the middleware has returned, passing the request.
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or current_request_id.get()
        return True


class SecurityEventsWithoutTraceback(logging.Filter):
    """Django logs a refused request (too many fields, a bad Host header: its ``django.security.*``
    loggers) as an error with the exception's traceback. The client sent something wrong and got
    a 400: the one line says what; a traceback would read as a server fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("django.security."):
            record.exc_info = None
            record.exc_text = None
        return True
