"""Load test: many clients doing a realistic mix of work at once while others attack, then a check
that no write was lost and no request was left to hang.

    .venv/bin/python bench/load_test.py [--clients 32] [--hostile 2] [--seconds 60] [--database-url postgres://…]

Builds a fresh database in a temporary folder (SQLite, or a new database on the PostgreSQL server
``--database-url`` names), creates a user with ``manage.py createsuperuser``, starts gunicorn with two
sync workers on a free loopback port and logs in through the login form. Then ``--clients`` asyncio
clients, for ``--seconds``, each pick one operation at a time from a weighted mix: the filtered list,
one preset, create, PATCH with ``If-Match`` (the ETag read just before), merge, the task form's htmx
merge preview, a bundle import, a bundle export and delete. Every client changes only presets it
created, so each acknowledged write has one known value.

Beside them ``--hostile`` clients send, one after another, the requests issue 19 found could hold a
worker until gunicorn killed it: a plan page far into a random-strategy task over 10^8 combinations
(``/api/tasks/{id}/plan?page=<far>&page_size=1000``), that task's ``plan.json`` and ``plan.sh``
downloads, a merge of 50 ids that name no preset (404) and one of 100,000 ids (400). Each must get
its own answer; meanwhile the normal clients' requests should keep p99 <= 4 x p50 (printed with a
verdict, not part of the exit status: speed depends on the machine). ``--hostile 0`` runs the same
load without them, to compare; ``--clients 0 --hostile 1`` times each hostile request on its own.

Afterwards every acknowledged create and update must be stored with the value last written, and
every deleted preset must be gone; the run also counts 5xx answers and any body saying "database is
locked", and reads gunicorn's log for ``WORKER TIMEOUT`` (a worker killed for running past its 30 s)
and tracebacks. Prints throughput and latency per operation and the counts; exits 1 on a 5xx, a lock
error, a request left without an answer, a hostile request answered otherwise than it should be, a
worker timeout, a traceback, a lost or wrong write, or a deleted preset still there.

The client is our own minimal HTTP/1.1 over ``asyncio.open_connection`` (one request per
connection: gunicorn's sync workers close it anyway), as in tasks/benchmark.py: no dependency.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
USERNAME = "load"
PASSWORD = "load-test-password-1"
NAME_PREFIX = "Load"  # every preset the clients create or import; the final check lists these
TOTAL_OF_OURS = f"/api/presets/?{urlencode({'search': f'{NAME_PREFIX} ', 'page_size': 1})}"  # X-Total-Count
REQUEST_TIMEOUT = 60.0  # beyond gunicorn's 30 s worker timeout: a stuck request shows as an error
LOCKED = b"database is locked"

# Weights of the mix: mostly reads, as in use, with every kind of write.
MIX = {
    "list": 20,
    "get": 15,
    "create": 10,
    "patch": 12,
    "merge": 10,
    "merge_preview": 8,
    "import": 5,
    "export": 5,
    "delete": 5,
}
# What the hostile clients send, in turn, so that a short run sends each of them.
HOSTILE = ("far_plan_page", "merge_50_unknown", "plan_json", "merge_100k_ids", "plan_sh")
# A random search over 4 flags of 100 values each: 10^8 combinations, every one runnable.
HUGE_GRID = {
    flag: list(range(1, 101))
    for flag in ("max-running-requests", "chunked-prefill-size", "max-total-tokens", "max-prefill-tokens")
}
PLAN_PAGE_SIZE = 1000
UNKNOWN_IDS = 10**12  # far past any preset id this run creates
RATIO_TARGET = 4  # normal requests' p99 at most this many times their p50, attack or not
WORKER_TIMEOUT = "WORKER TIMEOUT"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:  # the shape each caller expects from its endpoint
        return json.loads(self.body)


@dataclass
class Tally:
    """What every client saw, and what the server acknowledged."""

    done: collections.Counter = field(default_factory=collections.Counter)  # operation -> completed
    statuses: collections.Counter = field(default_factory=collections.Counter)  # (operation, status) -> count
    seconds: collections.defaultdict = field(default_factory=lambda: collections.defaultdict(list))
    requests: list[float] = field(default_factory=list)  # seconds of each normal HTTP request
    server_errors: list[str] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # an answer the operation does not allow
    misanswered: list[str] = field(default_factory=list)  # the same, for a hostile request: a failure
    broken: list[str] = field(default_factory=list)  # no answer, or one that could not be read
    expected: dict[int, str] = field(default_factory=dict)  # preset id -> the description last acknowledged
    deleted: set[int] = field(default_factory=set)


class Session:
    """The logged-in browser session every client shares: its cookies and the CSRF token."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}

    async def request(
        self, method: str, path: str, *, body: bytes = b"", content_type: str = "", headers: dict | None = None
    ) -> Answer:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Connection: close"]
        if self.cookies:
            lines.append("Cookie: " + "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        if method not in ("GET", "HEAD") and "csrftoken" in self.cookies:
            lines.append(f"X-CSRFToken: {self.cookies['csrftoken']}")
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        if body or method not in ("GET", "HEAD", "DELETE"):
            lines.append(f"Content-Length: {len(body)}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), REQUEST_TIMEOUT)
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(-1), REQUEST_TIMEOUT)  # the server closes after the answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return _parse(raw)

    async def json(self, method: str, path: str, payload: object, headers: dict | None = None) -> Answer:
        return await self.request(
            method, path, body=json.dumps(payload).encode(), content_type="application/json", headers=headers
        )

    async def log_in(self) -> None:
        page = await self.request("GET", "/login/")
        self._keep_cookies(page)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        if token is None:
            raise SystemExit(f"The login page has no CSRF token (HTTP {page.status})")
        form = urlencode({"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token.group(1).decode()})
        answer = await self.request(
            "POST", "/login/", body=form.encode(), content_type="application/x-www-form-urlencoded"
        )
        self._keep_cookies(answer)
        if answer.status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"Logging in failed: HTTP {answer.status}")

    def _keep_cookies(self, answer: Answer) -> None:
        for line in answer.headers.get("set-cookie", "").split("\n"):
            cookie = SimpleCookie()
            cookie.load(line)
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})


