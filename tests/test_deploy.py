"""Production mode (AUTOTUNER_ENV=production): `check --deploy` passes clean, the development key is
refused, and `bin/serve` serves the app as production would (gunicorn, the worker, whitenoise's hashed
and compressed static files) and stops both on SIGTERM. `bin/start` serves the development setup with
gunicorn too (runserver with --dev) and leaves nothing running after SIGTERM. A database that is away is
said plainly, and the app recovers when it comes back."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tasks.runner import free_port
from tests import postgres
from tests.workers import ROOT, wait_until

pytestmark = pytest.mark.deploy

GUNICORN = [sys.executable, "-m", "gunicorn", "autotuner.wsgi", "--no-control-socket"]
SERVE_START_SECONDS = 240  # a cold start migrates a new database and compresses every static file
# What the developer's or CI's environment may set that would change what these tests check.
# (The root conftest sets DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; check --deploy rightly refuses it.)
CLEARED = {
    *("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL", "TEST_DATABASE_URL"),
    *("SECRET_KEY", "DEBUG", "ALLOWED_HOSTS"),
}


def random_secret() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))


def production_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in CLEARED and not name.startswith(("SECURE_", "AUTOTUNER_"))
    }
    env.update(
        AUTOTUNER_ENV="production",
        SECRET_KEY=random_secret(),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        AUTOTUNER_DATA_DIR=str(data_dir),
    )
    env.update(extra)
    return env


def manage(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# Settings


def test_check_deploy_passes_without_a_single_warning_in_production(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "secret_key",
    [None, "dev-only-insecure-key-change-me-in-production", "short-but-secret", "a" * 60],
    ids=["unset", "the development key", "too short", "too few distinct characters"],
)
def test_production_refuses_to_start_without_a_real_secret_key(tmp_path, secret_key):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "ImproperlyConfigured: AUTOTUNER_ENV=production needs SECRET_KEY" in result.stderr


def test_production_refuses_debug(tmp_path):
    result = manage("check", env=production_env(tmp_path, DEBUG="true"))

    assert result.returncode != 0
    assert "AUTOTUNER_ENV=production refuses DEBUG=true" in result.stderr


def test_outside_production_debug_off_still_starts_with_the_development_key(tmp_path):
    env = production_env(tmp_path, DEBUG="false")
    del env["AUTOTUNER_ENV"], env["SECRET_KEY"]

    assert manage("check", env=env).returncode == 0


SHOWN_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
names = ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER",
         "SECURE_REDIRECT_EXEMPT", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY",
         "STORAGES", "MIDDLEWARE"]
print(json.dumps({name: getattr(s, name) for name in names}))
"""


