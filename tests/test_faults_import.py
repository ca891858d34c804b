"""A bundle import cut short by a killed server leaves nothing half-imported.

gunicorn (one sync worker) serves a fresh SQLite database (on bin/test's PostgreSQL run, a fresh
database on that server); a bundle import of as many presets as an import takes is sent, and the
server is SIGKILLed halfway through it (half the time a first, identical import took): the master,
then the worker running the import, as a crashed host would lose both. After a restart the
bundle's presets are all there or none is: the import runs in one transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from bench.load_test import Session, free_port, prepare, wait_until_up
from presets.exchange import MAX_IMPORT_PRESETS
from tests.postgres import create_database

ROOT = Path(__file__).resolve().parent.parent
BUNDLE_SIZE = MAX_IMPORT_PRESETS


def wait_for[T](make_coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs a coroutine to its end in a thread of its own: after the browser tests, Playwright's event
    loop is still running in this one, where ``asyncio.run`` refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def bundle(prefix: str) -> dict:
    presets = [
        {
            "name": f"{prefix} {number:03d}",
            "description": "",
            "category": "custom",
            "runtime": "",
            "parameters": {"tp-size": [1, 2], "schedule-policy": ["fcfs", "lpm"]},
            "metadata": {},
        }
        for number in range(BUNDLE_SIZE)
    ]
    return {"version": "1.0", "presets": presets}


def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    # A long worker timeout: gunicorn itself must not be what interrupts the import.
    command = [sys.executable, "-m", "gunicorn", "autotuner.wsgi", "-w", "1", "-b", f"127.0.0.1:{port}"]
    server = subprocess.Popen([*command, "--timeout", "300", "--log-level", "warning"], cwd=ROOT, env=env)
    wait_until_up(port, server)
    return server


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie its parent has not reaped yet counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def raw_request(port: int, session: Session, path: str, payload: dict) -> socket.socket:
    """Sends a JSON POST with the session's cookies and returns the socket, the answer unread."""
    body = json.dumps(payload).encode()
    cookies = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nCookie: {cookies}\r\n"
        f"X-CSRFToken: {session.cookies['csrftoken']}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.sendall(head.encode() + body)
    return sock


def count(session: Session, prefix: str) -> int:
    answer = wait_for(lambda: session.request("GET", f"/api/presets/?search={prefix.replace(' ', '+')}&page_size=1"))
    assert answer.status == 200, answer.body[:300]
    return int(answer.headers["x-total-count"])


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.kill()
    server.wait(timeout=30)


def test_an_import_killed_midway_leaves_all_or_nothing(tmp_path: Path) -> None:
    test_server = os.environ.get("TEST_DATABASE_URL")
    env = prepare(tmp_path, create_database(test_server, "autotuner_fault") if test_server else None)
    port = free_port()
    server = start_server(env, port)
    try:
        session = Session("127.0.0.1", port)
        wait_for(session.log_in)

        # How long a whole import takes on this machine, now: the kill lands in the middle of the next one.
        started = time.monotonic()
        first = wait_for(lambda: session.json("POST", "/api/presets/import", bundle("Timing")))
        duration = time.monotonic() - started
        assert first.status == 201, first.body[:300]

        (worker,) = worker_pids(server.pid)
        sock = raw_request(port, session, "/api/presets/import", bundle("Killed"))
        time.sleep(duration / 2)
        # The master first, so that it cannot start another worker: the whole server goes down, as in a crash.
        stop(server)
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not gone(worker):
            assert time.monotonic() < deadline, "the worker outlived SIGKILL"
            time.sleep(0.05)
        try:
            answered = sock.recv(64)
        except OSError:
            answered = b""
        sock.close()
    finally:
        stop(server)

    port = free_port()
    server = start_server(env, port)
    try:
        session = Session("127.0.0.1", port)
        wait_for(session.log_in)
        imported = count(session, "Killed ")
        assert count(session, "Timing ") == BUNDLE_SIZE
    finally:
        stop(server)
    if answered.startswith(b"HTTP/1.1 201"):
        pytest.fail(f"the import finished before the kill ({duration:.2f} s for a whole one): nothing was tested")
    print(f"killed {duration / 2:.2f} s into the import; {imported} of its {BUNDLE_SIZE} presets stored")
    assert imported in (0, BUNDLE_SIZE), f"{imported} of {BUNDLE_SIZE} presets were imported"
