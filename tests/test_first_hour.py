"""What a new user meets in the first hour, seen in the HTML (issue 20): where API tokens live, the
favicon, one log line per request, one spelling, the presets table's row menu. The layout itself
(no sideways scroll, long words, launch commands) is checked in Chromium: tests/browser/test_first_hour.py."""

from __future__ import annotations

import logging
import re
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

from tests.factories import make_preset, make_task
from tests.html import parse

pytestmark = pytest.mark.django_db


def test_the_header_links_the_user_name_to_the_account_page_and_says_api_tokens_live_there(signed_in):
    header = parse(signed_in.get("/").content).find("header")

    link = header.find("a", href="/account/")
    assert "API tokens" in link.text
    account = parse(signed_in.get(link.attrs["href"]).content)
    assert account.by_id("api-tokens").find("h2").text == "API tokens"


# The favicon


def test_every_page_links_a_favicon_that_exists(client):
    icon = parse(client.get("/login/").content).find("link", rel="icon")

    assert icon.attrs["href"] == "/static/favicon.svg"
    assert finders.find("favicon.svg")


def test_favicon_ico_leads_to_the_icon_instead_of_a_404(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"


# The request log


def serve_one_request(path: str) -> int:
    """``path`` from the development server's own WSGI server and request handler, as runserver serves
    it. Returns its status once the handler is done, having written all it logs."""
    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    # The handler itself: autotuner.wsgi would set Django up again, replacing the log handlers caplog added.
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        with urllib.request.build_opener(NoRedirect).open(f"http://127.0.0.1:{server.server_port}{path}") as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
        error.close()
    thread.join(timeout=10)
    server.server_close()
    return status


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.parametrize(("path", "status"), [("/login/", 200), ("/favicon.ico", 302), ("/no-such-page/", 404)])
def test_one_request_writes_one_log_line(caplog, path, status):
    caplog.set_level(logging.INFO)

    assert serve_one_request(path) == status

    assert [(record.name, record.getMessage().split()[:3]) for record in caplog.records] == [
        ("autotuner.requests", ["GET", path, str(status)])
    ]


# One spelling: US English, as the API's field names (optimization_strategy)


def test_no_template_or_page_spells_optimization_the_british_way(signed_in, user):
    task = make_task(created_by=user)
    pages = [signed_in.get(url).content.decode() for url in ("/tasks/new/", task.get_absolute_url())]
    templates = [path.read_text() for path in Path(settings.BASE_DIR, "templates").rglob("*.html")]
    readme = Path(settings.BASE_DIR, "README.md").read_text()

    assert "Optimization" in pages[0]
    assert [text for text in [*pages, *templates, readme] if re.search(r"(?i)optimis", text)] == []


# The presets table


def test_each_preset_row_has_its_actions_in_one_compact_menu(signed_in, user):
    make_preset(name="Mine", created_by=user)

    table = parse(signed_in.get("/presets/").content).find("table", class_="presets-table")

    for row in table.find("tbody").find_all("tr"):
        cell = row.find("td", class_="row-actions")
        menu = cell.find("details", class_="row-menu")
        assert [child.tag for child in cell.find_all() if child.tag in ("a", "form")] == [
            element.tag for element in menu.find_all() if element.tag in ("a", "form")
        ]
        assert menu.find("summary").text.startswith("Actions")


def test_the_dashboard_says_just_now_rather_than_0_minutes_ago(signed_in, user):
    make_preset(name="Fresh", created_by=user)

    times = [time.text for time in parse(signed_in.get("/").content).find_all("time")]

    assert "just now" in times
    assert not [text for text in times if text.startswith("0")]
