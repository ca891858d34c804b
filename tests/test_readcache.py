"""autotuner.readcache: answers kept until the database changes, never after.

The first tests run the cache on an SQLite file of their own, through a Django connection and a
second, plain sqlite3 connection standing in for another process. The last ones go through the
app: pytest-django's live server has its own connection to the test database, and the test's
writes are another connection's, as another gunicorn worker's or the task worker's would be.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.utils import ConnectionHandler
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken
from autotuner.readcache import UntilChanged
from presets.models import ParameterPreset
from tests.factories import make_preset, make_token_key


@pytest.fixture
def database(tmp_path: Path) -> Any:
    """A Django connection to an SQLite file holding one table, ``item``, with one row."""
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "cache.sqlite3")}}
    )
    wrapper = handler["default"]
    with wrapper.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("CREATE TABLE item (name TEXT)")
        cursor.execute("INSERT INTO item VALUES ('first')")
    yield wrapper
    handler.close_all()


def other_process(wrapper: Any) -> sqlite3.Connection:
    return sqlite3.connect(wrapper.settings_dict["NAME"], isolation_level=None)


class Counter:
    """A compute function counting the rows of ``item``, and how often it ran."""

    def __init__(self, wrapper: Any) -> None:
        self.wrapper, self.runs = wrapper, 0

    def __call__(self) -> int:
        self.runs += 1
        with self.wrapper.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM item")
            return cursor.fetchone()[0]


pytestmark = pytest.mark.django_db  # pytest-django blocks every connection without it


def test_an_answer_is_computed_once_while_nothing_changes(database: Any) -> None:
    cache, count = UntilChanged(size=8), Counter(database)
    assert [cache.get("items", count, database) for _ in range(3)] == [1, 1, 1]
    assert count.runs == 1


def test_a_commit_by_another_connection_is_seen_at_once(database: Any) -> None:
    cache, count = UntilChanged(size=8), Counter(database)
    assert cache.get("items", count, database) == 1
    other_process(database).execute("INSERT INTO item VALUES ('second')")
    assert cache.get("items", count, database) == 2
    other_process(database).execute("DELETE FROM item")
    assert cache.get("items", count, database) == 0


def test_its_own_writes_are_seen_at_once(database: Any) -> None:
    cache, count = UntilChanged(size=8), Counter(database)
    assert cache.get("items", count, database) == 1
    with database.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES ('second')")
    assert cache.get("items", count, database) == 2


class RolledBack(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_write_rolled_back_leaves_no_answer_behind() -> None:
    # A rolled-back write moves the connection's total_changes on and leaves the data as it was:
    # an answer kept from inside the transaction would be served, wrong, after it.
    cache = UntilChanged(size=8)
    before = cache.get("presets", ParameterPreset.objects.count)
    inside = []

    def write_then_fail() -> None:
        with transaction.atomic():
            make_preset(name="Rolled back")
            inside.append(cache.get("presets", ParameterPreset.objects.count))
            raise RolledBack

    with pytest.raises(RolledBack):
        write_then_fail()
    assert inside == [before + 1]
    assert cache.get("presets", ParameterPreset.objects.count) == before


def test_transactions_managed_by_hand_are_asked_every_time(database: Any) -> None:
    cache, count = UntilChanged(size=8), Counter(database)
    assert cache.get("items", count, database) == 1
    database.set_autocommit(False)
    with database.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES ('rolled back')")
    assert [cache.get("items", count, database) for _ in range(2)] == [2, 2]
    assert count.runs == 3
    database.rollback()
    database.set_autocommit(True)
    assert cache.get("items", count, database) == 1


def test_a_new_connection_starts_afresh(database: Any) -> None:
    # A new connection counts data_version and total_changes from the start again: the same
    # numbers must not bring back the old connection's answers.
    cache, count = UntilChanged(size=8), Counter(database)
    database.close()  # the fixture's writes are behind: a connection that has not written
    assert cache.get("items", count, database) == 1
    database.close()
    other_process(database).execute("INSERT INTO item VALUES ('second')")
    assert cache.get("items", count, database) == 2


def test_an_in_memory_database_is_asked_every_time() -> None:
    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
    wrapper = handler["default"]
    with wrapper.cursor() as cursor:
        cursor.execute("CREATE TABLE item (name TEXT)")
    cache, count = UntilChanged(size=8), Counter(wrapper)
    assert [cache.get("items", count, wrapper) for _ in range(2)] == [0, 0]
    assert count.runs == 2
    handler.close_all()


def test_switched_off_it_asks_every_time(database: Any, settings: Any) -> None:
    settings.READ_CACHE = False
    cache, count = UntilChanged(size=8), Counter(database)
    assert [cache.get("items", count, database) for _ in range(2)] == [1, 1]
    assert count.runs == 2


def test_answers_beyond_the_size_are_computed_again(database: Any) -> None:
    cache, count = UntilChanged(size=2), Counter(database)
    for key in ("a", "b", "c", "a"):
        assert cache.get(key, count, database) == 1
    assert count.runs == 4  # "c" did not fit: all went, "a" with them


@pytest.mark.django_db(transaction=True)
def test_postgresql_is_asked_every_time() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL run of the suite checks this")
    cache, runs = UntilChanged(size=8), []
    for _ in range(2):
        cache.get("presets", lambda: runs.append(ParameterPreset.objects.count()))
    assert len(runs) == 2


# --- through the app: its caches see every write, from wherever it comes ---------------------
# Requests through the test client share the test's connection (the app's own writes); a plain
# sqlite3 connection to the test database stands in for another worker or process.


@pytest.fixture
def elsewhere() -> Any:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's data_version; on PostgreSQL nothing is kept")
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    yield lambda sql, *params: other.execute(sql, params)
    other.close()


def total(client: Client, key: str) -> int:
    response = client.get("/api/presets/?category=memory&page_size=1", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200
    return int(response["X-Total-Count"])


def merged(client: Client, key: str, preset: ParameterPreset) -> dict[str, Any]:
    response = client.post(
        "/api/presets/merge", {"preset_ids": [preset.pk]}, "application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 200
    return response.json()["parameters"]


@pytest.mark.django_db(transaction=True)
def test_the_api_sees_every_write_to_presets_and_tokens(user: Any, elsewhere: Any) -> None:
    client, key = Client(), make_token_key(user)
    table = ParameterPreset._meta.db_table
    kept = make_preset(name="Kept", category="memory", parameters={"tp-size": [1]})
    before = total(client, key)
    assert (total(client, key), merged(client, key, kept)) == (before, {"tp-size": [1]})

    make_preset(name="Made here", category="memory")  # the app's own connection
    assert total(client, key) == before + 1
    elsewhere(f"UPDATE {table} SET deleted_at = '2026-01-01 00:00:00' WHERE id = ?", kept.pk)
    assert total(client, key) == before
    elsewhere(f"UPDATE {table} SET deleted_at = NULL, parameters = ? WHERE id = ?", '{"tp-size": [8]}', kept.pk)
    assert (total(client, key), merged(client, key, kept)) == (before + 1, {"tp-size": [8]})

    elsewhere(f"DELETE FROM {ApiToken._meta.db_table}")  # revoked by another worker
    response = client.get("/api/presets/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_session_ended_or_a_user_deactivated_elsewhere_signs_out_at_once(user: Any, elsewhere: Any) -> None:
    client = Client()
    client.force_login(user)
    users = user._meta.db_table

    assert [client.get("/presets/").status_code for _ in range(2)] == [200, 200]
    elsewhere(f"UPDATE {users} SET is_active = 0 WHERE id = ?", user.pk)
    assert client.get("/presets/").status_code == 302  # to the login page
    elsewhere(f"UPDATE {users} SET is_active = 1 WHERE id = ?", user.pk)
    client.force_login(user)
    assert client.get("/presets/").status_code == 200
    elsewhere(f"DELETE FROM {Session._meta.db_table}")  # signed out elsewhere
    assert client.get("/presets/").status_code == 302


@pytest.mark.django_db(transaction=True)
def test_an_expired_session_signs_out_though_nothing_was_written(user: Any) -> None:
    client = Client()
    client.force_login(user)
    assert client.get("/presets/").status_code == 200
    Session.objects.update(expire_date=timezone.now() + timedelta(seconds=1))
    assert client.get("/presets/").status_code == 200  # kept from here on: no write follows
    time.sleep(1.1)
    assert client.get("/presets/").status_code == 302
