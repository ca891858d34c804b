from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from presets.api import listed_json
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


@pytest.fixture(autouse=True)
def _forget_listed_presets():
    """A rolled-back test database gives out the same ids again: the listed presets' JSON
    texts one test kept (presets.api.ListedJSON) must not be another's."""
    yield
    listed_json.clear()
