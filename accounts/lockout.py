"""Login limits on top of django-axes: where an attempt comes from, a slow-down before the lock,
and the 429 pages, each with Retry-After.

Failures are axes' AccessAttempt rows, counted per username and, separately, per address. A
username locks at AXES_FAILURE_LIMIT failures; an address at LOGIN_ADDRESS_FAILURE_LIMIT, much
higher, because a whole office behind one NAT address shares it. Each count is slowed the same
distance before its own lock: a username from LOGIN_SLOWDOWN_AFTER failures on, an address as many
failures short of its limit. A slowed attempt must wait LOGIN_SLOWDOWN_SECONDS after the last
failure, twice as long after each further one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
from datetime import timedelta
from typing import Any

from axes.conf import settings as axes_settings  # Django's settings, axes' defaults filled in
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit, get_lockout_parameters
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

USERNAME_LENGTH = AccessAttempt._meta.get_field("username").max_length


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or behind PROXY_COUNT trusted reverse proxies the address the first of them
    saw: entries further left in X-Forwarded-For are the client's own claims and can be forged."""
    count = settings.PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            with contextlib.suppress(ValueError):  # PostgreSQL's inet column refuses anything else: a 500
                return str(ipaddress.ip_address(forwarded[-count]))
    return request.META.get("REMOTE_ADDR")


def attempted_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the username tried, cut to the 255 characters axes' column holds.
    Django's login form does not enforce the username's max_length, and PostgreSQL refuses a
    longer value (a 500). Real usernames are at most 150 characters, so none are merged."""
    field = str(axes_settings.AXES_USERNAME_FORM_FIELD)
    username = credentials.get(field) if credentials else request.POST.get(field)
    return username[:USERNAME_LENGTH] if username else username


class LoginHandler(AxesDatabaseHandler):
    """axes' database handler, which also turns away an attempt that comes before the slow-down's
    wait is over. It answers at once rather than sleeping, so a flood of attempts cannot tie up
    the workers; the password is not checked and the attempt is not counted."""

    def counts(self, request: Any, credentials: dict | None) -> list[tuple[QuerySet[AccessAttempt], int]]:
        """Each count axes keeps (AXES_LOCKOUT_PARAMETERS, within the cool-off) with the failures that
        lock it: an address's LOGIN_ADDRESS_FAILURE_LIMIT, anything else's AXES_FAILURE_LIMIT."""
        username_limit = get_failure_limit(request, credentials)
        limits = [
            settings.LOGIN_ADDRESS_FAILURE_LIMIT if parameter == "ip_address" else username_limit
            for parameter in get_lockout_parameters(request, credentials)
        ]
        return list(zip(self.get_user_attempts(request, credentials), limits, strict=True))

    def get_failures(self, request: Any, credentials: dict | None = None) -> int:
        """What axes compares with AXES_FAILURE_LIMIT to lock, in both its checks. axes would take the
        largest count, and so lock an address at a username's limit: this is the limit less the fewest
        failures any count has left before its own limit, so whichever reaches its own limit locks."""
        left = min(limit - _failures(attempts) for attempts, limit in self.counts(request, credentials))
        return get_failure_limit(request, credentials) - left

    def reset_user_attempts(self, request: Any, credentials: dict | None = None) -> int:
        """On a success, forget that username's failures, from wherever they came, and no others.
        axes would also forget every failure from the address: one account's login there would
        then wipe the counts of the usernames being guessed beside it."""
        count, _ = AccessAttempt.objects.filter(username=get_client_username(request, credentials)).delete()
        return count

    def is_locked(self, request: Any, credentials: dict | None = None) -> bool:
        if super().is_locked(request, credentials):
            return True
        request.login_wait = self.slowdown_left(request, credentials)
        return request.login_wait > 0

    def user_login_failed(self, sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
        if getattr(request, "login_wait", 0) > 0:
            request.axes_locked_out = True  # so AxesMiddleware answers with lockout_response
            request.axes_credentials = credentials
            return
        super().user_login_failed(sender, credentials, request, **kwargs)

    def slowdown_left(self, request: Any, credentials: dict | None) -> float:
        """Seconds until the next attempt may be checked; 0 or less: now."""
        first_wait = settings.LOGIN_SLOWDOWN_SECONDS
        early = get_failure_limit(request, credentials) - settings.LOGIN_SLOWDOWN_AFTER  # failures short of a lock
        left = 0.0
        for attempts, limit in self.counts(request, credentials):
            found = attempts.aggregate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            failures = found["failures"] or 0
            after = max(1, limit - early)
            if first_wait and failures >= after:
                # Capped at the cool-off: older failures no longer count anyway.
                wait = min(first_wait * 2 ** (failures - after), get_cool_off(request).total_seconds())
                left = max(left, (found["last"] + timedelta(seconds=wait) - request.axes_attempt_time).total_seconds())
        return left

    def lock_left(self, request: Any, credentials: dict | None) -> float:
        """Seconds until the lock lifts: failures expire a cool-off after they were made, so a
        username's or address's lock lifts when its newest failures no longer reach the limit."""
        cool_off = get_cool_off(request)
        lifts = []
        for attempts, limit in self.counts(request, credentials):
            total = 0
            for attempt_time, failures in attempts.order_by("-attempt_time").values_list(
                "attempt_time", "failures_since_start"
            ):
                total += failures
                if total >= limit:
                    lifts.append(attempt_time + cool_off)
                    break
        if not lifts:
            return cool_off.total_seconds()
        return (max(lifts) - timezone.now()).total_seconds()


def _failures(attempts: QuerySet[AccessAttempt]) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def describe_wait(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After, for an attempt that came too soon or a lock."""
    wait = getattr(request, "login_wait", 0)
    slowed = wait > 0
    if not slowed:
        wait = AxesProxyHandler.get_implementation().lock_left(request, credentials)
    retry_after = max(1, math.ceil(wait))
    context = {
        "failure_limit": get_failure_limit(request, credentials),
        "address_failure_limit": settings.LOGIN_ADDRESS_FAILURE_LIMIT,
        "username": get_client_username(request, credentials) or "",
        "cooloff_timedelta": get_cool_off(request),
        "retry_after": retry_after,
        "wait": describe_wait(retry_after),
        "login_url": request.get_full_path(),
    }
    template = "registration/login_slowed.html" if slowed else "registration/locked_out.html"
    response = render(request, template, context, status=429)
    response["Retry-After"] = str(retry_after)
    return response
