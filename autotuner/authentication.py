"""API token authentication in one hand-written query.

``Authorization: Token <key>``, as DRF's TokenAuthentication reads it, looked up by the key's
SHA-256 hash in ``accounts.ApiToken`` (keys are never stored). Stock DRF builds its
``select_related`` query through the ORM on every request; compiling it costs about half a
millisecond here, more than the rest of a merge. The same lookup, written once as SQL, returns
the same user.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from rest_framework import authentication, exceptions

from accounts.backends import user_columns, user_from_row
from accounts.models import ApiToken, hash_key
from autotuner.readcache import UntilChanged

# A token's last use is written at most this often (seconds) per process: a write on every
# request would cost more than the lookup, and the page shows it to the minute.
LAST_USED_RESOLUTION = 60.0
_last_written: dict[str, float] = {}
# Who a token belongs to is looked up again only after a write (a revoked token, a deactivated
# user, any other change): autotuner.readcache. Each request still gets a user of its own.
_token_users = UntilChanged(size=1024)


@cache
def _user_query(legacy: bool = False) -> str:
    """The user of a token: by the key's hash in accounts.ApiToken, or (``legacy``) by the plain key
    in DRF's own token table. Its columns are accounts.backends.user_columns."""
    User = get_user_model()
    quote = connection.ops.quote_name
    if legacy:
        from rest_framework.authtoken.models import Token

        table, user_column, key_column = Token._meta.db_table, Token._meta.get_field("user").column, "key"
    else:
        table = ApiToken._meta.db_table
        user_column, key_column = ApiToken._meta.get_field("user").column, ApiToken._meta.get_field("key_hash").column
    return (
        f"SELECT {user_columns(connection.alias, 'u')} FROM {quote(User._meta.db_table)} u "
        f"JOIN {quote(table)} t ON t.{quote(user_column)} = u.{quote(User._meta.pk.column)} "
        f"WHERE t.{quote(key_column)} = %s"
    )


def user_for_token_header(header: str, keyword: str = "Token") -> tuple[Any, str] | None:
    """The user an ``Authorization: Token <key>`` header names; None when the header is not a
    token; AuthenticationFailed when it is a bad one. DRF's checks and messages."""
    parts = header.split()
    if not parts or parts[0].lower() != keyword.lower():
        return None
    if len(parts) == 1:
        raise exceptions.AuthenticationFailed("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise exceptions.AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
    key = parts[1]
    key_hash = hash_key(key)
    row, key_hash = _token_users.get(key_hash, lambda: _user_row(key, key_hash))
    if row is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    user = user_from_row(row, connection.alias)
    if not user.is_active:
        raise exceptions.AuthenticationFailed("User inactive or deleted.")
    _note_use(key_hash)
    return user, key


def _user_row(key: str, key_hash: str) -> tuple[tuple[Any, ...] | None, str]:
    """The user's row (user_columns) for a token, and the hash its use is noted under ("" for none)."""
    with connection.cursor() as cursor:
        cursor.execute(_user_query(), [key_hash])
        row = cursor.fetchone()
        if row is None:  # a DRF token (made by drf_create_token or DRF's Token model): one more query
            cursor.execute(_user_query(legacy=True), [key])
            return cursor.fetchone(), ""
    return row, key_hash


def _note_use(key_hash: str) -> None:
    if not key_hash:
        return  # a DRF token keeps no last use
    now = time.monotonic()
    if now - _last_written.get(key_hash, -LAST_USED_RESOLUTION) < LAST_USED_RESOLUTION:
        return
    _last_written[key_hash] = now
    ApiToken.objects.filter(key_hash=key_hash).update(last_used_at=timezone.now())


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, str] | None:
        # DRF reads the header through request.headers, which parses every header of the
        # request first; the one needed is in META.
        return user_for_token_header(request._request.META.get("HTTP_AUTHORIZATION", ""), self.keyword)