def _parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/"):
        raise ConnectionError(f"not an HTTP answer: {raw[:80]!r}")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        # Set-Cookie may repeat; keep every one, a line each.
        headers[name] = f"{headers[name]}\n{value.strip()}" if name in headers else value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return Answer(status, headers, body)


def _unchunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


class Client:
    """One simulated user: a loop of operations on its own presets and everyone's."""

    hostile = False

    def __init__(self, number: int, session: Session, tally: Tally, seed_ids: list[int], seed: int) -> None:
        self.number = number
        self.session = session
        self.tally = tally
        self.seed_ids = seed_ids  # the system presets: read, merged, never changed
        self.mine: list[int] = []  # live presets this client created or imported
        self.rng = random.Random(seed)
        self.counter = 0

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            operation = self.next_operation()
            started = time.perf_counter()
            try:
                await getattr(self, operation)()
            except (TimeoutError, OSError, ValueError, KeyError) as error:  # counted, never silently dropped
                self.tally.broken.append(f"{operation}: {type(error).__name__}: {error}")
                continue
            self.tally.done[operation] += 1
            self.tally.seconds[operation].append(time.perf_counter() - started)

    # --- helpers ---------------------------------------------------------------------------

    def next_operation(self) -> str:
        return self.rng.choices(list(MIX), list(MIX.values()))[0]

    def _value(self) -> str:
        self.counter += 1
        return f"client {self.number} write {self.counter} {secrets.token_hex(4)}"

    def _name(self) -> str:
        self.counter += 1
        return f"{NAME_PREFIX} {self.number}-{self.counter} {secrets.token_hex(3)}"

    def _some_ids(self, count: int) -> list[int]:
        pool = self.seed_ids + self.mine
        return self.rng.sample(pool, min(count, len(pool)))

    async def _call(self, operation: str, method: str, path: str, *, allowed: tuple[int, ...], **kwargs) -> Answer:
        started = time.perf_counter()
        if "payload" in kwargs:
            answer = await self.session.json(method, path, kwargs.pop("payload"), **kwargs)
        else:
            answer = await self.session.request(method, path, **kwargs)
        if not self.hostile:
            self.tally.requests.append(time.perf_counter() - started)
        self.tally.statuses[operation, answer.status] += 1
        where = f"{operation} {method} {path[:80]}: HTTP {answer.status}"
        if answer.status >= 500:
            self.tally.server_errors.append(f"{where} {answer.body[:200]!r}")
        elif answer.status not in allowed:
            (self.tally.misanswered if self.hostile else self.tally.unexpected).append(f"{where} {answer.body[:200]!r}")
        if LOCKED in answer.body:
            self.tally.locked.append(where)
        return answer

    def _acknowledged(self, preset: dict) -> None:
        self.tally.expected[preset["id"]] = preset["description"]

    # --- the operations --------------------------------------------------------------------

    async def list(self) -> None:
        query: dict[str, object] = self.rng.choice(
            [
                {"category": "custom", "ordering": "-updated_at", "page_size": 20},
                {"runtime": "sglang", "page_size": 50},
                {"search": f"{NAME_PREFIX} {self.number}-", "page_size": 20},
                {"is_system": "true"},
            ]
        )
        await self._call("list", "GET", f"/api/presets/?{urlencode(query)}", allowed=(200,))

    async def get(self) -> None:
        (preset_id,) = self._some_ids(1)
        await self._call("get", "GET", f"/api/presets/{preset_id}", allowed=(200,))

    async def create(self) -> None:
        payload = {
            "name": self._name(),
            "description": self._value(),
            "category": "custom",
            "runtime": self.rng.choice(["sglang", "vllm", ""]),
            "parameters": {"tp-size": self.rng.sample([1, 2, 4, 8], 2), "schedule-policy": ["fcfs", "lpm"]},
        }
        answer = await self._call("create", "POST", "/api/presets/", payload=payload, allowed=(201,))
        if answer.status == 201:
            preset = answer.json()
            self._acknowledged(preset)
            self.mine.append(preset["id"])

    async def patch(self) -> None:
        if not self.mine:
            return await self.create()
        preset_id = self.rng.choice(self.mine)
        read = await self._call("patch", "GET", f"/api/presets/{preset_id}", allowed=(200,))
        if read.status != 200:
            return None
        payload = {"description": self._value()}
        headers = {"If-Match": read.headers["etag"]}
        answer = await self._call(
            "patch", "PATCH", f"/api/presets/{preset_id}", payload=payload, headers=headers, allowed=(200,)
        )
        if answer.status == 200:
            self._acknowledged(answer.json())
        return None

    async def merge(self) -> None:
        payload = {"preset_ids": self._some_ids(self.rng.randint(2, 4)), "merge_strategy": "union"}
        await self._call("merge", "POST", "/api/presets/merge", payload=payload, allowed=(200,))

    async def merge_preview(self) -> None:
        """The htmx request the task form sends on "Preview": the preset selector with the merge preview."""
        form = [("action", "refresh"), ("merge_strategy", "union"), ("runtime", "sglang")]
        form += [("presets", str(preset_id)) for preset_id in self._some_ids(3)]
        answer = await self._call(
            "merge_preview",
            "POST",
            "/tasks/new/",
            body=urlencode(form).encode(),
            content_type="application/x-www-form-urlencoded",
            headers={"HX-Request": "true"},
            allowed=(200,),
        )
        if answer.status == 200 and b'id="merge-preview"' not in answer.body:
            self.tally.unexpected.append("merge_preview: the fragment has no #merge-preview")

    async def import_(self) -> None:
        presets = [
            {
                "name": self._name(),
                "description": self._value(),
                "category": "custom",
                "runtime": "",
                "parameters": {"tp-size": [1, 2]},
                "metadata": {},
            }
            for _ in range(3)
        ]
        answer = await self._call(
            "import", "POST", "/api/presets/import", payload={"version": "1.0", "presets": presets}, allowed=(201,)
        )
        if answer.status == 201:
            for preset in answer.json():
                self._acknowledged(preset)
                self.mine.append(preset["id"])

    async def export(self) -> None:
        ids = ",".join(map(str, self._some_ids(5)))
        await self._call("export", "GET", f"/api/presets/export?ids={ids}", allowed=(200,))

    async def delete(self) -> None:
        if not self.mine:
            return await self.create()
        preset_id = self.mine.pop(self.rng.randrange(len(self.mine)))
        answer = await self._call("delete", "DELETE", f"/api/presets/{preset_id}", allowed=(204,))
        if answer.status == 204:
            self.tally.expected.pop(preset_id, None)
            self.tally.deleted.add(preset_id)
        return None


