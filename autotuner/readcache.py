"""Answers read from the database, kept in this process until the database changes.

SQLite tells a connection cheaply whether anything was committed since it last looked:
``PRAGMA data_version`` moves when another connection (of any process) commits, and the
connection's own ``total_changes`` when it writes. An answer computed from the database is kept
under that pair and served while neither has moved, so a read-mostly server skips its costlier
statements (a list's count of every matching preset, the user behind an API token) and still
never serves a stale answer: a write anywhere, by anyone, drops everything kept.

The answer is computed every time:
- with ``AUTOTUNER_READ_CACHE=off`` (settings.READ_CACHE), to compare or to rule this out;
- on PostgreSQL, which has no such cheap signal;
- on an in-memory database: its connections share one page cache, and see each other's
  writes without a new data_version;
- inside a transaction: a write rolled back leaves total_changes moved on and the data as it
  was, so an answer that saw the write could outlive it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


class UntilChanged:
    """``get(key, compute)``: ``compute()``'s answer, kept until the database changes (see the module)."""

    def __init__(self, size: int) -> None:
        self.size = size  # answers kept per connection; all go when one more would not fit
        self._local = threading.local()  # a thread has its own connection, so its own answers

    def get[T](self, key: Hashable, compute: Callable[[], T], connection: BaseDatabaseWrapper | None = None) -> T:
        """``compute()``'s answer for ``key`` from ``connection`` (the default database's if None)."""
        state = _state(connections[DEFAULT_DB_ALIAS] if connection is None else connection)
        if state is None:
            return compute()
        local = self._local
        if getattr(local, "state", None) != state:
            local.state, local.answers = state, {}
        answers: dict[Hashable, Any] = local.answers
        if key in answers:
            return answers[key]
        # Kept under the state read before computing: were there a commit in between, this
        # connection's next state differs (the statements in compute saw it), so it is never served.
        answer = compute()
        if len(answers) >= self.size:
            answers.clear()
        answers[key] = answer
        return answer


def _state(connection: BaseDatabaseWrapper) -> tuple[Any, int, int] | None:
    """What identifies the database's content as this connection sees it; None where that is unknown."""
    if not settings.READ_CACHE or connection.vendor != "sqlite" or connection.is_in_memory_db():
        return None
    connection.ensure_connection()
    if not connection.autocommit:  # in a transaction (atomic, or managed by hand)
        return None
    raw = connection.connection  # compared by identity: a new connection starts afresh
    # Read past Django's cursor (half the cost, on every cached read): a pragma, not a query, so
    # it is not in connection.queries; its errors are still Django's.
    with connection.wrap_database_errors:
        (version,) = raw.execute("PRAGMA data_version").fetchone()
    return raw, version, raw.total_changes
