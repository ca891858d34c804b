"""Signed-in requests: the session and the user are read with plain statements
(accounts/sessions.py, accounts/backends.py; API tokens too), and must answer exactly as
Django's own would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts.backends import ModelBackend
from accounts.sessions import SessionStore
from autotuner.authentication import user_for_token_header
from tests.factories import make_token_key

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


def test_the_session_keeps_what_the_view_wrote_across_requests(logged_in):
    store = SessionStore(logged_in.cookies["sessionid"].value)
    store["remembered"] = [1, "two"]
    store.save()

    assert SessionStore(logged_in.cookies["sessionid"].value).load()["remembered"] == [1, "two"]


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


def test_the_user_read_for_a_request_is_the_user_django_reads(user):
    user.last_login = timezone.now()
    user.first_name = "Ada"
    user.save()
    expected = get_user_model().objects.get(pk=user.pk)

    found = ModelBackend().get_user(user.pk)

    fields = [field.attname for field in get_user_model()._meta.concrete_fields]
    assert {name: getattr(found, name) for name in fields} == {name: getattr(expected, name) for name in fields}
    assert found.last_login.tzinfo is not None
    assert found._state.adding is False
    assert found._state.db == "default"


@pytest.mark.parametrize("user_id", [10**6, "abc", None, "1; DROP TABLE auth_user"])
def test_an_unknown_or_malformed_user_id_is_nobody(user, user_id):
    assert ModelBackend().get_user(user_id) is None


def test_the_user_of_an_api_token_is_read_as_django_reads_it(user):
    user.last_login = timezone.now()
    user.save()

    found, _ = user_for_token_header(f"Token {make_token_key(user)}")

    assert found.last_login == get_user_model().objects.get(pk=user.pk).last_login
    assert found.last_login.tzinfo is not None


# A stored session's text is checked and unpacked once per process (accounts.sessions): the
# answers must stay those of Django's own decode.


def test_a_session_changed_in_place_is_not_changed_for_the_next_read(logged_in):
    key = logged_in.cookies["sessionid"].value
    first = SessionStore(key)
    first["remembered"] = ["kept"]
    first.save()

    SessionStore(key)["remembered"].append("not saved")

    assert SessionStore(key)["remembered"] == ["kept"]


def test_a_tampered_session_is_empty_each_time_it_is_read(logged_in, caplog):
    row = session_row(logged_in)
    row.session_data = row.session_data[:-2] + ("AA" if not row.session_data.endswith("AA") else "BB")
    row.save()

    for _ in range(2):
        assert logged_in.get(ACCOUNT).status_code == 302
    assert [r.message for r in caplog.records if r.name == "django.security.SuspiciousSession"] == [
        "Session data corrupted"
    ] * 2


@pytest.mark.parametrize(("fallback", "status"), [(False, 302), (True, 200)])
def test_a_new_secret_key_signs_everyone_out_unless_the_old_one_is_a_fallback(logged_in, settings, fallback, status):
    assert logged_in.get(ACCOUNT).status_code == 200  # the session checked under the old key

    old, settings.SECRET_KEY = settings.SECRET_KEY, "a-new-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old] if fallback else []

    assert bool(SessionStore(logged_in.cookies["sessionid"].value).load()) is fallback
    assert logged_in.get(ACCOUNT).status_code == status
