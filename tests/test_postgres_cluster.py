"""The throwaway PostgreSQL of tests/postgres.py: the migrations run on it, and databases start empty."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from presets.models import ParameterPreset
from tasks.models import Task

# Imported, the fixture is found here; as a test's argument it shadows the import (F811).
from tests.postgres import create_database

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


def table_names(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


def test_migrate_builds_the_schema_in_a_fresh_database(postgres_url: str) -> None:
    url = create_database(postgres_url, "autotuner_migrate")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "autotuner.settings"}
    env.pop("TEST_DATABASE_URL", None)

    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert {ParameterPreset._meta.db_table, Task._meta.db_table} <= table_names(url)


def test_recreating_a_database_empties_it_even_with_a_connection_open(postgres_url: str) -> None:
    url = create_database(postgres_url, "autotuner_again")
    with psycopg.connect(url, autocommit=True) as lingering:  # a worker a failed test left behind, say
        lingering.execute("CREATE TABLE leftover (id integer)")

        assert create_database(postgres_url, "autotuner_again") == url

    assert table_names(url) == set()
