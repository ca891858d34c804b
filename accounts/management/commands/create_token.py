"""Make an API token for a user and print its key (the only time it is shown)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.forms import ApiTokenForm
from accounts.models import ApiToken


class Command(BaseCommand):
    help = "Create an API token for USER and print its key; only its hash is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="Command line", help="What uses it (default: %(default)s).")

    def handle(self, *args: Any, username: str, name: str, **options: Any) -> None:
        User = get_user_model()
        try:
            user = User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
        form = ApiTokenForm({"name": name}, user=user)
        if not form.is_valid():
            raise CommandError(" ".join(map(str, form.errors["name"])))
        _token, key = ApiToken.objects.create_token(user=user, name=form.cleaned_data["name"])
        self.stdout.write(key)
