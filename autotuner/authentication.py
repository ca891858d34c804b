"""Left only for autotuner.http's fast path until it goes: tokens are accounts.authentication's."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions

from accounts.authentication import ApiTokenAuthentication


def user_for_token_header(header: str, keyword: str = "Token") -> tuple[Any, str] | None:
    parts = header.split()
    if not parts or parts[0].lower() != keyword.lower():
        return None
    if len(parts) == 1:
        raise exceptions.AuthenticationFailed("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise exceptions.AuthenticationFailed("Invalid token header. Token string should not contain spaces.")
    user, _ = ApiTokenAuthentication().authenticate_credentials(parts[1])
    return user, parts[1]
