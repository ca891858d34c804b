"""Django's database sessions, read with one plain statement instead of an ORM query.

Every signed-in request reads its session first. Building ``Session.objects.get(...)``
(clone, filter, compile) cost ten times the query itself on these machines: a sizeable share
of a small htmx fragment. Writing, expiry and cleanup stay Django's own.
"""

from __future__ import annotations

from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
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
