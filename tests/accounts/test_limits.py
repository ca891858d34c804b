"""Abuse limits: login lockout (django-axes), API rate limits (DRF throttles, also on the fast merge
path), and bounded requests (JSON nesting, search length)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from accounts.lockout import client_address
from presets.models import ParameterPreset
from tests.factories import make_preset, make_token_key
from tests.html import parse

pytestmark = pytest.mark.django_db

LOGIN = "/login/"
GOOD = {"username": "ada", "password": "pw-ada-123"}


def log_in(client, username: str = "ada", password: str = "pw-ada-123", address: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def a_minute_passes() -> None:
    """Longer than any slow-down wait before the lock (2 s, then 4 s; test_login_slowdown.py)."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=1))


def fail(client, times: int, username: str = "ada", address: str = "10.0.0.1") -> list[int]:
    """Failed logins a minute apart, so only the lock, never the slow-down, turns one away."""
    statuses = []
    for _ in range(times):
        statuses.append(log_in(client, username, "wrong", address).status_code)
        a_minute_passes()
    return statuses


# Logins


def test_five_failures_for_one_username_lock_it_with_a_429_page(client, user):
    assert fail(client, 5) == [200, 200, 200, 200, 429]  # the fifth failure already answers with the lock

    response = log_in(client)  # the right password, too late

    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900  # this attempt counted too: the full cool-off again
    document = parse(response.content)
    assert document.find("h1").text == "Too many failed logins"
    assert "paused for 15 minutes" in document.find("main").text
    assert "After 5 failed attempts for “ada”, or 50 from this address" in document.find("main").text
    assert "You can try again in 15 minutes." in document.find("main").text
    assert "_auth_user_id" not in client.session


def test_the_username_stays_locked_from_another_address(client, user):
    for number in range(5):
        fail(client, 1, address=f"10.0.1.{number}")

    assert log_in(client, address="10.0.2.1").status_code == 429


def test_the_address_limit_defaults_to_ten_times_the_usernames(settings):
    assert settings.LOGIN_ADDRESS_FAILURE_LIMIT == 10 * settings.AXES_FAILURE_LIMIT == 50


def test_a_username_locked_from_an_office_address_leaves_the_others_there_free(client, user, other_user):
    assert fail(client, 5) == [200, 200, 200, 200, 429]  # ada, from the office's one (NAT) address

    assert log_in(client).status_code == 429
    assert log_in(client, "grace", "pw-grace-123").status_code == 302


def test_failures_for_many_usernames_lock_their_address_at_its_own_limit(client, user, other_user, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 10
    for name in "abcdefghi":
        fail(client, 1, username=name)
    assert log_in(client, "grace", "pw-grace-123").status_code == 302  # nine failures: below the limit
    client.logout()

    assert fail(client, 1, username="j") == [429]  # the tenth locks the address

    response = log_in(client, "grace", "pw-grace-123")
    assert response.status_code == 429
    # Counted too: the lock lifts when the tenth newest failure (b's, 9 minutes ago) is 15 minutes old.
    assert 350 <= int(response["Retry-After"]) <= 360
    assert parse(response.content).find("h1").text == "Too many failed logins"
    assert "_auth_user_id" not in client.session
    assert log_in(client, address="10.9.9.9").status_code == 302  # ada, elsewhere, is fine


def test_a_success_there_does_not_wipe_the_failures_for_another_username(client, user, other_user):
    assert fail(client, 4) == [200] * 4  # someone guessing at ada
    assert log_in(client, "grace", "pw-grace-123").status_code == 302  # their own account, same address
    client.logout()

    assert fail(client, 1) == [429]  # ada's fifth failure still locks her


def test_four_failures_then_a_success_start_the_count_again(client, user):
    assert fail(client, 4) == [200] * 4
    assert log_in(client).status_code == 302
    client.logout()

    assert fail(client, 4) == [200] * 4

    assert log_in(client).status_code == 302


def test_the_lock_lifts_after_the_cool_off(client, user):
    fail(client, 5)
    assert log_in(client).status_code == 429

    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))

    assert log_in(client).status_code == 302