setattr(Client, "import", Client.import_)  # the mix names it "import", a keyword


class Attacker(Client):
    """A signed-in user sending only requests that once held a worker for gunicorn's whole timeout."""

    hostile = True

    def __init__(self, number: int, session: Session, tally: Tally, task: dict, seed: int) -> None:
        super().__init__(number, session, tally, [], seed)
        self.task_id = task["id"]
        self.pages = -(-task["runnable"] // PLAN_PAGE_SIZE)
        self.turn = itertools.cycle(HOSTILE[number % len(HOSTILE) :] + HOSTILE[: number % len(HOSTILE)])

    def next_operation(self) -> str:
        return next(self.turn)

    async def far_plan_page(self) -> None:
        page = self.rng.randint(self.pages // 2, self.pages - 1)  # a full page: the last may be short
        query = urlencode({"page": page, "page_size": PLAN_PAGE_SIZE})
        answer = await self._call("far_plan_page", "GET", f"/api/tasks/{self.task_id}/plan?{query}", allowed=(200,))
        if answer.status == 200 and len(answer.json()["experiments"]) != PLAN_PAGE_SIZE:
            self.tally.misanswered.append(f"far_plan_page: page {page} holds not {PLAN_PAGE_SIZE} experiments")

    # A download of a plan too long for one file may be refused with 400.
    async def plan_json(self) -> None:
        await self._call("plan_json", "GET", f"/tasks/{self.task_id}/plan.json", allowed=(200, 400))

    async def plan_sh(self) -> None:
        await self._call("plan_sh", "GET", f"/tasks/{self.task_id}/plan.sh", allowed=(200, 400))

    async def merge_50_unknown(self) -> None:
        ids = [UNKNOWN_IDS + self.rng.randrange(10**9) for _ in range(50)]
        payload = {"preset_ids": ids, "merge_strategy": "union"}
        await self._call("merge_50_unknown", "POST", "/api/presets/merge", payload=payload, allowed=(404,))

    async def merge_100k_ids(self) -> None:
        start = UNKNOWN_IDS + self.rng.randrange(10**9)
        payload = {"preset_ids": list(range(start, start + 100_000)), "merge_strategy": "union"}
        await self._call("merge_100k_ids", "POST", "/api/presets/merge", payload=payload, allowed=(400,))


async def huge_task(session: Session) -> dict:
    """The task the attackers plan from: a random search over HUGE_GRID, which saves at once."""
    payload = {
        "name": "Hostile huge grid",
        "model": "load/model",
        "runtime": "sglang",
        "parameters": HUGE_GRID,
        "optimization_strategy": "random",
        "max_experiments": 50,
    }
    answer = await session.json("POST", "/api/tasks/", payload)
    if answer.status != 201:
        raise SystemExit(f"Creating the huge-grid task failed: HTTP {answer.status} {answer.body[:300]!r}")
    return answer.json()


async def verify(session: Session, tally: Tally) -> list[str]:
    """Every acknowledged write stored as written, every deleted preset gone: the problems found."""
    stored: dict[int, str] = {}
    listed = 0  # presets the search matches, whatever their name
    page = 1
    while True:
        query = urlencode({"search": f"{NAME_PREFIX} ", "page_size": 10_000, "page": page})
        answer = await session.request("GET", f"/api/presets/?{query}")
        if answer.status != 200:
            return [f"listing the presets for the check failed: HTTP {answer.status}"]
        rows = answer.json()
        listed += len(rows)
        stored.update({row["id"]: row["description"] for row in rows if row["name"].startswith(NAME_PREFIX)})
        if 'rel="next"' not in answer.headers.get("link", ""):
            break
        page += 1
    problems = []
    # Every worker asked for the total before the run (drive): after the writes, each must report
    # the presets there are, so that nothing a worker kept can hide a write.
    for _ in range(6):  # a few asks, to reach every worker
        answer = await session.request("GET", TOTAL_OF_OURS)
        reported = answer.headers.get("x-total-count")
        if answer.status != 200 or reported != str(listed):
            problems.append(f"a list reports {reported} presets (HTTP {answer.status}), {listed} are listed")
            break
    lost = sorted(set(tally.expected) - set(stored))
    wrong = sorted(i for i in tally.expected.keys() & stored.keys() if stored[i] != tally.expected[i])
    undead = sorted(tally.deleted & stored.keys())
    unknown = sorted(set(stored) - set(tally.expected) - tally.deleted)
    if lost:
        problems.append(f"{len(lost)} acknowledged presets are missing, e.g. ids {lost[:10]}")
    if wrong:
        problems.append(f"{len(wrong)} presets hold another value than the one acknowledged, e.g. ids {wrong[:10]}")
    if undead:
        problems.append(f"{len(undead)} deleted presets are still listed, e.g. ids {undead[:10]}")
    if unknown:  # written by a request whose answer never arrived: reported, not a lost write
        print(f"note: {len(unknown)} stored presets were never acknowledged (their requests failed)")
    print(
        f"check: {len(tally.expected)} acknowledged presets expected, {len(stored)} stored, "
        f"{len(tally.expected) - len(lost) - len(wrong)} match; {len(tally.deleted)} deleted, "
        f"{len(tally.deleted) - len(undead)} gone"
    )
    return problems


async def drive(port: int, clients: int, hostile: int, seconds: float, seed: int) -> tuple[Tally, float, list[str]]:
    session = Session("127.0.0.1", port)
    await session.log_in()
    listing = (await session.request("GET", "/api/presets/?is_system=true")).json()
    seed_ids = [row["id"] for row in listing]
    for _ in range(6):  # each worker keeps this total (none yet) until a write: verify asks again
        await session.request("GET", TOTAL_OF_OURS)
    tally = Tally()
    workers = [Client(number, session, tally, seed_ids, seed * 1000 + number) for number in range(clients)]
    if hostile:
        task = await huge_task(session)
        workers += [Attacker(clients + n, session, tally, task, seed * 1000 + clients + n) for n in range(hostile)]
    started = time.monotonic()
    await asyncio.gather(*(worker.run(started + seconds) for worker in workers))
    elapsed = time.monotonic() - started
    problems = await verify(session, tally)
    return tally, elapsed, problems


def prepare(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """Migrate and seed a fresh database and create the user; the server's environment."""
    env = {
        **os.environ,
        "AUTOTUNER_DATA_DIR": str(data_dir),
        "DJANGO_SETTINGS_MODULE": "autotuner.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        # One user sends everything here: the per-user abuse limit would answer most of it with 429.
        "AUTOTUNER_API_RATE_USER": "off",
        "AUTOTUNER_API_RATE_ANON": "off",
        "AUTOTUNER_LOG_LEVEL": "WARNING",  # not a line per request
    }
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    manage = [sys.executable, "manage.py"]
    for command in (
        ["migrate", "--verbosity", "0"],
        ["seed_presets", "--verbosity", "0"],
        ["createsuperuser", "--noinput", "--username", USERNAME, "--email", "load@example.com"],
    ):
        subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port: int, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    timings = sorted(seconds)
    return timings[len(timings) // 2] * 1000, timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000


def server_log_problems(log: str) -> tuple[list[str], list[str]]:
    """gunicorn's WORKER TIMEOUT lines, and the first line of each traceback, in the server's log."""
    lines = log.splitlines()
    timeouts = [line for line in lines if WORKER_TIMEOUT in line]
    tracebacks = [
        next((later for later in lines[number + 1 :] if not later.startswith((" ", "Traceback"))), line)
        for number, line in enumerate(lines)
        if line.startswith("Traceback")
    ]
    return timeouts, tracebacks


def report(tally: Tally, elapsed: float, problems: list[str], clients: int, hostile: int, engine: str, log: str) -> int:
    normal = sum(tally.done[operation] for operation in MIX)
    print(f"\n{clients} clients and {hostile} hostile for {elapsed:.0f} s on {engine}, gunicorn 2 sync workers")
    print(f"{'operation':17} {'done':>7} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for operation in (*MIX, *HOSTILE):
        if not tally.seconds[operation]:
            continue
        p50, p99 = percentiles(tally.seconds[operation])
        statuses = ", ".join(
            f"{status}×{count}" for (name, status), count in sorted(tally.statuses.items()) if name == operation
        )
        done = tally.done[operation]
        print(f"{operation:17} {done:7} {done / elapsed:7.1f} {p50:8.1f} {p99:8.1f}  {statuses}")
    requests = len(tally.requests)
    rate = f"({requests} HTTP requests, {requests / elapsed:.1f}/s)"
    print(f"{'normal, all':17} {normal:7} {normal / elapsed:7.1f}   {rate}")
    if tally.requests:
        p50, p99 = percentiles(tally.requests)
        verdict = "PASS" if p99 <= RATIO_TARGET * p50 else "MISS"
        print(
            f"normal requests: p50 {p50:.1f} ms, p99 {p99:.1f} ms, p99/p50 {p99 / p50:.2f} "
            f"(target <= {RATIO_TARGET}): {verdict}"
        )
    timeouts, tracebacks = server_log_problems(log)
    print(f"gunicorn {WORKER_TIMEOUT} lines: {len(timeouts)}, tracebacks in the server log: {len(tracebacks)}")
    print(
        f"5xx: {len(tally.server_errors)}, 'database is locked': {len(tally.locked)}, "
        f"no or unreadable answer: {len(tally.broken)}, hostile requests answered wrongly: {len(tally.misanswered)}, "
        f"other unexpected answers: {len(tally.unexpected)}"
    )
    failures = [
        *tally.server_errors,
        *tally.locked,
        *tally.broken,
        *tally.misanswered,
        *timeouts,
        *(f"traceback: {line}" for line in tracebacks),
    ]
    for line in (failures + tally.unexpected)[:20]:
        print(f"  {line}")
    for problem in problems:
        print(f"WRITES NOT SEEN: {problem}")
    failed = bool(failures or problems)
    print(
        "FAILED"
        if failed
        else "OK: no 5xx, no lock errors, every hostile request answered as it should be, no worker timeout, "
        "no traceback, every acknowledged write stored and counted"
    )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--hostile", type=int, default=2, help="clients sending only hostile requests (0: none)")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a new SQLite file)")
    parser.add_argument("--seed", type=int, default=1, help="the operations' random choices")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="autotuner-load-"))
    log_path = data_dir / "gunicorn.log"
    engine = "PostgreSQL" if args.database_url else "SQLite"
    server = None
    try:
        print(f"Building a fresh {engine} database in {data_dir} …", flush=True)
        env = prepare(data_dir, args.database_url)
        port = free_port()
        gunicorn = [sys.executable, "-m", "gunicorn", "autotuner.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"]
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [*gunicorn, "--timeout", "30", "--log-level", "warning"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_up(port, server)
        tally, elapsed, problems = asyncio.run(drive(port, args.clients, args.hostile, args.seconds, args.seed))
        return report(
            tally, elapsed, problems, args.clients, args.hostile, engine, log_path.read_text(errors="replace")
        )
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
