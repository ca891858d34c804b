"""API tokens: several per user, each named, stored only as a SHA-256 hash.

The key is shown once, when it is made; afterwards only its first characters identify it.
A key is 160 random bits, so a plain hash (no salt, no slow hash) is enough to keep a stolen
database from yielding working keys.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

PREFIX_LENGTH = 8
MAX_NAME_LENGTH = 100


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def of(self, user: Any) -> ApiTokenQuerySet:
        return self.filter(user=user)


class ApiTokenManager(models.Manager.from_queryset(ApiTokenQuerySet)):  # type: ignore[misc]
    def create_token(self, *, user: Any, name: str) -> tuple[ApiToken, str]:
        """A new token and its key, the only time the key exists outside the client."""
        key = secrets.token_hex(20)  # 40 characters, as DRF's keys were
        token = self.create(user=user, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key))
        return token, key


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    prefix = models.CharField(max_length=PREFIX_LENGTH, help_text="The key's first characters, to tell tokens apart.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenManager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="api_token_name_unique_per_user")]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
