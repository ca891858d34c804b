"""Django's ModelBackend, fetching the signed-in user without building an ORM query each time.

``get_user`` runs on every signed-in request; ``User.objects.get(pk=...)`` spent most of its
time compiling the query. Here the statement and the column converters are worked out once
per database, and the row becomes the model instance Django would build (``Model.from_db``),
with the same rule for inactive users.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.contrib.auth import backends, get_user_model
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models.expressions import Col


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        database = router.db_for_read(model)
        query = _UserQuery.for_database(model, database)
        connection = connections[database]
        with connection.cursor() as cursor:
            cursor.execute(query.sql, [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for index, column, converters in query.converters:
            for convert in converters:
                values[index] = convert(values[index], column, connection)
        user = model.from_db(database, query.attnames, values)
        return user if self.user_can_authenticate(user) else None


@dataclass(frozen=True)
class _UserQuery:
    sql: str
    attnames: list[str]
    converters: list[tuple[int, Col, list[Any]]]  # (column index, column, converter functions)

    @staticmethod
    @cache
    def for_database(model: Any, database: str) -> _UserQuery:
        connection = connections[database]
        quote = connection.ops.quote_name
        fields = model._meta.concrete_fields
        converters = []
        for index, field in enumerate(fields):
            column = Col(model._meta.db_table, field)
            found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if found:
                converters.append((index, column, found))
        return _UserQuery(
            sql=f"SELECT {', '.join(quote(field.column) for field in fields)} FROM {quote(model._meta.db_table)} "
            f"WHERE {quote(model._meta.pk.column)} = %s",
            attnames=[field.attname for field in fields],
            converters=converters,
        )
