"""The Engines page in headless Chromium: tuning flags first, the rest in a closed group, a live
search, and a link to each flag that opens the group it sits in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-lin-123"


def log_in(page: Page) -> None:
    get_user_model().objects.create_user("lin", password=PASSWORD)
    page.goto("/login/?next=/engines/")
    page.fill("#id_username", "lin")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Engine flags", exact=True)).to_be_visible()


def test_the_engines_page_shows_the_tuning_flags_and_finds_the_rest(page: Page, artifacts_dir: Path) -> None:
    log_in(page)
    other = page.locator("details#other-flags")

    expect(page.get_by_role("heading", name=re.compile(r"^Tuning flags \(\d+\)$"))).to_be_visible()
    expect(page.locator("tr#flag-tp-size")).to_be_visible()
    expect(other).not_to_have_attribute("open", "")
    expect(page.locator("tr#flag-api-key")).to_be_hidden()
    height = page.evaluate("() => document.documentElement.scrollHeight")
    assert height < 15_000, height  # the tuning flags; the other few hundred wait behind one line
    page.screenshot(path=artifacts_dir / "engines-page.png", full_page=True)

    # Typing filters in place: both groups, open.
    page.fill("#id_search", "api-key")
    expect(page.locator("#flag-table > p").first).to_have_text(re.compile(r"matching “api-key”\.$"))
    expect(other).to_have_attribute("open", "")
    expect(page.locator("tr#flag-api-key")).to_be_visible()

    # A flag's link, shared: the whole list, scrolled to that flag, its closed group opened.
    href = page.locator("tr#flag-api-key th a").get_attribute("href")
    assert href == "/engines/?runtime=sglang#flag-api-key"
    page.goto(href)
    expect(page.locator("tr#flag-api-key")).to_be_in_viewport()
    expect(other).to_have_attribute("open", "")
