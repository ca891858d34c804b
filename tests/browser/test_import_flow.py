"""The import page in headless Chromium: after a refusal the chosen file need not be chosen again."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from presets.models import ParameterPreset
from tests.browser.test_presets_flow import INVALID_FORM, log_in
from tests.factories import make_preset

if TYPE_CHECKING:
    from tests.browser.conftest import ConsoleErrors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_after_a_name_clash_rename_imports_the_file_chosen_before(
    page: Page, tmp_path: Path, console_errors: ConsoleErrors
) -> None:
    console_errors.allow(INVALID_FORM)  # the refused import comes back as a 422 page
    user = log_in(page)
    make_preset(name="Shared Grid", parameters={"tp-size": [1]}, created_by=user)
    upload = tmp_path / "shared-grid.json"
    upload.write_text(json.dumps({"version": "1.0", "preset": {"name": "Shared Grid", "parameters": {"tp-size": [2]}}}))
    page.goto("/presets/import/")
    page.set_input_files("#id_file", upload)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("Already taken: “Shared Grid”.")
    expect(page.locator("#id_file_helptext")).to_contain_text("Still chosen: “shared-grid.json”")

    page.locator("input[name=on_conflict][value=rename]").check()
    page.get_by_role("button", name="Import", exact=True).click()

    expect(page).to_have_url(re.compile(r"/presets/$"))
    expect(page.locator("#messages")).to_contain_text("Imported 1 preset: “Shared Grid (imported)”.")
    assert ParameterPreset.objects.get(name="Shared Grid (imported)").parameters == {"tp-size": [2]}
