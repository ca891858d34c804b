from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "On first run, create the local superuser 'admin' with a random password stored in "
        "the data folder; afterwards, print where the password is."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        password_file = settings.DATA_DIR / "admin-password.txt"
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            if password_file.exists():
                password = password_file.read_text().strip()
                self.stdout.write(f"Log in as admin / {password}  (stored in {password_file})")
            else:
                self.stdout.write("User 'admin' exists; its password is not stored here.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", email="", password=password)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(f"Created user admin / {password}  (stored in {password_file})")