def shown_settings(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SHOWN_SETTINGS],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "autotuner.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_settings(tmp_path):
    shown = shown_settings(production_env(tmp_path))

    assert shown["DEBUG"] is False
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SESSION_COOKIE_HTTPONLY"] is True
    assert shown["SECURE_HSTS_SECONDS"] == 31536000
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert shown["SECURE_HSTS_PRELOAD"] is True
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["SECURE_REDIRECT_EXEMPT"] == ["^healthz$"]
    assert shown["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert shown["X_FRAME_OPTIONS"] == "DENY"
    assert shown["SECURE_REFERRER_POLICY"] == "same-origin"
    assert shown["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    middleware = shown["MIDDLEWARE"]
    assert middleware[middleware.index("django.middleware.security.SecurityMiddleware") + 1 :][:2].count(
        "whitenoise.middleware.WhiteNoiseMiddleware"
    ), "WhiteNoiseMiddleware must come right after SecurityMiddleware (the CSP middleware may sit between)"


def test_hsts_preload_and_the_redirect_can_be_switched_off(tmp_path):
    shown = shown_settings(production_env(tmp_path, SECURE_HSTS_PRELOAD="false", SECURE_HSTS_SECONDS="3600"))

    assert shown["SECURE_HSTS_PRELOAD"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 3600


# bin/serve


class Client:
    """Plain HTTP to the server, as from behind a proxy that terminated HTTPS; keeps cookies itself
    (they are Secure, which http.cookiejar would not send over http://)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(
        self, method: str, path: str, *, body: str | None = None, headers: dict[str, str] | None = None, https=True
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        sent = dict(headers or {})
        if https:
            sent["X-Forwarded-Proto"] = "https"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            content = response.read()
        finally:
            connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            self.set_cookies.append(cookie)
            name, _, value = cookie.split(";")[0].partition("=")
            self.cookies[name.strip()] = value
        return response.status, response.headers, content


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Served:
    """A bin/ script serving on a port: its process, a client for it, and what it printed so far."""

    process: subprocess.Popen
    client: Client
    log: Path

    def printed(self) -> str:
        return f"--- {self.log.stem} ---\n{self.log.read_text(errors='replace')}"

    def children(self) -> dict[int, str]:
        return {pid: command_line(pid) for pid in descendants(self.process.pid)}

    def stops_on_sigterm_leaving_nothing(self, children: dict[int, str]) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 128 + signal.SIGTERM, self.printed()
        left = {pid: line for pid, line in children.items() if running(pid)}
        assert not left, f"still running after {self.log.stem} stopped: {left}\n{self.printed()}"


@contextlib.contextmanager
def serving(script: str, arguments: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[Served]:
    """Starts ``bin/<script>`` in a session of its own, waits for its /healthz, and kills whatever
    is left of it at the end."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(ROOT / "bin" / script), *arguments],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, Client(port), log)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"bin/{script} exited with status {process.returncode}\n{served.printed()}")
        try:
            return served.client.request("GET", "/healthz", https=False)[0] == 200
        except OSError:
            return False

    try:
        wait_until(healthy, timeout=SERVE_START_SECONDS, what=f"bin/{script}'s /healthz", every=0.5)
        yield served
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_bin_serve_serves_the_app_as_production_would_and_stops_cleanly(tmp_path):
    port = free_port()
    env = production_env(tmp_path / "data", AUTOTUNER_ADDR=f"127.0.0.1:{port}", WEB_CONCURRENCY="2")
    log = tmp_path / "serve.log"
    with serving("serve", [], env, port, log) as serve:
        client, printed = serve.client, serve.printed
        processes = serve.children()
        assert any("gunicorn" in line for line in processes.values()), processes
        assert any("manage.py worker" in line for line in processes.values()), processes

        created = manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; User.objects.create_user('ops', password='pw-ops-123')",
            env=env,
        )
        assert created.returncode == 0, created.stderr

        # Plain HTTP is sent to HTTPS, except the load balancer's probe.
        status, headers, _ = client.request("GET", "/login/", https=False)
        assert status == 301
        assert headers["Location"] == f"https://127.0.0.1:{port}/login/"

        status, headers, page = client.request("GET", "/login/")
        assert status == 200, printed()
        assert "max-age=31536000" in headers["Strict-Transport-Security"]
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        status, headers, _ = client.request(
            "POST",
            "/login/",
            body=urlencode({"username": "ops", "password": "pw-ops-123", "csrfmiddlewaretoken": token}),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Origin": f"https://127.0.0.1:{port}",
                "Referer": f"https://127.0.0.1:{port}/login/",
            },
        )
        assert status == 302, printed()
        session_cookie = next(cookie for cookie in client.set_cookies if cookie.startswith("sessionid="))
        assert "Secure" in session_cookie
        assert "HttpOnly" in session_cookie

        status, headers, page = client.request("GET", "/presets/")
        assert status == 200
        assert b"ops" in page
        assert b"Balanced" in page  # seeded by bin/serve
        request_id = headers["X-Request-ID"]

        # Static files: hashed names, a gzip variant, cached for good.
        stylesheet = re.search(rb'href="(/static/css/app\.[0-9a-f]{12}\.css)"', page).group(1).decode()
        status, headers, content = client.request("GET", stylesheet, headers={"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["Content-Encoding"] == "gzip"
        assert "immutable" in headers["Cache-Control"]
        assert b"{" in gzip.decompress(content)

        serve.stops_on_sigterm_leaving_nothing(processes)

        logged = log.read_text()
        assert f"autotuner.requests request_id={request_id} GET /presets/ 200 " in logged
        # gunicorn's access log quotes the same id
        assert re.search(rf'"GET /presets/ HTTP/1.1" 200 .* request_id={request_id}\n', logged), printed()


# bin/start


def development_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = production_env(data_dir, **extra)
    del env["AUTOTUNER_ENV"], env["SECRET_KEY"], env["DEBUG"], env["ALLOWED_HOSTS"]
    return env


@pytest.mark.parametrize(
    ("arguments", "server"),
    [([], "gunicorn"), (["--dev"], "WSGIServer")],
    ids=["gunicorn", "runserver with --dev"],
)
def test_bin_start_serves_pages_and_static_files_and_leaves_nothing_running_after_sigterm(tmp_path, arguments, server):
    port = free_port()
    log = tmp_path / "start.log"
    env = development_env(tmp_path / "data", AUTOTUNER_ADDR=f"127.0.0.1:{port}")
    with serving("start", arguments, env, port, log) as start:
        client, printed = start.client, start.printed
        processes = start.children()
        assert any("manage.py worker" in line for line in processes.values()), processes

        status, headers, page = client.request("GET", "/login/", https=False)
        assert status == 200, printed()
        assert headers["Server"].startswith(server)
        assert b'href="/static/css/app.css"' in page
        status, headers, content = client.request("GET", "/static/css/app.css", https=False)
        assert status == 200
        assert headers["Content-Type"].startswith("text/css")
        assert b"{" in content

        start.stops_on_sigterm_leaving_nothing(processes)


# The database away


def test_an_unreachable_database_is_said_plainly(tmp_path):
    port = free_port()
    env = production_env(tmp_path, DATABASE_URL=f"postgres://autotuner@127.0.0.1:{port}/autotuner")

    waited = manage("wait_for_database", "--timeout", "0", env=env)
    checked = manage("check", "--database", "default", env=env)

    assert waited.returncode == 1
    assert f"cannot reach the database at 127.0.0.1:{port}: " in waited.stderr
    assert "Traceback" not in waited.stderr
    assert checked.returncode == 1
    assert f"cannot reach the database at 127.0.0.1:{port}: " in checked.stderr
    assert "Traceback" not in checked.stderr


@pytest.fixture
def stoppable_cluster(monkeypatch):
    """A PostgreSQL cluster of this test's own (the session's is shared), with start() and stop()
    that keep its port. Yields (cluster, port), the server stopped."""
    bindir = postgres.postgres_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{postgres.NOT_INSTALLED} (CI=true)", pytrace=False)
        pytest.skip(postgres.NOT_INSTALLED)
    root = Path(tempfile.mkdtemp(prefix="autotuner-pg-"))
    cluster = postgres._Cluster(bindir, root)
    try:
        cluster.create()
        port = cluster.start()
        cluster.stop()
        monkeypatch.setattr(postgres, "free_port", lambda: port)  # starting again keeps the port
        yield cluster, port
    finally:
        try:
            cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.mark.postgres
def test_the_app_started_without_its_database_answers_503_and_recovers_when_it_is_back(tmp_path, stoppable_cluster):
    cluster, db_port = stoppable_cluster
    port = free_port()
    env = production_env(tmp_path, DATABASE_URL=f"postgres://postgres@127.0.0.1:{db_port}/postgres")
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [*GUNICORN, "--workers", "1", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    client = Client(port)

    def health() -> int | None:
        if server.poll() is not None:
            raise AssertionError(f"gunicorn exited with status {server.returncode}\n{log.read_text()}")
        try:
            return client.request("GET", "/healthz", https=False)[0]
        except OSError:
            return None

    try:
        assert wait_until(health, timeout=60, what="gunicorn to answer") == 503
        status, headers, _ = client.request("GET", "/api/presets/", headers={"Authorization": "Token not-checked-yet"})
        assert status == 503
        assert headers["Retry-After"] == "5"

        cluster.start()
        wait_until(lambda: health() == 200, timeout=30, what="/healthz 200 once PostgreSQL is up")

        cluster.stop()
        wait_until(lambda: health() == 503, timeout=30, what="/healthz 503 once PostgreSQL is down again")
        assert "database unavailable at 127.0.0.1:" in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