def test_a_locked_username_keeps_its_api_token_and_its_open_sessions(client, user):
    key = make_token_key(user)
    session = APIClient()
    session.force_login(user)
    fail(client, 6)

    assert APIClient().get("/api/presets/", headers={"Authorization": f"Token {key}"}).status_code == 200
    assert session.get("/api/presets/").status_code == 200


def test_the_admin_login_is_locked_too(client, superuser):
    for _ in range(5):
        client.post("/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.1")
        a_minute_passes()

    response = client.post("/admin/login/", {"username": "root", "password": "pw-root-123"}, REMOTE_ADDR="10.0.0.1")

    assert response.status_code == 429


@pytest.mark.parametrize(
    ("proxies", "forwarded", "address"),
    [
        (0, "1.1.1.1", "10.0.0.9"),
        (1, "6.6.6.6, 1.1.1.1", "1.1.1.1"),
        (2, "6.6.6.6, 1.1.1.1, 10.0.0.5", "1.1.1.1"),
        (1, "", "10.0.0.9"),
        (1, "not-an-address", "10.0.0.9"),
        (1, "1.1.1.1:443", "10.0.0.9"),
        (1, "2001:DB8::1", "2001:db8::1"),
    ],
    ids=["no-proxy-ignores-the-header", "one-proxy", "two-proxies", "one-proxy-no-header", "garbage", "port", "ipv6"],
)
def test_the_address_looks_through_only_the_trusted_proxies(proxies, forwarded, address):
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)

    with override_settings(PROXY_COUNT=proxies):
        assert client_address(request) == address


def test_a_forwarded_address_that_is_not_one_counts_the_connections_instead(client, user, settings):
    settings.PROXY_COUNT = 2  # more than are really in front: the client's own claim is read

    response = client.post(LOGIN, {**GOOD, "password": "wrong"}, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="x, y")

    assert response.status_code == 200  # PostgreSQL's inet column refused "x": a 500
    assert AccessAttempt.objects.get().ip_address == "10.0.0.1"


# API rate limits


@pytest.fixture
def throttled(monkeypatch):
    """3 requests a minute per user, 2 per anonymous address (DRF reads rates once, at import)."""
    monkeypatch.setattr(UserRateThrottle, "rate", "3/min", raising=False)
    monkeypatch.setattr(AnonRateThrottle, "rate", "2/min", raising=False)
    cache.clear()
    yield
    cache.clear()


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token_key(user)}")
    return client


def assert_throttled(response) -> None:
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 0 < wait <= 60
    assert response.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}


def test_a_user_over_the_rate_gets_429_with_retry_after(throttled, user, other_user):
    api = token_client(user)
    assert [api.get("/api/presets/").status_code for _ in range(3)] == [200, 200, 200]

    assert_throttled(api.get("/api/presets/"))
    assert token_client(other_user).get("/api/presets/").status_code == 200


def test_the_fast_merge_path_shares_the_users_count(throttled, user):
    api = token_client(user)
    merge = {"preset_ids": [make_preset(name="Mine", created_by=user).pk], "merge_strategy": "last_wins"}
    assert api.get("/api/presets/").status_code == 200
    assert [api.post("/api/presets/merge", merge, format="json").status_code for _ in range(2)] == [200, 200]

    assert_throttled(api.post("/api/presets/merge", merge, format="json"))
    assert_throttled(api.get("/api/presets/"))


def test_a_session_user_is_limited_the_same_way(throttled, user):
    api = APIClient()
    api.force_login(user)
    for _ in range(3):
        api.get("/api/tasks/")

    assert_throttled(api.get("/api/tasks/"))


