"""Background processes for tests: `manage.py worker` and friends, started against the test database.

A test's data lives in the database pytest-django created (a file for SQLite, ``test_…`` on PostgreSQL),
not the one ``DATABASE_URL`` names, so each process is pointed at ``connection.settings_dict``::

    processes = Processes(database_url(connection.settings_dict), tmp_path)
    try:
        worker = processes.worker()
        ...
    finally:
        processes.stop_all()

Every process writes its output to a file (a pipe nobody reads fills up and blocks it), named in
assertion messages through ``Process.output()``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "autotuner.settings_test"
STOP_SECONDS = 10.0  # SIGTERM lets a worker finish its experiment; after this it is killed


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A dj-database-url URL for the database a Django connection uses (the test database, in tests)."""
    engine, name = settings_dict["ENGINE"], str(settings_dict["NAME"])
    if engine == "django.db.backends.sqlite3":
        if name == ":memory:" or name.startswith("file:"):
            raise ValueError("an in-memory SQLite database cannot be shared with another process")
        return f"sqlite:///{Path(name).resolve()}"
    if engine == "django.db.backends.postgresql":
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{credentials}{host}{port}/{quote(name, safe='')}"
    raise ValueError(f"no URL for the {engine} backend")


def process_env(url: str, **extra: str) -> dict[str, str]:
    """The environment for a manage.py process on the database at ``url``, with the test settings."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": url, **extra}
    # settings_test prefers TEST_DATABASE_URL to DATABASE_URL: left in, it would name the server's
    # main database rather than the test database the test's rows are in.
    env.pop("TEST_DATABASE_URL", None)
    return env


def wait_until[T](condition: Callable[[], T], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``condition`` until it returns something true, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(every)


class Process:
    """One manage.py command running in the background."""

    def __init__(self, args: list[str], *, env: Mapping[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._file = log.open("w")
        self.popen = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return f"--- manage.py {' '.join(self.args)} (pid {self.pid}) ---\n{self.log.read_text(errors='replace')}"

    def wait_for_output(self, text: str, timeout: float) -> None:
        def printed() -> bool:
            if self.popen.poll() is not None and text not in self.log.read_text(errors="replace"):
                raise AssertionError(f"exited with status {self.popen.returncode}\n{self.output()}")
            return text in self.log.read_text(errors="replace")

        wait_until(printed, timeout=timeout, what=f"{text!r} from manage.py {' '.join(self.args)}")

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"still running after {timeout:g} s\n{self.output()}") from None

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: nothing gets to clean up."""
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait()
        self._file.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended after STOP_SECONDS; always reaped."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        self.popen.wait()
        self._file.close()


class Processes:
    """The processes one test starts, all on one database; ``stop_all()`` ends them."""

    def __init__(self, url: str, folder: Path, **env: str) -> None:
        self.env = process_env(url, **env)
        self.folder = folder
        self.started: list[Process] = []

    def start(self, *args: str, **env: str) -> Process:
        log = self.folder / f"process-{len(self.started) + 1}-{args[0]}.log"
        process = Process(list(args), env={**self.env, **env}, log=log)
        self.started.append(process)
        return process

    def worker(self, **env: str) -> Process:
        """`manage.py worker`, polling the queue ten times a second."""
        worker_id = f"test-worker-{len(self.started) + 1}"
        return self.start("worker", "--interval", "0.1", "--no-startup-delay", "--worker-id", worker_id, **env)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A manage.py command run to its end, its output captured."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def output(self) -> str:
        return "\n".join(process.output() for process in self.started)

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()
