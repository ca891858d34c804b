"""Request ids and what a failing request answers: one log line per request, a friendly 500 page or
JSON error quoting the id, and 503 with Retry-After when the database is locked or unreachable."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sqlite3
from collections.abc import Iterator

import pytest
from django.db import connection
from django.test import Client
from django.urls import path

from autotuner.logs import RequestIdFilter
from autotuner.urls import handler500  # noqa: F401  (this module is the URLconf of the tests marked urls)
from autotuner.urls import urlpatterns as site_urlpatterns
from presets.api import PresetViewSet

pytestmark = pytest.mark.django_db


def broken_page(request):
    raise RuntimeError("a bug in a page")


urlpatterns = [path("test/broken/", broken_page), *site_urlpatterns]


@pytest.fixture
def capturing(caplog):
    """caplog, its records carrying request_id as the console handler's do."""
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    return caplog


@pytest.fixture
def quiet_client(client):
    client.raise_request_exception = False
    return client


# Request ids and the request log


def test_every_response_carries_a_new_request_id(client):
    first = client.get("/healthz")
    second = client.get("/healthz")

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_sane_request_id_from_the_proxy_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:0001"})

    assert response["X-Request-ID"] == "lb-7f3a:0001"


@pytest.mark.parametrize(
    "given",
    ["has spaces", "x" * 129, "new\nline", 'quote"s', ""],
    ids=["spaces", "too long", "newline", "quotes", "empty"],
)
def test_an_odd_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})

    assert response["X-Request-ID"] != given
    assert len(response["X-Request-ID"]) == 32


def test_one_line_per_request_with_method_path_status_duration_user_and_id(client, user, capturing):
    client.force_login(user)

    response = client.get("/presets/?runtime=sglang", headers={"X-Request-ID": "req-123"})

    lines = [record for record in capturing.records if record.name == "autotuner.requests"]
    assert len(lines) == 1
    message = lines[0].getMessage()
    assert message.startswith(f"GET /presets/?runtime=sglang {response.status_code} ")
    assert "ms user=" + str(user.pk) in message
    assert lines[0].request_id == "req-123"


def test_the_log_line_never_costs_a_query(client, django_assert_num_queries):
    with django_assert_num_queries(1):  # healthz's SELECT 1; the anonymous user is not looked up for the log
        client.get("/healthz")


# Server errors


@pytest.mark.urls(__name__)
def test_a_page_error_shows_a_friendly_page_quoting_the_id_and_logs_the_traceback(quiet_client, capturing):
    response = quiet_client.get("/test/broken/", headers={"X-Request-ID": "page-err-1"})

    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert "page-err-1" in html
    assert "Traceback" not in html
    assert "a bug in a page" not in html
    assert response["X-Request-ID"] == "page-err-1"
    errors = [record for record in capturing.records if record.levelno >= logging.ERROR]
    assert errors
    assert errors[0].exc_info is not None
    assert "a bug in a page" in str(errors[0].exc_info[1])
    assert errors[0].request_id == "page-err-1"


def test_an_api_error_answers_json_quoting_the_id_and_logs_the_traceback(quiet_client, user, capturing, monkeypatch):
    def broken_list(self, *args, **kwargs):
        raise RuntimeError("a bug in the API")

    monkeypatch.setattr(PresetViewSet, "get_queryset", broken_list)
    quiet_client.force_login(user)

    response = quiet_client.get("/api/presets/", headers={"X-Request-ID": "api-err-1"})

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": "Server error; quote request id api-err-1 when you report it.",
        "request_id": "api-err-1",
    }
    errors = [record for record in capturing.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "a bug in the API" in str(errors[0].exc_info[1])
    assert errors[0].request_id == "api-err-1"


# The database away: 503 with Retry-After


@contextlib.contextmanager
def locked_database_held() -> Iterator[None]:
    """The test database under an exclusive lock held by another connection, Django's busy timeout 0.2 s."""
    if connection.vendor != "sqlite":
        pytest.skip("holds an SQLite lock")
    options = connection.settings_dict["OPTIONS"]
    saved_timeout = options.get("timeout")
    options["timeout"] = 0.2
    connection.close()  # reconnects with the short timeout
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None, timeout=5)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        options["timeout"] = saved_timeout
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_an_api_write_to_a_locked_database_answers_503_with_retry_after(quiet_client, user):
    quiet_client.force_login(user)
    with locked_database_held():
        response = quiet_client.post(
            "/api/presets/",
            json.dumps({"name": "Locked out", "parameters": {"tp-size": [1]}}),
            content_type="application/json",
        )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = response.json()
    assert body["request_id"] == response["X-Request-ID"]
    assert "busy or unreachable" in body["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_page_write_to_a_locked_database_shows_a_busy_page_with_retry_after(quiet_client, user):
    quiet_client.force_login(user)
    with locked_database_held():
        response = quiet_client.post("/logout/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    html = response.content.decode()
    assert "Busy, try again in a moment" in html
    assert response["X-Request-ID"] in html
    assert "Traceback" not in html


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_when_the_database_is_unreachable(client, monkeypatch):
    if connection.vendor != "sqlite":
        pytest.skip("points the SQLite connection at a file that cannot exist")
    monkeypatch.setitem(connection.settings_dict, "NAME", "/nonexistent-folder/autotuner.sqlite3")
    connection.close()
    try:
        response = client.get("/healthz")
    finally:
        connection.close()

    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


def test_an_api_client_error_raised_as_a_django_exception_stays_a_4xx(user):
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.force_login(user)
    browser.cookies["csrftoken"] = "c" * 16 + "s" * 16

    # Import reads multipart uploads: Django's multipart parser raises its own exception here.
    response = browser.post(
        "/api/presets/import/", "{}", content_type="multipart/form-data", headers={"X-CSRFToken": "c" * 16 + "s" * 16}
    )  # multipart without a boundary

    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/api/engines/..%2F..", "/api/no-such-thing/", "/api/presets/1/nothing/here"])
def test_an_unknown_api_path_answers_the_apis_json_404(signed_in, path):
    response = signed_in.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "No API endpoint at /api/" in response.json()["detail"]


def test_an_unknown_page_still_answers_the_html_404(signed_in):
    response = signed_in.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_request_django_refuses_as_suspicious_is_one_log_line_without_a_traceback(client):
    # Django logs a flood of fields on django.security.TooManyFieldsSent with the exception: the
    # console handler keeps the line and drops the traceback (a client's 400, not a server fault).
    console = logging.getHandlerByName("console")
    assert console is not None
    written = io.StringIO()
    previous = console.setStream(written)
    try:
        response = client.post("/login/", {f"field{index}": "x" for index in range(1001)})
    finally:
        console.setStream(previous)

    assert response.status_code == 400
    lines = written.getvalue().splitlines()
    assert [line for line in lines if "django.security.TooManyFieldsSent" in line] != []
    assert "Traceback" not in written.getvalue()
