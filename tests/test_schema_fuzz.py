"""Every API operation in our OpenAPI schema, fuzzed in-process by schemathesis.

The schema is the one ``/api/schema/`` serves; requests go straight to the WSGI app, as a
logged-in user (a session cookie and its CSRF token), inside the test database's transaction. For each operation a
fixed number of generated requests (deterministic: the same ones every run) must never get a
5xx, and every response must match the schema's description of it. Every operation passes every
check schemathesis has: valid requests accepted, invalid ones refused, no status code or header
the schema does not name.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from autotuner.wsgi import application
from tests.factories import make_preset, make_token_key

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
def logged_in(user, connection_kept_open) -> dict[str, dict[str, str]]:
    """The headers of an API client: a token (schemathesis checks that a request without it is refused)."""
    make_preset(name="Fuzz target", created_by=user)  # something for the id paths to find
    return {"headers": {"Authorization": f"Token {make_token_key(user)}"}}


# What the schema cannot say, so that a check would flag it (described in the schema): an uploaded
# file must hold a preset document, which OpenAPI cannot require of multipart data.
CANNOT_SAY = {"POST /api/presets/import/": [positive_data_acceptance]}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_api_never_fails_and_answers_as_documented(case, logged_in):
    case.call_and_validate(**logged_in, excluded_checks=CANNOT_SAY.get(case.operation.label, []))
