"""DRF token authentication in one hand-written query.

Stock ``TokenAuthentication`` builds its ``select_related`` query through the ORM on every
request; compiling it costs about half a millisecond here, more than the rest of a merge.
The same lookup, written once as SQL, returns the same user.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


@cache
def _user_query() -> tuple[str, list[str]]:
    User = get_user_model()
    quote = connection.ops.quote_name
    fields = [field.attname for field in User._meta.concrete_fields]
    columns = ", ".join(f"u.{quote(User._meta.get_field(name).column)}" for name in fields)
    token_user = quote(Token._meta.get_field("user").column)
    token_key = quote(Token._meta.get_field("key").column)
    sql = (
        f"SELECT {columns} FROM {quote(User._meta.db_table)} u "
        f"JOIN {quote(Token._meta.db_table)} t ON t.{token_user} = u.{quote(User._meta.pk.column)} "
        f"WHERE t.{token_key} = %s"
    )
    return sql, fields


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
    sql, fields = _user_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        row = cursor.fetchone()
    if row is None:
        raise exceptions.AuthenticationFailed("Invalid token.")
    user = get_user_model().from_db(connection.alias, fields, list(row))
    if not user.is_active:
        raise exceptions.AuthenticationFailed("User inactive or deleted.")
    return user, key


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, str] | None:
        # DRF reads the header through request.headers, which parses every header of the
        # request first; the one needed is in META.
        return user_for_token_header(request._request.META.get("HTTP_AUTHORIZATION", ""), self.keyword)
