"""A real PostgreSQL for the tests that need one (two workers sharing a queue, say), started on demand.

``throwaway_cluster()`` runs Debian's ``initdb`` into a temporary folder, starts the server on a free
loopback port and yields its URL; afterwards it stops the server and removes the folder. Durability is
switched off: the data dies with the test run anyway. Point ``AUTOTUNER_TEST_POSTGRES_URL`` at a
server whose user may create databases to use that one instead.

In a conftest (pytest finds fixtures only there or in the test module)::

    from tests.postgres import postgres_url  # noqa: F401

then, in a test marked ``postgres``: ``url = create_database(postgres_url, "workers")``.

From the shell, ``python -m tests.postgres COMMAND...`` runs COMMAND against a throwaway cluster
(``TEST_DATABASE_URL`` and ``AUTOTUNER_TEST_POSTGRES_URL`` name it), stops the cluster afterwards, even on
Ctrl-C or SIGTERM, and exits with COMMAND's status; bin/test runs the suite on PostgreSQL this way.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import pytest
from psycopg import sql

from tasks.runner import free_port

URL_ENV = "AUTOTUNER_TEST_POSTGRES_URL"
NOT_INSTALLED = "PostgreSQL is not installed: apt-get install postgresql"
CLUSTER_OWNER = "postgres"  # initdb refuses to run as root
START_ATTEMPTS = 3  # the free port may be taken before the server binds it
LOG_TAIL_LINES = 20


class PostgresUnavailable(RuntimeError):
    """The throwaway cluster could not be created or started; the message ends with PostgreSQL's log."""


def postgres_bindir() -> Path | None:
    """The ``bin/`` folder of the newest PostgreSQL Debian installed, or None without one."""
    initdbs = Path("/usr/lib/postgresql").glob("*/bin/initdb")
    by_version = sorted(initdbs, key=lambda path: [int(part) for part in re.findall(r"\d+", path.parent.parent.name)])
    return by_version[-1].parent if by_version else None


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yields ``postgres://postgres@127.0.0.1:PORT/postgres`` for a fresh cluster, always stopped and removed
    afterwards, or the URL in ``AUTOTUNER_TEST_POSTGRES_URL`` as it is. Raises PostgresUnavailable."""
    if url := os.environ.get(URL_ENV):
        yield url
        return
    bindir = postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable(NOT_INSTALLED)
    root = Path(tempfile.mkdtemp(prefix="autotuner-pg-"))
    cluster = _Cluster(bindir, root)
    try:
        cluster.create()
        port = cluster.start()
        yield f"postgres://postgres@127.0.0.1:{port}/postgres"
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


def create_database(base_url: str, name: str) -> str:
    """Creates database ``name`` afresh (dropping one of that name, and its open connections, first) on
    the server at ``base_url`` and returns its URL."""
    database = sql.Identifier(name)
    with psycopg.connect(base_url, autocommit=True, connect_timeout=10) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(database))
    return urlsplit(base_url)._replace(path=f"/{quote(name, safe='')}").geturl()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server for this test session (see ``throwaway_cluster``). Skips when
    PostgreSQL is not installed, except under ``CI=true``, where it fails."""
    if not os.environ.get(URL_ENV) and postgres_bindir() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{NOT_INSTALLED} (CI=true, so the postgres tests may not be skipped)", pytrace=False)
        pytest.skip(NOT_INSTALLED)
    with throwaway_cluster() as url:
        yield url


class _Cluster:
    """One cluster under ``root``: data in ``root/data``, its socket in ``root``, its log in ``root/postgres.log``."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"

    def create(self) -> None:
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(CLUSTER_OWNER)
            except KeyError:
                raise PostgresUnavailable(
                    f"Running as root, and there is no {CLUSTER_OWNER} user to own the cluster"
                ) from None
            shutil.chown(self.root, CLUSTER_OWNER, CLUSTER_OWNER)
        self._run(
            "initdb",
            ["-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        )

    def start(self) -> int:
        attempts_left = START_ATTEMPTS
        while True:
            port = free_port()
            options = [
                *("-c", "listen_addresses=127.0.0.1", "-p", str(port), "-k", str(self.root)),
                *("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"),
            ]
            # pg_ctl hands -o to a shell. Its own session keeps the terminal's Ctrl-C away from the server,
            # which the caller stops in order.
            command = ["-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", shlex.join(options), "start"]
            try:
                self._run("pg_ctl", command, start_new_session=True)
            except PostgresUnavailable:
                attempts_left -= 1
                if attempts_left and "could not bind" in self._log_tail():
                    continue
                raise
            return port

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", ["-D", str(self.data), "-m", "immediate", "-w", "stop"], check=False)

    def _run(self, program: str, args: Sequence[str], *, check: bool = True, start_new_session: bool = False) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", CLUSTER_OWNER, "--", *command]
        try:
            result = subprocess.run(
                command,
                cwd=self.root,  # the cluster owner may not be able to enter the caller's folder
                capture_output=True,
                text=True,
                timeout=90,
                start_new_session=start_new_session,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise PostgresUnavailable(f"{program} did not run: {error}\n{self._log_tail()}") from error
        if check and result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise PostgresUnavailable(
                f"{program} failed (exit {result.returncode}): {output}\n--- PostgreSQL's log ---\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:])


def run_against_cluster(command: Sequence[str]) -> int:
    """Runs ``command`` with the cluster's URL in its environment and returns its exit status."""
    # SIGTERM (CI cancelling the job) unwinds like Ctrl-C, so the cluster is stopped either way.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with throwaway_cluster() as url:
            print(f"PostgreSQL for this run: {url}", flush=True)
            environment = {**os.environ, "TEST_DATABASE_URL": url, URL_ENV: url}
            child = subprocess.Popen(command, env=environment)
            try:
                return child.wait()
            finally:
                if child.poll() is None:
                    child.terminate()
                    child.wait()
    except PostgresUnavailable as error:
        print(f"Could not start PostgreSQL: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--"]:
        arguments = arguments[1:]
    if not arguments:
        sys.exit("usage: python -m tests.postgres COMMAND [ARG...]")
    sys.exit(run_against_cluster(arguments))
