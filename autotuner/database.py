"""Telling a database that is away (down, unreachable, or locked for too long) from a bug.

Such errors are worth a retry: requests get 503 with Retry-After rather than 500, and the start
command waits for the database, saying where it looked, instead of printing a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core import checks
from django.db import DatabaseError, InterfaceError, OperationalError, connections

if TYPE_CHECKING:
    from django.apps import AppConfig

# SQLite's transient failures; its other OperationalErrors ("no such table") are bugs or a missing migration.
SQLITE_TRANSIENT = ("database is locked", "database table is locked", "unable to open database file", "disk i/o error")


def is_unavailable(error: BaseException | None) -> bool:
    """True for a database error that says the database is away or busy, not that the query is wrong."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    if isinstance(error.__cause__, sqlite3.Error):
        return any(text in str(error).lower() for text in SQLITE_TRANSIENT)
    # PostgreSQL: connection refused or lost, lock and statement timeouts, deadlocks, a server shutting down.
    return True


def location(alias: str = "default") -> str:
    """Where the database is: host:port, or the SQLite file."""
    settings_dict = connections[alias].settings_dict
    if not settings_dict.get("HOST"):
        return str(settings_dict.get("NAME"))
    port = settings_dict.get("PORT")
    return f"{settings_dict['HOST']}:{port}" if port else str(settings_dict["HOST"])


def unreachable_reason(alias: str = "default") -> str | None:
    """None when the database answers ``SELECT 1``, else one line saying where it is and what went wrong."""
    connection = connections[alias]
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"cannot reach the database at {location(alias)}: {first_line}"
    finally:
        connection.close()
    return None


@checks.register(checks.Tags.database)
def check_database_reachable(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``manage.py check --database default`` says plainly when the database does not answer."""
    problems: list[checks.CheckMessage] = []
    for alias in databases or []:
        if reason := unreachable_reason(alias):
            problems.append(checks.Error(reason, hint="Is it running, and is DATABASE_URL right?", id="autotuner.E001"))
    return problems
