"""Every API operation in our OpenAPI schema, fuzzed in-process by schemathesis.

The schema is the one ``/api/schema/`` serves; requests go straight to the WSGI app, as a
logged-in user (a session cookie and its CSRF token), inside the test database's transaction. For each operation a
fixed number of generated requests (deterministic: the same ones every run) must never get a
5xx, and every response must match the schema's description of it.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils.crypto import get_random_string
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from autotuner.wsgi import application
from tests.factories import make_preset

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 25

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def connection_kept_open():
    """Django closes the database connection after each request; here that connection holds the test's
    transaction, so it must stay open (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def logged_in(user, client, connection_kept_open) -> dict[str, dict[str, str]]:
    """The cookies and headers of a logged-in browser: a session and a CSRF token (Django accepts the
    cookie's secret itself in the header)."""
    make_preset(name="Fuzz target", created_by=user)  # something for the id paths to find
    client.force_login(user)
    csrf = get_random_string(32)
    return {
        "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
        "headers": {"X-CSRFToken": csrf},
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_api_never_fails_and_answers_as_documented(case, logged_in):
    case.call_and_validate(**logged_in, checks=[not_a_server_error, response_schema_conformance])
