"""Signed-in requests: Django's database sessions and ModelBackend decide who is signed in, and
stop at once when the session or the user changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

ACCOUNT = "/account/"


@pytest.fixture
def logged_in(client, user):
    """Signed in through the login page, as a person is."""
    response = client.post("/login/", {"username": "ada", "password": "pw-ada-123"})
    assert response.status_code == 302
    return client


def session_row(client: Client) -> Session:
    return Session.objects.get(session_key=client.cookies["sessionid"].value)


def test_a_signed_in_request_is_served_as_its_user(logged_in, user):
    response = logged_in.get(ACCOUNT)

    assert response.status_code == 200
    assert response.wsgi_request.user == user


def test_an_expired_session_signs_the_user_out(logged_in):
    row = session_row(logged_in)
    row.expire_date = timezone.now() - timedelta(seconds=1)
    row.save()

    response = logged_in.get(ACCOUNT)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_a_session_ended_elsewhere_signs_the_user_out(logged_in):
    session_row(logged_in).delete()

    assert logged_in.get(ACCOUNT).status_code == 302


@pytest.mark.parametrize("cookie", ["", "short", "x" * 40, "'; DROP TABLE django_session; --", "ü" * 32])
def test_a_made_up_session_cookie_is_nobody_and_never_an_error(client, user, cookie):
    client.cookies["sessionid"] = cookie

    response = client.get(ACCOUNT)

    assert response.status_code == 302
    assert Session.objects.count() == 0


def test_a_deactivated_user_is_signed_out_at_the_next_request(logged_in, user):
    user.is_active = False
    user.save()

    assert logged_in.get(ACCOUNT).status_code == 302


def test_a_deleted_user_is_signed_out_at_the_next_request(logged_in, user):
    user.delete()

    assert logged_in.get(ACCOUNT).status_code == 302


def test_a_tampered_session_signs_the_user_out(logged_in, caplog):
    row = session_row(logged_in)
    row.session_data = row.session_data[:-2] + ("AA" if not row.session_data.endswith("AA") else "BB")
    row.save()

    assert logged_in.get(ACCOUNT).status_code == 302
    assert [r.message for r in caplog.records if r.name == "django.security.SuspiciousSession"] == [
        "Session data corrupted"
    ]


@pytest.mark.parametrize(("fallback", "status"), [(False, 302), (True, 200)])
def test_a_new_secret_key_signs_everyone_out_unless_the_old_one_is_a_fallback(logged_in, settings, fallback, status):
    assert logged_in.get(ACCOUNT).status_code == 200  # the session checked under the old key

    old, settings.SECRET_KEY = settings.SECRET_KEY, "a-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old] if fallback else []

    assert logged_in.get(ACCOUNT).status_code == status
