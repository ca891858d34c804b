"""Existing DRF tokens (rest_framework.authtoken, plaintext keys) become hashed ApiTokens, so their
clients keep working and the account page lists them; the plaintext keys are then deleted.

DRF's app is no longer installed, so its table, where it exists, is read through a stand-in model
of its own (``drf_token_model``)."""

import hashlib

from django.apps.registry import Apps
from django.db import migrations, models

TABLE = "authtoken_token"
NAME = "API token"


def drf_token_model() -> type[models.Model]:
    """DRF's token table as a model that never touches the schema, in a registry of its own (the
    user is a plain id: the user model need not be in that registry)."""

    class Meta:
        app_label = "authtoken"
        db_table = TABLE
        managed = False
        apps = Apps()

    attrs = {
        "__module__": __name__,
        "Meta": Meta,
        "key": models.CharField(max_length=40, primary_key=True),
        "user_id": models.IntegerField(),
        "created": models.DateTimeField(),
    }
    return type("Token", (models.Model,), attrs)


def import_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    DrfToken = drf_token_model()
    ApiToken = apps.get_model("accounts", "ApiToken")
    tokens = DrfToken.objects.using(connection.alias)
    for key, user_id, created in tokens.values_list("key", "user_id", "created"):
        name, number = NAME, 1
        while ApiToken.objects.using(connection.alias).filter(user_id=user_id, name=name).exists():
            number += 1
            name = f"{NAME} ({number})"
        ApiToken.objects.using(connection.alias).create(
            user_id=user_id,
            name=name,
            prefix=key[:8],
            key_hash=hashlib.sha256(key.encode()).hexdigest(),
            created_at=created,
        )
    tokens.all().delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(import_tokens, migrations.RunPython.noop)]
