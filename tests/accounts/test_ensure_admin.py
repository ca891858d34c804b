"""`manage.py ensure_admin`: the local superuser made once, its password kept in the data folder."""

from __future__ import annotations

import stat
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.http import HttpRequest  # django-axes checks logins against their request

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_ensure_admin_creates_a_superuser_whose_password_is_stored_in_the_data_folder(data_dir):
    output = ensure_admin()

    password_file = data_dir / "admin-password.txt"
    password = password_file.read_text().strip()
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert len(password) >= 12
    assert authenticate(HttpRequest(), username="admin", password=password) == admin
    assert f"Created user admin / {password}" in output
    assert str(password_file) in output


def test_the_password_file_is_readable_only_by_its_owner(data_dir):
    ensure_admin()

    mode = stat.S_IMODE((data_dir / "admin-password.txt").stat().st_mode)
    assert mode == 0o600


def test_ensure_admin_a_second_time_creates_nothing_and_prints_the_password_again(data_dir):
    ensure_admin()
    password = (data_dir / "admin-password.txt").read_text().strip()
    admin = get_user_model().objects.get(username="admin")

    output = ensure_admin()

    assert get_user_model().objects.count() == 1
    assert f"Log in as admin / {password}" in output
    assert (data_dir / "admin-password.txt").read_text().strip() == password
    admin.refresh_from_db()
    assert authenticate(HttpRequest(), username="admin", password=password) == admin


def test_ensure_admin_leaves_an_existing_admin_alone_when_no_password_is_stored(data_dir):
    get_user_model().objects.create_superuser("admin", password="chosen-by-hand")

    output = ensure_admin()

    assert output.strip() == "User 'admin' exists; its password is not stored here."
    assert not (data_dir / "admin-password.txt").exists()
    assert authenticate(HttpRequest(), username="admin", password="chosen-by-hand") is not None


def test_each_new_admin_gets_a_different_password(settings, tmp_path):
    passwords = []
    for name in ("first", "second"):
        settings.DATA_DIR = tmp_path / name
        settings.DATA_DIR.mkdir()
        ensure_admin()
        passwords.append((settings.DATA_DIR / "admin-password.txt").read_text().strip())
        get_user_model().objects.filter(username="admin").delete()

    assert passwords[0] != passwords[1]
