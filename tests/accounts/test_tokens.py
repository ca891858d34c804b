"""API tokens on the account page: made and shown once, listed, revoked; only hashes are stored."""

from __future__ import annotations

import hashlib
import importlib
import io
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.factories import make_token_key
from tests.html import Element, parse

pytestmark = pytest.mark.django_db

ACCOUNT = "/account/"


def page(response) -> Element:
    return parse(response.content)


def flashed(response) -> list[str]:
    return [message.text for message in page(response).by_id("messages").find_all("p")]


def token_get(key: str, path: str = "/api/presets/"):
    return APIClient().get(path, headers={"Authorization": f"Token {key}"})


def test_the_account_page_says_there_are_no_tokens_yet(signed_in):
    response = signed_in.get(ACCOUNT)

    assert response.status_code == 200
    card = page(response).by_id("api-tokens")
    assert "You have no tokens yet." in card.text
    assert card.by_id("id_name") is not None


def test_the_page_showing_a_new_key_is_never_kept_by_a_browser_or_a_proxy(signed_in):
    response = signed_in.post(ACCOUNT, {"name": "CI pipeline"})

    assert page(response).by_id("new-token") is not None
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_a_new_token_is_shown_in_full_once_and_only_its_hash_is_stored(signed_in, user):
    response = signed_in.post(ACCOUNT, {"name": "CI pipeline"})

    assert response.status_code == 200
    key = page(response).by_id("new-token").text
    assert len(key) == 40
    assert flashed(response) == ["Created the token “CI pipeline”. Copy it now: it is shown only this once."]
    copy = page(response).find("button", **{"data-copy": "new-token"})
    assert copy is not None
    token = ApiToken.objects.get(user=user)
    assert (token.name, token.prefix, token.key_hash) == (
        "CI pipeline",
        key[:8],
        hashlib.sha256(key.encode()).hexdigest(),
    )
    assert key not in str(ApiToken.objects.filter(user=user).values_list())

    later = signed_in.get(ACCOUNT)

    assert key not in later.content.decode()
    row = page(later).by_id(f"token-{token.pk}")
    assert [cell.text.strip() for cell in row.find_all("td")][:2] == ["CI pipeline", f"{key[:8]}…"]
    assert "never" in row.text


def test_a_new_token_authenticates_and_records_its_last_use(signed_in, user):
    key = page(signed_in.post(ACCOUNT, {"name": "Laptop"})).by_id("new-token").text

    response = token_get(key)

    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    assert token.last_used_at is not None
    assert "never" not in page(signed_in.get(ACCOUNT)).by_id(f"token-{token.pk}").text


def test_a_user_may_hold_several_tokens_each_working(signed_in, user):
    first = page(signed_in.post(ACCOUNT, {"name": "One"})).by_id("new-token").text
    second = page(signed_in.post(ACCOUNT, {"name": "Two"})).by_id("new-token").text

    assert first != second
    assert token_get(first).status_code == 200
    assert token_get(second).status_code == 200
    assert [row.find("td").text for row in page(signed_in.get(ACCOUNT)).find("tbody").find_all("tr")] == ["Two", "One"]


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
        ("tab\there", "Use letters, digits, spaces and punctuation only."),
        ("Taken", "You already have a token with this name."),
    ],
    ids=["empty", "blank", "too-long", "control-character", "duplicate"],
)
def test_token_names_are_validated(signed_in, user, name, error):
    ApiToken.objects.create_token(user=user, name="Taken")

    response = signed_in.post(ACCOUNT, {"name": name})

    assert response.status_code == 422
    assert 'id="new-token"' not in response.content.decode()
    assert error in page(response).by_id("api-tokens").text
    assert ApiToken.objects.count() == 1


def test_another_users_token_name_may_be_reused(signed_in, other_user):
    ApiToken.objects.create_token(user=other_user, name="CI")

    assert signed_in.post(ACCOUNT, {"name": "CI"}).status_code == 200
    assert ApiToken.objects.filter(name="CI").count() == 2


def test_revoking_a_token_makes_its_key_answer_401(signed_in, user):
    key = make_token_key(user, name="Old laptop")
    kept = make_token_key(user, name="Desktop")
    token = ApiToken.objects.get(name="Old laptop")
    assert token_get(key).status_code == 200

    response = signed_in.post(f"/account/tokens/{token.pk}/revoke/")

    assert response.status_code == 302
    assert response["Location"] == ACCOUNT
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    assert token_get(key).status_code == 401
    assert token_get(kept).status_code == 200
    assert flashed(signed_in.get(ACCOUNT)) == ["Revoked the token “Old laptop”; requests using it are now refused."]


def test_a_revoked_token_is_refused_by_the_merge_too(signed_in, user):
    key = make_token_key(user)
    merge = {"preset_ids": [], "merge_strategy": "last_wins"}
    signed_in.post(f"/account/tokens/{ApiToken.objects.get().pk}/revoke/")

    response = APIClient().post("/api/presets/merge", merge, format="json", headers={"Authorization": f"Token {key}"})

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_another_users_token_cannot_be_revoked(signed_in, other_user):
    key = make_token_key(other_user)
    theirs = ApiToken.objects.get(user=other_user)

    response = signed_in.post(f"/account/tokens/{theirs.pk}/revoke/")

    assert response.status_code == 404
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert token_get(key).status_code == 200


