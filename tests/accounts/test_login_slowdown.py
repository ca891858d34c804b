"""The slow-down before the login lock, and Retry-After on both 429 pages (accounts/lockout.py).

Time passes by moving axes' AccessAttempt.attempt_time back in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F, Sum

from tests.html import accessibility_problems, parse

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


def log_in(client, username: str = "ada", password: str = "pw-ada-123", address: str = "10.0.0.1", path=LOGIN):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def fail(client, times: int, username: str = "ada", address: str = "10.0.0.1", path=LOGIN) -> list[int]:
    return [log_in(client, username, "wrong", address, path).status_code for _ in range(times)]


def seconds_pass(seconds: float) -> None:
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def failures() -> int:
    return AccessAttempt.objects.aggregate(total=Sum("failures_since_start"))["total"] or 0


def assert_slowed(response, seconds: int) -> None:
    """429 with Retry-After of `seconds` (one less if the request began a second after the failure)."""
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert seconds - 1 <= retry_after <= seconds
    document = parse(response.content)
    assert document.find("h1").text == "Wait a moment"
    assert f"Wait {retry_after} second{'s' if retry_after > 1 else ''}, then try again." in document.find("main").text
    assert accessibility_problems(response.content) == []


def test_two_failures_in_a_row_are_not_slowed(client, user):
    assert fail(client, 3) == [200, 200, 200]


def test_after_the_third_failure_the_next_attempt_waits_two_seconds(client, user):
    fail(client, 3)

    assert_slowed(log_in(client, password="wrong"), 2)
    assert failures() == 3  # the refused attempt is not counted


def test_each_further_failure_doubles_the_wait(client, user):
    fail(client, 3)
    seconds_pass(2)
    assert fail(client, 1) == [200]

    assert_slowed(log_in(client, password="wrong"), 4)


def test_shortly_before_the_wait_is_over_the_attempt_is_still_refused(client, user, settings):
    settings.LOGIN_SLOWDOWN_SECONDS = 60
    fail(client, 3)
    seconds_pass(55)

    assert_slowed(log_in(client), 5)


def test_the_right_password_too_soon_is_refused_unchecked_then_accepted_after_the_wait(client, user):
    fail(client, 3)

    response = log_in(client)

    assert_slowed(response, 2)
    assert "_auth_user_id" not in client.session
    assert failures() == 3

    seconds_pass(2)

    assert log_in(client).status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert failures() == 0  # a success resets the count


def test_a_success_starts_the_count_again(client, user):
    fail(client, 3)
    seconds_pass(2)
    assert log_in(client).status_code == 302
    client.logout()

    assert fail(client, 3) == [200, 200, 200]


def test_failures_for_one_username_slow_it_from_every_address(client, user):
    for number in range(3):
        fail(client, 1, address=f"10.0.1.{number}")

    assert_slowed(log_in(client, address="10.0.2.1"), 2)


def test_failures_for_other_usernames_from_one_address_do_not_slow_a_username_there(client, user, other_user):
    for name in ["a", "b", "c"]:
        fail(client, 1, username=name)

    assert log_in(client, "grace", "pw-grace-123").status_code == 302


def test_an_address_is_slowed_as_many_failures_short_of_its_own_limit(client, user, other_user, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 10  # slowed from 8 failures, as a username is from 3 of 5
    assert [fail(client, 1, username=name)[0] for name in "abcdefgh"] == [200] * 8

    assert_slowed(log_in(client, "grace", "pw-grace-123"), 2)
    seconds_pass(2)
    assert fail(client, 1, username="i") == [200]
    assert_slowed(log_in(client, "grace", "pw-grace-123"), 4)
    assert log_in(client, address="10.9.9.9").status_code == 302  # ada, elsewhere, is fine


def test_the_admin_login_is_slowed_too(client, superuser):
    assert fail(client, 3, "root", path="/admin/login/?next=/admin/") == [200, 200, 200]

    response = log_in(client, "root", "pw-root-123", path="/admin/login/?next=/admin/")

    assert_slowed(response, 2)
    assert parse(response.content).find("a", href="/admin/login/?next=/admin/") is not None
    seconds_pass(2)
    assert log_in(client, "root", "pw-root-123", path="/admin/login/?next=/admin/").status_code == 302


def test_the_lock_still_comes_at_the_fifth_failure(client, user):
    statuses = []
    for wait in [0, 0, 0, 2, 4]:
        seconds_pass(wait)
        statuses.append(log_in(client, password="wrong").status_code)

    assert statuses == [200, 200, 200, 200, 429]
    assert failures() == 5


def test_retry_after_on_the_lock_counts_down_to_when_it_lifts(client, user):
    # Five failures for ada from five addresses, ten minutes ago.
    for number, wait in enumerate([0, 0, 0, 2, 4]):
        seconds_pass(wait)
        fail(client, 1, address=f"10.0.1.{number}")
    seconds_pass(600)

    response = log_in(client, address="10.0.2.1")  # counted, but only the newest five failures matter

    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 290 <= retry_after <= 300  # the second-oldest failure, 10 min and 6 s ago, expires at 15 min
    document = parse(response.content)
    assert document.find("h1").text == "Too many failed logins"
    assert "You can try again in 5 minutes." in document.find("main").text

    seconds_pass(retry_after)

    assert log_in(client, address="10.0.2.2").status_code == 302


def test_the_wait_never_exceeds_the_cool_off(client, user, settings):
    settings.AXES_FAILURE_LIMIT = 10
    settings.LOGIN_SLOWDOWN_SECONDS = 600
    fail(client, 3)
    seconds_pass(600)
    fail(client, 1)

    response = log_in(client)

    assert response.status_code == 429
    assert int(response["Retry-After"]) in {899, 900}  # not 1200: by then the failures no longer count
    assert "Wait 15 minutes, then try again." in parse(response.content).find("main").text


def test_no_slow_down_when_its_wait_is_zero(client, user, settings):
    settings.LOGIN_SLOWDOWN_SECONDS = 0

    assert fail(client, 5) == [200, 200, 200, 200, 429]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"password": "wrong"},
        {"username": "ada"},
        {"username": "", "password": "wrong"},
        {"username": "a" * 300},
        {"username": "a\x00", "password": "wrong"},
    ],
    ids=["empty", "no-username", "no-password", "blank-username", "long-username-only", "nul-in-username"],
)
@pytest.mark.parametrize("path", [LOGIN, "/admin/login/"], ids=["site", "admin"])
def test_a_broken_login_form_is_answered_with_its_errors_even_while_slowed(client, user, path, data):
    fail(client, 3)

    response = client.post(path, data, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 200
    assert failures() == 3


@pytest.mark.parametrize("path", [LOGIN, "/admin/login/"], ids=["site", "admin"])
def test_a_login_post_that_is_not_a_form_is_answered_with_the_form(client, path):
    response = client.post(path, b'{"username": "ada"}', content_type="application/json", REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 200
    assert failures() == 0


def test_a_username_longer_than_axes_stores_is_counted_under_its_first_255_characters(client, user):
    # Django's login form does not enforce max_length; on PostgreSQL the full name was a 500.
    assert fail(client, 3, username="a" * 300) == [200, 200, 200]

    assert_slowed(log_in(client, username="a" * 255 + "b" * 45, password="wrong"), 2)
    assert AccessAttempt.objects.get().username == "a" * 255
