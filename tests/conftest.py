"""Fixtures shared by the whole suite: users, signed-in clients, the system presets.

Declared once here; a module adds only the fixtures that are its own.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from presets.models import ParameterPreset
from presets.seeding import seed_system_presets
from tests.factories import make_preset
from tests.postgres import postgres_url  # noqa: F401  (one throwaway cluster per session, for tests marked postgres)


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-123")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("grace", password="pw-grace-123")


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("linus", password="pw-linus-123", is_staff=True)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", password="pw-root-123")


@pytest.fixture
def signed_in(client, user):
    """Django's test client with ``user`` signed in through the session, as a browser is."""
    client.force_login(user)
    return client


@pytest.fixture
def api(user) -> APIClient:
    """DRF's test client with ``user`` signed in through the session (the API's own CSRF rules apply
    only where a test asks for them with ``APIClient(enforce_csrf_checks=True)``)."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def system_presets(db) -> dict[str, ParameterPreset]:
    """The shipped system presets, loaded as ``manage.py seed_presets`` loads them, by name."""
    seed_system_presets()
    return {preset.name: preset for preset in ParameterPreset.objects.all()}


@pytest.fixture
def trashed(user) -> ParameterPreset:
    """A preset of the user's in the trash."""
    preset = make_preset(name="Thrown away", created_by=user)
    preset.trash(by=user)
    return preset
