"""Django's ModelBackend, fetching the signed-in user without building an ORM query each time.

``get_user`` runs on every signed-in request; ``User.objects.get(pk=...)`` spent most of its
time compiling the query. Here the columns and their converters are worked out once per
database, and a row becomes the model instance Django would build (``user_from_row``), with
the same rule for inactive users; the row is read again only after a write
(autotuner.readcache). API tokens (autotuner.authentication) read users the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import backends, get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models.expressions import Col

from autotuner.readcache import UntilChanged


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        database = router.db_for_read(model)
        row = _user_rows.get(pk, lambda: _user_row(model, database, pk), connections[database])
        if row is None:
            return None
        user = user_from_row(row, database)
        return user if self.user_can_authenticate(user) else None


# A signed-in user's row is read again only after a write (a deactivation, a new password, any
# other change): autotuner.readcache. Each request still builds a user of its own.
_user_rows = UntilChanged(size=4096)


def _user_row(model: Any, database: str, pk: Any) -> tuple[Any, ...] | None:
    quote = connections[database].ops.quote_name
    with connections[database].cursor() as cursor:
        cursor.execute(
            f"SELECT {user_columns(database)} FROM {quote(model._meta.db_table)} "
            f"WHERE {quote(model._meta.pk.column)} = %s",
            [pk],
        )
        return cursor.fetchone()


def user_columns(database: str, table: str = "") -> str:
    """The user model's columns, in ``user_from_row``'s order, optionally qualified by ``table``."""
    return _UserColumns.of(get_user_model(), database).select(table)


def user_from_row(row: Sequence[Any], database: str) -> Any:
    """The user instance Django would build from a row of ``user_columns``: converters applied
    (on SQLite, datetimes made aware), marked as loaded from ``database``."""
    columns = _UserColumns.of(get_user_model(), database)
    values = list(row)
    connection = connections[database]
    for index, column, converters in columns.converters:
        for convert in converters:
            values[index] = convert(values[index], column, connection)
    return get_user_model().from_db(database, columns.attnames, values)


@dataclass(frozen=True)
class _UserColumns:
    names: list[str]
    attnames: list[str]
    converters: list[tuple[int, Col, list[Any]]]  # (column index, column, converter functions)

    def select(self, table: str) -> str:
        return ", ".join(f"{table}.{name}" if table else name for name in self.names)

    @staticmethod
    @cache
    def of(model: Any, database: str) -> _UserColumns:
        connection = connections[database]
        fields = model._meta.concrete_fields
        converters = []
        for index, field in enumerate(fields):
            column = Col(model._meta.db_table, field)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if found:
                converters.append((index, column, found))
        return _UserColumns(
            names=[connection.ops.quote_name(field.column) for field in fields],
            attnames=[field.attname for field in fields],
            converters=converters,
        )
