"""Django's database sessions, read with one plain statement instead of an ORM query.

Every signed-in request reads its session first. Building ``Session.objects.get(...)``
(clone, filter, compile) cost ten times the query itself on these machines: a sizeable share
of a small htmx fragment; it runs again only after a write (autotuner.readcache). Checking and
unpacking the stored text (HMAC, zlib, JSON) is done once per text and secret key per process.
Writing, expiry and cleanup stay Django's own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from autotuner.readcache import UntilChanged


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
        stored = None
        if key is not None:
            connection = connections[router.db_for_read(Session)]
            stored = _stored_sessions.get(key, lambda: _stored_session(connection, key), connection)
        if stored is None or _expired(stored[1]):  # unknown or expired: a new, empty session, as Django does
            self._session_key = None
            return None
        return Session(session_key=key, session_data=stored[0])


# A session's stored text is read again only after a write (a login, a logout, any session
# saved, anything else): autotuner.readcache. Its expiry is checked on every read.
_stored_sessions = UntilChanged(size=4096)


def _stored_session(connection: BaseDatabaseWrapper, key: str) -> tuple[str, datetime] | None:
    """The session's stored text and expiry date, expired or not."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('session_data')}, {quote('expire_date')} FROM {quote(Session._meta.db_table)} "
            f"WHERE {quote('session_key')} = %s",
            [key],
        )
        return cursor.fetchone()


def _expired(expire_date: datetime) -> bool:
    if settings.USE_TZ and timezone.is_naive(expire_date):  # SQLite keeps UTC without saying so
        expire_date = expire_date.replace(tzinfo=UTC)
    return expire_date <= timezone.now()
