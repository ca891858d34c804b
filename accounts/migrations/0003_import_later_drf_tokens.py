"""DRF tokens made after 0002 (`manage.py drf_create_token` still worked until DRF's token app was
removed) become hashed ApiTokens too, the same way; their plaintext keys are then deleted."""

import importlib

from django.db import migrations

import_tokens = importlib.import_module("accounts.migrations.0002_import_drf_tokens").import_tokens


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_import_drf_tokens")]

    operations = [migrations.RunPython(import_tokens, migrations.RunPython.noop)]
