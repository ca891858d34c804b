"""Existing DRF tokens (rest_framework.authtoken, plaintext keys) become hashed ApiTokens, so their
clients keep working and the account page lists them; the plaintext keys are then deleted. DRF's
table is read with SQL when it exists. (DRF tokens made later, by `drf_create_token`, still
authenticate: autotuner/authentication.py falls back to that table.)"""

import hashlib
from datetime import UTC, datetime

from django.db import migrations
from django.utils.dateparse import parse_datetime

TABLE = "authtoken_token"


def import_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {quote('key')}, user_id, created FROM {quote(TABLE)}")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        if not isinstance(created, datetime):  # SQLite hands back text
            created = parse_datetime(str(created))
        if created.tzinfo is None:  # stored in UTC
            created = created.replace(tzinfo=UTC)
        ApiToken.objects.create(
            user_id=user_id,
            name="API token",
            prefix=key[:8],
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created,
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(import_tokens, migrations.RunPython.noop)]
