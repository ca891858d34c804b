"""Playwright against Debian's Chromium and pytest-django's live_server.

Run only these: ``bin/test tests/browser`` (or ``-m browser``); leave them out: ``-m "not browser"``.
"""

from __future__ import annotations

import os

# Playwright's sync API keeps an event loop running in the test thread for the whole session, and
# Django refuses ORM calls from a thread with a running loop; that includes tests run after these.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import ConsoleMessage, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
ACTION_TIMEOUT_MS = 10_000  # clicks and page loads; expect() keeps its 5 s default


@pytest.fixture(scope="session")
def playwright(playwright: Playwright) -> Iterator[Playwright]:
    """pytest-playwright's, closing the database connections the tests opened while it ran.

    Starting Playwright gives this thread a new contextvars context, and stopping it restores the old
    one. Django keeps its connections per context: those opened in between would stay open, out of
    reach, and on PostgreSQL one open connection keeps the test database from being dropped."""
    yield playwright
    connections.close_all()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true, so the browser tests may not be skipped)", pytrace=False)
        pytest.skip(f"{message} to run the browser tests")
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], live_server: Any) -> dict[str, Any]:
    """Lets every test write ``page.goto("/presets/")``. Not by overriding ``base_url``: with
    pytest-base-url installed, an autouse fixture would then start live_server for every test."""
    return {**browser_context_args, "base_url": live_server.url}


@pytest.fixture(scope="session")
def artifacts_dir(pytestconfig: pytest.Config) -> Path:
    """``test-artifacts/`` at the repository root (git-ignored): screenshots kept after the run."""
    path = pytestconfig.rootpath / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def page(page: Page) -> Page:
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    return page


class ConsoleErrors:
    """Console errors a page logged. ``allow(text)`` excuses the ones a test expects, e.g. the
    "status of 422" Chromium logs when a form comes back with its errors."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed: list[str] = []

    def record(self, text: str) -> None:
        self.seen.append(text)

    def allow(self, text: str) -> None:
        self.allowed.append(text)

    def unexpected(self) -> list[str]:
        return [error for error in self.seen if not any(text in error for text in self.allowed)]


@pytest.fixture(autouse=True)
def console_errors(page: Page) -> Iterator[ConsoleErrors]:
    """Every browser test ends with no JavaScript error and no console.error it did not expect."""
    errors = ConsoleErrors()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.record(f"{message.text} (at {message.location.get('url') or 'unknown'})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.record(f"uncaught {error.name}: {error.message}"))
    yield errors
    assert errors.unexpected() == [], "JavaScript console errors during the test"