def test_another_users_tokens_are_not_listed(signed_in, other_user):
    make_token_key(other_user, name="Grace's CI")

    assert "Grace's CI" not in signed_in.get(ACCOUNT).content.decode()


def test_revoking_needs_a_post(signed_in, user):
    make_token_key(user)

    response = signed_in.get(f"/account/tokens/{ApiToken.objects.get().pk}/revoke/")

    assert response.status_code == 405
    assert ApiToken.objects.exists()


@pytest.mark.parametrize("path", ["/account/", "/account/tokens/{pk}/revoke/"], ids=["create", "revoke"])
def test_token_forms_need_the_csrf_token(user, path):
    make_token_key(user, name="Existing")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(path.format(pk=ApiToken.objects.get().pk), {"name": "New"})

    assert response.status_code == 403
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["Existing"]


@pytest.mark.parametrize("path", ["/account/", "/account/tokens/1/revoke/"], ids=["create", "revoke"])
def test_token_pages_need_a_signed_in_user(client, path):
    response = client.post(path, {"name": "New"})

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")
    assert not ApiToken.objects.exists()


def test_the_token_of_an_inactive_user_answers_401(user):
    key = make_token_key(user)
    user.is_active = False
    user.save()

    response = token_get(key)

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


def test_an_unknown_token_answers_401_and_says_how_to_authenticate(db):
    response = token_get("0" * 40)

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert response["WWW-Authenticate"] == "Token"


def test_a_tokens_last_use_is_written_at_most_once_a_minute(user):
    key = make_token_key(user)
    token_get(key)
    first = ApiToken.objects.get().last_used_at

    token_get(key)

    assert ApiToken.objects.get().last_used_at == first

    ApiToken.objects.update(last_used_at=first - timedelta(minutes=1))
    token_get(key)

    assert ApiToken.objects.get().last_used_at > first


# The management command


def test_create_token_prints_a_working_key(user):
    out = io.StringIO()

    call_command("create_token", "ada", "--name", "Nightly job", stdout=out)

    key = out.getvalue().strip()
    assert ApiToken.objects.get().name == "Nightly job"
    assert token_get(key).status_code == 200


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nobody"], "No user named 'nobody'."),
        (["ada", "--name", "Taken"], "You already have a token with this name."),
    ],
    ids=["unknown-user", "duplicate-name"],
)
def test_create_token_refuses_bad_input(user, args, error):
    ApiToken.objects.create_token(user=user, name="Taken")

    with pytest.raises(CommandError, match=error):
        call_command("create_token", *args, stdout=io.StringIO())


# Tokens made before: DRF's authtoken table


@pytest.fixture
def drf_token_table():
    """DRF's token table, as a deployment from before keeps it (DRF's app is no longer installed)."""
    migration = importlib.import_module("accounts.migrations.0002_import_drf_tokens")
    model = migration.drf_token_model()
    with connection.schema_editor() as editor:
        editor.create_model(model)
    yield migration, model
    with connection.schema_editor() as editor:
        editor.delete_model(model)


@pytest.mark.django_db(transaction=True)  # SQLite changes its schema only outside a transaction
def test_existing_drf_tokens_become_hashed_tokens_that_keep_working(user, drf_token_table):
    migration, DrfToken = drf_token_table
    key = "0123456789abcdef0123456789abcdef01234567"
    DrfToken.objects.create(key=key, user_id=user.pk, created=datetime(2025, 1, 2, 3, 4, 5, 678901, UTC))

    migration.import_tokens(apps, SimpleNamespace(connection=connection))

    token = ApiToken.objects.get()
    assert (token.user, token.name, token.prefix, token.created_at) == (
        user,
        "API token",
        key[:8],
        datetime(2025, 1, 2, 3, 4, 5, 678901, UTC),
    )
    assert token_get(key).status_code == 200
    assert not DrfToken.objects.exists()  # no plaintext key is left behind


@pytest.mark.django_db(transaction=True)
def test_a_drf_token_made_after_the_first_import_gets_a_name_of_its_own(user, drf_token_table):
    _, DrfToken = drf_token_table
    ApiToken.objects.create_token(user=user, name="API token")
    key = "fedcba9876543210fedcba9876543210fedcba98"
    DrfToken.objects.create(key=key, user_id=user.pk, created=timezone.now())

    later = importlib.import_module("accounts.migrations.0003_import_later_drf_tokens")
    later.import_tokens(apps, SimpleNamespace(connection=connection))

    assert sorted(ApiToken.objects.values_list("name", flat=True)) == ["API token", "API token (2)"]
    assert token_get(key).status_code == 200


def test_without_drf_tokens_the_import_does_nothing(db):
    migration = importlib.import_module("accounts.migrations.0002_import_drf_tokens")

    migration.import_tokens(apps, SimpleNamespace(connection=connection))

    assert not ApiToken.objects.exists()
