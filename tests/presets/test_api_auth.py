"""Who may call the presets API and change what: logins, tokens, CSRF, edit rights, If-Match."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest
from rest_framework.test import APIClient

from presets.models import SYSTEM_READ_ONLY, ParameterPreset
from tests.factories import make_preset, make_token_key, system_preset_names

pytestmark = pytest.mark.django_db

CSRF_SECRET = "a" * 32
PASSWORDS = {"ada": "pw-ada-123", "grace": "pw-grace-123", "linus": "pw-linus-123", "root": "pw-root-123"}


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def with_token(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token_key(user)}")
    return client


def import_document(name: str = "Imported") -> dict:
    return {"version": "1.0", "preset": {"name": name, "parameters": {"tp-size": [1]}}}


@pytest.fixture
def adas_preset(user) -> ParameterPreset:
    return make_preset(name="Ada's grid", description="Original", parameters={"tp-size": [1, 2]}, created_by=user)


# Anonymous requests

ENDPOINTS = [
    pytest.param("get", "/api/presets/", id="list"),
    pytest.param("post", "/api/presets/", id="create"),
    pytest.param("get", "/api/presets/{id}", id="get"),
    pytest.param("put", "/api/presets/{id}", id="put"),
    pytest.param("patch", "/api/presets/{id}", id="patch"),
    pytest.param("delete", "/api/presets/{id}", id="delete"),
    pytest.param("post", "/api/presets/{id}/duplicate", id="duplicate"),
    pytest.param("post", "/api/presets/merge", id="merge"),
    pytest.param("post", "/api/presets/import", id="import"),
    pytest.param("get", "/api/presets/{id}/export", id="export"),
    pytest.param("get", "/api/presets/export", id="bundle-export"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_an_anonymous_request_answers_401_with_www_authenticate(adas_preset, method, path):
    response = getattr(APIClient(), method)(path.format(id=adas_preset.pk), {"preset_ids": [1]}, format="json")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"]
    assert response.json()["detail"]
    adas_preset.refresh_from_db()
    assert adas_preset.description == "Original"
    assert ParameterPreset.objects.count() == 1


@pytest.mark.parametrize("header", ["Token not-a-real-key", "Token ", "Bearer abc"], ids=["unknown", "empty", "bearer"])
def test_a_bad_token_answers_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/presets/")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"]


def test_the_token_of_an_inactive_user_answers_401(user):
    client = with_token(user)
    user.is_active = False
    user.save()

    assert client.get("/api/presets/").status_code == 401


# Token and session logins


def test_a_token_reads_the_list(user, system_presets):
    response = with_token(user).get("/api/presets/")

    assert response.status_code == 200
    assert sorted(preset["name"] for preset in response.json()) == sorted(system_preset_names())


def test_a_token_creates_a_preset_without_a_csrf_token(user):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token_key(user)}")

    response = client.post("/api/presets/", {"name": "By token", "parameters": {"tp-size": [1]}}, format="json")

    assert response.status_code == 201
    assert ParameterPreset.objects.get(name="By token").created_by == user


def test_a_session_reads_the_list(user, system_presets):
    assert logged_in(user).get("/api/presets/").status_code == 200


@pytest.fixture
def csrf_client(user) -> APIClient:
    """A password login whose unsafe requests must carry the CSRF token."""
    client = APIClient(enforce_csrf_checks=True)
    # django-axes' backend wants the request; a login outside one passes a blank one.
    assert client.login(request=HttpRequest(), username=user.username, password=PASSWORDS[user.username])
    return client


UNSAFE_REQUESTS = [
    pytest.param("post", "/api/presets/", {"name": "New", "parameters": {"tp-size": [1]}}, id="create"),
    pytest.param("put", "/api/presets/{id}", {"name": "New", "parameters": {"tp-size": [1]}}, id="put"),
    pytest.param("patch", "/api/presets/{id}", {"description": "Changed"}, id="patch"),
    pytest.param("delete", "/api/presets/{id}", None, id="delete"),
    pytest.param("post", "/api/presets/{id}/duplicate", None, id="duplicate"),
    pytest.param("post", "/api/presets/merge", {"preset_ids": ["{id}"]}, id="merge"),
    pytest.param("post", "/api/presets/import", import_document(), id="import"),
]


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE_REQUESTS)
def test_a_session_request_without_the_csrf_token_answers_403(csrf_client, adas_preset, method, path, body):
    response = getattr(csrf_client, method)(path.format(id=adas_preset.pk), body, format="json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    adas_preset.refresh_from_db()
    assert adas_preset.description == "Original"
    assert list(ParameterPreset.objects.values_list("name", flat=True)) == ["Ada's grid"]


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE_REQUESTS)
def test_a_session_request_with_the_csrf_token_succeeds(csrf_client, adas_preset, method, path, body):
    csrf_client.cookies["csrftoken"] = CSRF_SECRET
    if body and body.get("preset_ids"):
        body = {"preset_ids": [adas_preset.pk]}

    response = getattr(csrf_client, method)(
        path.format(id=adas_preset.pk), body, format="json", HTTP_X_CSRFTOKEN=CSRF_SECRET
    )

    assert response.status_code in (200, 201, 204)


def test_a_session_needs_no_csrf_token_to_read(csrf_client, adas_preset):
    assert csrf_client.get(f"/api/presets/{adas_preset.pk}").status_code == 200
    assert csrf_client.get("/api/presets/export").status_code == 200


# What any logged-in user may do


def test_any_user_reads_another_users_preset(other_user, adas_preset):
    response = logged_in(other_user).get(f"/api/presets/{adas_preset.pk}")

    assert response.status_code == 200
    assert response.json()["name"] == "Ada's grid"


def test_any_user_duplicates_another_users_preset(other_user, adas_preset):
    response = logged_in(other_user).post(f"/api/presets/{adas_preset.pk}/duplicate")

    assert response.status_code == 201
    assert ParameterPreset.objects.get(pk=response.json()["id"]).created_by == other_user


def test_any_user_merges_other_users_and_system_presets(other_user, adas_preset, system_presets):
    ids = [adas_preset.pk, system_presets["Balanced"].pk]

    response = logged_in(other_user).post("/api/presets/merge", {"preset_ids": ids}, format="json")

    assert response.status_code == 200
    assert response.json()["applied_presets"] == ["Ada's grid", "Balanced"]


def test_any_user_exports_another_users_preset(other_user, adas_preset):
    client = logged_in(other_user)

    assert client.get(f"/api/presets/{adas_preset.pk}/export").status_code == 200
    assert client.get(f"/api/presets/export?ids={adas_preset.pk}").status_code == 200


def test_any_user_imports(other_user):
    upload = SimpleUploadedFile("grid.json", b'{"version": "1.0", "preset": {"name": "Up", "parameters": {"a": [1]}}}')

    response = logged_in(other_user).post("/api/presets/import", {"file": upload}, format="multipart")

    assert response.status_code == 201
    assert ParameterPreset.objects.get(name="Up").created_by == other_user


# Editing, replacing, deleting: the creator and staff, never a system preset

CHANGES = [
    pytest.param("put", {"name": "Changed", "description": "Changed", "parameters": {"tp-size": [8]}}, 200, id="put"),
    pytest.param("patch", {"description": "Changed"}, 200, id="patch"),
    pytest.param("delete", None, 204, id="delete"),
]


@pytest.mark.parametrize(("method", "body", "status"), CHANGES)
@pytest.mark.parametrize("actor", ["user", "staff_user", "superuser"], ids=["creator", "staff", "superuser"])
def test_the_creator_and_staff_change_a_user_preset(request, adas_preset, actor, method, body, status):
    client = logged_in(request.getfixturevalue(actor))

    response = getattr(client, method)(f"/api/presets/{adas_preset.pk}", body, format="json")

    assert response.status_code == status
    if method == "delete":
        assert not ParameterPreset.objects.filter(pk=adas_preset.pk).exists()
    else:
        adas_preset.refresh_from_db()
        assert adas_preset.description == "Changed"


@pytest.mark.parametrize(("method", "body", "status"), CHANGES)
def test_another_user_may_not_change_a_user_preset(other_user, adas_preset, method, body, status):
    response = getattr(logged_in(other_user), method)(f"/api/presets/{adas_preset.pk}", body, format="json")

    assert response.status_code == 403
    assert response.json()["detail"]
    adas_preset.refresh_from_db()
    assert adas_preset.description == "Original"
    assert adas_preset.parameters == {"tp-size": [1, 2]}


@pytest.mark.parametrize(("method", "body", "status"), CHANGES)
def test_a_preset_nobody_created_is_changed_only_by_staff(user, staff_user, method, body, status):
    orphan = make_preset(name="Orphan", created_by=None)

    refused = getattr(logged_in(user), method)(f"/api/presets/{orphan.pk}", body, format="json")
    allowed = getattr(logged_in(staff_user), method)(f"/api/presets/{orphan.pk}", body, format="json")

    assert refused.status_code == 403
    assert allowed.status_code == status


@pytest.mark.parametrize(("method", "body", "status"), CHANGES)
@pytest.mark.parametrize("actor", ["user", "staff_user", "superuser"], ids=["user", "staff", "superuser"])
def test_nobody_changes_a_system_preset(request, system_presets, actor, method, body, status):
    balanced = system_presets["Balanced"]
    client = logged_in(request.getfixturevalue(actor))

    response = getattr(client, method)(f"/api/presets/{balanced.pk}", body, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == SYSTEM_READ_ONLY
    changed = ParameterPreset.objects.get(pk=balanced.pk)
    assert (changed.name, changed.description, changed.parameters) == (
        balanced.name,
        balanced.description,
        balanced.parameters,
    )


def test_a_system_preset_stays_read_only_even_for_a_valid_full_replacement(superuser, system_presets):
    balanced = system_presets["Balanced"]
    body = {"name": "Balanced", "parameters": balanced.parameters, "runtime": "sglang"}

    response = logged_in(superuser).put(f"/api/presets/{balanced.pk}", body, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == SYSTEM_READ_ONLY


def test_another_user_is_refused_before_their_input_is_validated(other_user, adas_preset):
    response = logged_in(other_user).patch(f"/api/presets/{adas_preset.pk}", {"parameters": "junk"}, format="json")

    assert response.status_code == 403


# Lost updates: If-Match


@pytest.fixture
def ada(user) -> APIClient:
    return logged_in(user)


def test_the_etag_from_get_lets_the_next_change_through(ada, adas_preset):
    etag = ada.get(f"/api/presets/{adas_preset.pk}").headers["ETag"]

    response = ada.patch(f"/api/presets/{adas_preset.pk}", {"description": "Mine"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200
    adas_preset.refresh_from_db()
    assert adas_preset.description == "Mine"


STALE_CHANGES = [
    pytest.param("put", {"name": "Late", "description": "Late", "parameters": {"tp-size": [9]}}, id="put"),
    pytest.param("patch", {"description": "Late"}, id="patch"),
    pytest.param("delete", None, id="delete"),
]


@pytest.mark.parametrize(("method", "body"), STALE_CHANGES)
def test_a_stale_if_match_answers_412_and_changes_nothing(ada, adas_preset, method, body):
    url = f"/api/presets/{adas_preset.pk}"
    stale = ada.get(url).headers["ETag"]
    assert ada.patch(url, {"description": "Someone else's"}, format="json").status_code == 200

    response = getattr(ada, method)(url, body, format="json", HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert response.json()["detail"]
    adas_preset.refresh_from_db()
    assert adas_preset.name == "Ada's grid"
    assert adas_preset.description == "Someone else's"
    assert adas_preset.parameters == {"tp-size": [1, 2]}


@pytest.mark.parametrize(("method", "body"), STALE_CHANGES)
def test_the_current_etag_lets_each_change_through(ada, adas_preset, method, body):
    url = f"/api/presets/{adas_preset.pk}"
    ada.patch(url, {"description": "Someone else's"}, format="json")
    current = ada.get(url).headers["ETag"]

    response = getattr(ada, method)(url, body, format="json", HTTP_IF_MATCH=current)

    assert response.status_code in (200, 204)


def test_the_etag_returned_by_a_change_is_the_current_one(ada, adas_preset):
    url = f"/api/presets/{adas_preset.pk}"
    changed = ada.patch(url, {"description": "First"}, format="json")

    assert changed.headers["ETag"] == ada.get(url).headers["ETag"]
    second = ada.patch(url, {"description": "Second"}, format="json", HTTP_IF_MATCH=changed.headers["ETag"])
    assert second.status_code == 200


def test_an_if_match_of_made_up_tags_answers_412(ada, adas_preset):
    response = ada.delete(f"/api/presets/{adas_preset.pk}", HTTP_IF_MATCH='"nope", "neither"')

    assert response.status_code == 412
    assert ParameterPreset.objects.filter(pk=adas_preset.pk).exists()


def test_an_if_match_listing_the_current_tag_among_others_succeeds(ada, adas_preset):
    url = f"/api/presets/{adas_preset.pk}"
    current = ada.get(url).headers["ETag"]

    response = ada.delete(url, HTTP_IF_MATCH=f'"old", {current}')

    assert response.status_code == 204


def test_a_change_without_if_match_is_accepted(ada, adas_preset):
    response = ada.patch(f"/api/presets/{adas_preset.pk}", {"description": "Blind"}, format="json")

    assert response.status_code == 200