def test_anonymous_requests_are_limited_per_address(throttled):
    anonymous = APIClient()
    assert [anonymous.get("/api/schema/").status_code for _ in range(2)] == [200, 200]

    response = anonymous.get("/api/schema/", headers={"Accept": "application/json"})

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert APIClient(REMOTE_ADDR="10.0.0.2").get("/api/schema/").status_code == 200


def test_the_test_settings_do_not_throttle(user):
    cache.clear()
    api = token_client(user)

    assert {api.get("/api/engines/").status_code for _ in range(100)} == {200}


# Request bounds


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("path", ["/api/presets/", "/api/presets/merge", "/api/tasks/", "/api/presets/import"], ids=str)
def test_json_100000_levels_deep_answers_400_quickly(user, path):
    api = token_client(user)
    started = time.perf_counter()

    response = api.post(path, nested(100_000), content_type="application/json")

    assert time.perf_counter() - started < 2
    assert response.status_code == 400
    at = "[0]" * 32
    assert response.json() == {
        "detail": f"JSON nesting deeper than 32 levels at path {at}.",
        "errors": [{"path": at, "message": "nesting deeper than 32 levels"}],
    }


@pytest.mark.parametrize(("levels", "status"), [(30, 200), (31, 400)], ids=["32-levels-in-all", "33-levels-in-all"])
def test_nesting_is_counted_from_the_top(user, levels, status):
    preset = make_preset(name="Mine", created_by=user)
    # merge ignores fields it does not know, so only the nesting decides
    body = f'{{"preset_ids": [{preset.pk}], "merge_strategy": "last_wins", "extra": {{"notes": {nested(levels)}}}}}'

    response = token_client(user).post("/api/presets/merge", body, content_type="application/json")

    assert response.status_code == status, response.content
    if status == 400:
        assert response.json()["errors"][0]["path"] == "extra.notes" + "[0]" * (levels - 1)


def test_brackets_inside_strings_do_not_count(user):
    body = '{"name": "Brackets", "parameters": {"tp-size": [1]}, "description": "' + "[{" * 100 + '"}'

    response = token_client(user).post("/api/presets/", body, content_type="application/json")

    assert response.status_code == 201
    assert ParameterPreset.objects.get().description == "[{" * 100


def test_an_import_page_file_nested_too_deeply_is_refused_with_a_message(client, user):
    client.force_login(user)
    upload = SimpleUploadedFile("deep.json", nested(50_000).encode(), content_type="application/json")

    response = client.post("/presets/import/", {"file": upload, "on_conflict": "fail"})

    assert response.status_code in {200, 422}
    assert "JSON nesting deeper than 32 levels at path" in response.content.decode()


@pytest.mark.parametrize("path", ["/api/presets/", "/api/tasks/"], ids=["presets", "tasks"])
def test_a_search_over_200_characters_answers_400_naming_it(user, path):
    response = token_client(user).get(path, {"search": "x" * 201})

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "search", "message": "Ensure this value has at most 200 characters (it has 201)."}
    ]


@pytest.mark.parametrize("path", ["/presets/", "/tasks/"], ids=["presets", "tasks"])
def test_a_search_over_200_characters_on_a_page_says_so_and_lists_nothing(client, user, path):
    client.force_login(user)

    response = client.get(path, {"search": "x" * 201})

    assert response.status_code == 200
    assert "Ensure this value has at most 200 characters (it has 201)." in response.content.decode()


def test_a_session_merge_with_a_broken_multipart_body_answers_415_not_an_error(user):
    api = APIClient(enforce_csrf_checks=True, raise_request_exception=False)
    api.force_login(user)
    api.cookies["csrftoken"] = "a" * 32  # with the cookie and no header, the CSRF check reads the token from the form

    response = api.post("/api/presets/merge", b"--x--", content_type="multipart/form-data")

    assert response.status_code == 415  # the merge reads JSON only, and the body is never parsed as a form
    assert response.json() == {"detail": 'Unsupported media type "multipart/form-data" in request.'}
