"""Django's database sessions, read with one plain statement instead of an ORM query.

Every signed-in request reads its session first. Building ``Session.objects.get(...)``
(clone, filter, compile) cost ten times the query itself on these machines: a sizeable share
of a small htmx fragment. Checking and unpacking the stored text (HMAC, zlib, JSON) is done
once per text and secret key per process. Writing, expiry and cleanup stay Django's own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connections, router
from django.utils import timezone


@lru_cache(maxsize=4096)
def _checked_payload(
    session_data: str, salt: str, serializer: type, key: str, fallbacks: tuple[str, ...]
) -> bytes | None:
    """A stored session's content as its serializer's bytes; None when it does not check out.

    The same text with the same keys always decodes the same way; the keys are in the cache
    key so that a rotated SECRET_KEY is never bypassed."""
    try:
        decoded = signing.loads(session_data, key=key, salt=salt, serializer=serializer, fallback_keys=fallbacks)
    except Exception:  # Django's decode logs and answers an empty session for these
        return None
    return serializer().dumps(decoded)


class SessionStore(db.SessionStore):
    def decode(self, session_data: str) -> dict[str, Any]:
        payload = _checked_payload(
            session_data, self.key_salt, self.serializer, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS)
        )
        if payload is None:
            return super().decode(session_data)
        return self.serializer().loads(payload)  # a new dict each time: a session is changed in place

    def _get_session_from_db(self) -> Session | None:
        key = self.session_key
        row = None
        if key is not None:
            connection = connections[router.db_for_read(Session)]
            quote = connection.ops.quote_name
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {quote('session_data')} FROM {quote(Session._meta.db_table)} "
                    f"WHERE {quote('session_key')} = %s AND {quote('expire_date')} > %s",
                    [key, connection.ops.adapt_datetimefield_value(timezone.now())],
                )
                row = cursor.fetchone()
        if row is None:  # unknown or expired: a new, empty session, as Django does
            self._session_key = None
            return None
        return Session(session_key=key, session_data=row[0])
