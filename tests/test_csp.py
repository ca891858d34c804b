"""The Content-Security-Policy header, its per-request nonce, and templates that need nothing more.
Every page walked in Chromium with no violation: tests/browser/test_csp.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

STRICT_POLICY = {
    "default-src": "'self'",
    "script-src": "'self' 'nonce-{nonce}'",
    "style-src": "'self'",
    "img-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}
TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"
TEMPLATE_COMMENT = re.compile(r"\{#.*?#\}")


def directives(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return dict(part.split(" ", 1) for part in header.split("; "))


def script_nonces(response) -> list[str]:
    return re.findall(r"<script\b[^>]*\bnonce=\"([^\"]*)\"", response.content.decode())


@pytest.mark.django_db
def test_a_page_carries_the_strict_policy_with_the_nonce_its_scripts_use(client, user):
    client.force_login(user)
    response = client.get("/")

    assert response.status_code == 200
    nonces = set(script_nonces(response))
    assert len(nonces) == 1  # htmx, django-htmx's debug helper if DEBUG, copy.js: one nonce
    nonce = nonces.pop()
    assert directives(response) == {name: value.format(nonce=nonce) for name, value in STRICT_POLICY.items()}


@pytest.mark.django_db
def test_every_response_gets_a_new_nonce(client, user):
    client.force_login(user)

    first, second = (directives(client.get("/presets/"))["script-src"] for _ in range(2))

    assert first != second


@pytest.mark.django_db
def test_the_login_page_carries_the_policy_too(client):
    response = client.get("/login/")

    assert directives(response)["default-src"] == "'self'"
    assert "unsafe" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_api_docs_page_alone_allows_data_images_and_loads_its_start_up_script_as_a_file(client, user):
    client.force_login(user)

    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")

    assert directives(page)["img-src"] == "'self' data:"
    assert directives(page)["script-src"] == "'self'"  # no inline script, so no nonce either
    assert "<style" not in page.content.decode()
    assert re.search(r"<script(?![^>]*\bsrc=)", page.content.decode()) is None
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


@pytest.mark.django_db
def test_the_browsable_api_has_no_inline_style(client, user):
    client.force_login(user)

    html = client.get("/api/presets/", headers={"Accept": "text/html"}).content.decode()

    assert "<style" not in html
    assert " style=" not in html
    assert re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))", html) is None


@pytest.mark.parametrize(
    "pattern",
    [
        r"<script(?![^>]*\bnonce=\"\{\{ csp_nonce \}\}\")[^>]*>",  # a script without the nonce
        r"<style\b",
        r"\sstyle=",
        r"\son[a-z]+=",  # onclick= and friends
        r"\bhx-on",
        r"javascript:",
    ],
    ids=["script-without-nonce", "style-element", "style-attribute", "event-handler", "hx-on", "javascript-url"],
)
def test_no_template_holds_what_the_policy_would_block(pattern):
    offending = [
        f"{path.relative_to(TEMPLATES_DIR)}: {match.group(0)}"
        for path in sorted(TEMPLATES_DIR.rglob("*.html"))
        for match in re.finditer(pattern, TEMPLATE_COMMENT.sub("", path.read_text()))
    ]

    assert offending == []
