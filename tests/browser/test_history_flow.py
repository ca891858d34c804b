"""A preset's history and the trash in headless Chromium: edit, compare, restore, undelete."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Locator, Page, expect

from presets.models import ParameterPreset, PresetRevision
from tests.factories import make_preset

if TYPE_CHECKING:
    from pathlib import Path

    from tests.browser.conftest import ConsoleErrors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-ada-123"
INVALID_FORM = "the server responded with a status of 422"  # what Chromium logs for a form sent back


def log_in(page: Page, username: str = "ada") -> Any:
    """A new user, logged in through the login form; the page is left on the presets list."""
    user = get_user_model().objects.create_user(username, password=PASSWORD)
    page.goto("/login/?next=/presets/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible()
    return user


def row(page: Page, name: str) -> Locator:
    """The presets list's row for the preset called ``name``."""
    return page.locator("#preset-table tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))


def grid_values(page: Page, flag: str) -> Locator:
    """The values the page's parameters table shows for ``--flag``."""
    return page.locator(".grid-table tbody tr").filter(has_text=f"--{flag}").locator(".value")


def edit(page: Page, *, parameters: dict[str, Any], note: str, description: str | None = None) -> None:
    """From the preset's page, through its Edit page and back, saved with a change note."""
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit “Sweep”")
    page.fill("#id_parameters", json.dumps(parameters))
    expect(page.locator("#parameters-preview")).to_contain_text("Valid:")
    if description is not None:
        page.fill("#id_description", description)
    page.fill("#id_change_note", note)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Saved preset “Sweep”.")


def test_edit_twice_compare_v1_and_v3_restore_v1_gives_v4_equal_to_v1(page: Page, artifacts_dir: Path) -> None:
    user = log_in(page)
    page.get_by_role("link", name="Create preset").click()
    page.fill("#id_name", "Sweep")
    page.select_option("#id_runtime", "sglang")
    page.fill("#id_parameters", '{"tp-size": [1, 2], "mem-fraction-static": [0.8]}')
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 2 combinations")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Created preset “Sweep”.")
    preset = ParameterPreset.objects.get(name="Sweep")
    assert (preset.runtime, preset.created_by, preset.current_version) == ("sglang", user, 1)

    edit(page, parameters={"tp-size": [1, 2, 4], "mem-fraction-static": [0.8]}, note="more GPUs")
    edit(
        page,
        parameters={"tp-size": [1, 2, 4], "mem-fraction-static": [0.8], "schedule-policy": ["lpm"]},
        description="Three TP sizes, longest prefix match first.",
        note="try lpm",
    )

    page.get_by_role("link", name="History (v3)", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/presets/{preset.pk}/history/$"))
    versions = page.locator(".history-table tbody tr")
    expect(versions.locator("th")).to_have_text(["v3 Current", "v2", "v1"])
    expect(versions.locator(".note-cell")).to_have_text(["try lpm", "more GPUs", "—"])

    diff = page.locator("#diff")
    page.evaluate("() => { window.stillTheSamePage = true }")  # gone if the browser loads a page
    # Each choice sends the form too (hx-trigger "change, submit"). Waiting for each answer keeps
    # hx-sync from aborting the one before, which htmx logs as a console error.
    compare = page.locator("#compare")
    page.select_option("#id_from", "1")
    expect(compare).not_to_have_class(re.compile(r"htmx-request"))
    page.select_option("#id_to", "3")
    expect(compare).not_to_have_class(re.compile(r"htmx-request"))
    page.get_by_role("button", name="Compare", exact=True).click()
    expect(compare).not_to_have_class(re.compile(r"htmx-request"))
    expect(diff.locator(".diff-summary")).to_contain_text("From version 1 to version 3")
    expect(diff.locator("#changed-tp-size .added .value")).to_have_text(["4"])
    expect(diff.locator("#changed-tp-size .removed")).to_have_text("—")
    added = diff.locator(".diff-added tbody tr")
    expect(added.locator("th")).to_have_text(["--schedule-policy"])
    expect(added.locator(".value")).to_have_text(["lpm"])
    expect(diff.locator(".diff-removed")).to_have_count(0)
    fields = diff.locator(".diff-fields tbody tr")
    expect(fields).to_have_count(1)
    expect(fields.locator("th")).to_have_text("Description")
    expect(fields.locator(".removed")).to_have_text("(empty)")
    expect(fields.locator(".added")).to_have_text("Three TP sizes, longest prefix match first.")
    assert page.evaluate("() => window.stillTheSamePage") is True
    query = parse_qs(urlsplit(page.url).query)
    assert (query["from"], query["to"]) == (["1"], ["3"])
    page.screenshot(path=artifacts_dir / "preset-history.png", full_page=True)

    page.locator("#version-1").get_by_role("link", name="View version 1", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("“Sweep”, version 1")
    v1_grid = page.locator(".grid-table tbody").inner_text()
    page.get_by_role("button", name="Restore this version", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/presets/{preset.pk}/history/$"))
    expect(page.locator("#messages")).to_contain_text("Restored version 1 of “Sweep” as version 4.")
    expect(versions.locator("th")).to_have_text(["v4 Current", "v3", "v2", "v1"])
    page.get_by_role("link", name="View version 4", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("“Sweep”, version 4 Current")
    expect(grid_values(page, "tp-size")).to_have_text(["1", "2"])
    expect(grid_values(page, "mem-fraction-static")).to_have_text(["0.8"])
    expect(grid_values(page, "schedule-policy")).to_have_count(0)
    assert page.locator(".grid-table tbody").inner_text() == v1_grid

    revisions = {revision.version: revision for revision in PresetRevision.objects.filter(preset=preset)}
    assert sorted(revisions) == [1, 2, 3, 4]
    assert revisions[4].content == revisions[1].content
    assert revisions[4].event == "restored"
    preset.refresh_from_db()
    assert (preset.current_version, preset.parameters, preset.description) == (
        4,
        {"tp-size": [1, 2], "mem-fraction-static": [0.8]},
        "",
    )


def test_a_deleted_preset_comes_back_from_the_trash_under_a_new_name_when_its_own_was_taken(
    page: Page, artifacts_dir: Path, console_errors: ConsoleErrors
) -> None:
    console_errors.allow(INVALID_FORM)  # the refused restore comes back as a 422 page
    user = log_in(page)
    deleted = make_preset(name="Scratchpad", parameters={"tp-size": [1, 2]}, created_by=user)
    page.goto(deleted.get_absolute_url())

    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page).to_have_url(re.compile(r"/presets/$"))
    assert dialogs == ["Delete the preset “Scratchpad”? It goes to the trash, where it can be restored for 30 days."]
    expect(page.locator("#messages")).to_contain_text("Deleted preset “Scratchpad”.")
    expect(row(page, "Scratchpad")).to_have_count(0)

    page.get_by_role("link", name="Trash", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Trash")
    trashed = page.locator(f"#trashed-{deleted.pk}")
    expect(trashed.locator("th")).to_have_text("Scratchpad (v1)")
    make_preset(name="Scratchpad", parameters={"tp-size": [8]}, created_by=user)  # the name, taken meanwhile

    trashed.get_by_role("button", name="Restore Scratchpad", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("“Scratchpad” was not restored")
    new_name = trashed.get_by_label("New name")
    expect(new_name).to_have_value("Scratchpad (restored)")  # a free name, suggested
    expect(new_name).to_have_attribute("aria-invalid", "true")
    expect(trashed.locator(".errorlist")).to_have_text("Another preset is named “Scratchpad” now; choose a new name.")
    page.screenshot(path=artifacts_dir / "preset-trash.png", full_page=True)

    new_name.fill("Scratchpad (restored)")
    trashed.get_by_role("button", name="Restore with this name", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/presets/{deleted.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Scratchpad (restored)")
    expect(page.locator("#messages")).to_contain_text("Restored “Scratchpad (restored)” from the trash.")
    deleted.refresh_from_db()
    assert (deleted.name, deleted.in_trash, deleted.parameters) == ("Scratchpad (restored)", False, {"tp-size": [1, 2]})
    assert ParameterPreset.objects.get(name="Scratchpad").parameters == {"tp-size": [8]}
