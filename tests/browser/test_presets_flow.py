"""The Presets pages in headless Chromium: what a user does, with htmx doing its part."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Locator, Page, Request, expect

from presets.models import ParameterPreset
from presets.seeding import seed_system_presets
from tests.factories import make_preset, system_preset_names, system_presets

if TYPE_CHECKING:
    from tests.browser.conftest import ConsoleErrors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-ada-123"
INVALID_FORM = "the server responded with a status of 422"  # what Chromium logs for a form sent back


def counted(names: list[str]) -> str:
    """How the list's heading counts ``names``: "1 preset", "4 presets"."""
    return "1 preset" if len(names) == 1 else f"{len(names)} presets"


# The seeded system presets (SGLang and vLLM), and those of two categories.
ALL_SYSTEM = counted(system_preset_names())
PERFORMANCE = counted([preset["name"] for preset in system_presets() if preset["category"] == "performance"])
MEMORY = counted([preset["name"] for preset in system_presets() if preset["category"] == "memory"])


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
    """The list's row for the preset called ``name``."""
    return page.locator("#preset-table tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_logging_in_through_the_form_leads_to_the_page_asked_for(page: Page) -> None:
    get_user_model().objects.create_user("ada", password=PASSWORD)
    page.goto("/presets/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/presets/$"))

    page.fill("#id_username", "ada")
    page.fill("#id_password", "not the password")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("Please enter a correct username and password")

    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/presets/$"))
    expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="ada Account · API tokens", exact=True)).to_be_visible()  # the header


def test_creating_a_preset_with_the_live_check_catching_a_mistake(page: Page) -> None:
    user = log_in(page)
    page.get_by_role("link", name="Create preset").click()
    expect(page).to_have_url(re.compile(r"/presets/new/$"))
    preview = page.locator("#parameters-preview")

    page.fill("#id_parameters", '{"tp-size": [1, 2')
    expect(preview).to_contain_text("Not valid JSON")
    page.fill("#id_parameters", '{"tp-size": [1, null]}')
    expect(preview).to_contain_text("tp-size[1]: null is not allowed")
    page.fill("#id_parameters", '{"tp-size": [1, 2]}')
    expect(preview).to_contain_text("Valid: 2 combinations")
    expect(preview).not_to_contain_text("not allowed")

    page.fill("#id_name", "Wide TP")
    page.fill("#id_category", "performance")
    page.get_by_role("button", name="Create", exact=True).click()

    expect(page).to_have_url(re.compile(r"/presets/\d+/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Wide TP")
    expect(page.locator("#messages")).to_contain_text("Created preset “Wide TP”.")
    preset = ParameterPreset.objects.get(name="Wide TP")
    assert (preset.parameters, preset.category, preset.created_by) == ({"tp-size": [1, 2]}, "performance", user)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Presets").click()
    expect(row(page, "Wide TP")).to_contain_text("performance")
    expect(row(page, "Wide TP").locator(".summary")).to_have_text("tp-size 1, 2")


def test_filtering_and_searching_update_the_table_in_place_and_back_undoes_them(page: Page) -> None:
    seed_system_presets()
    log_in(page)
    table = page.locator("#preset-table")
    expect(table).to_contain_text(ALL_SYSTEM)
    page.evaluate("() => { window.stillTheSamePage = true }")  # gone if the browser loads a page
    searches: list[str] = []
    page.on("request", lambda request: searches.append(request.url) if "search=l" in request.url else None)

    page.select_option("#id_category", "performance")
    expect(table).to_contain_text(PERFORMANCE)
    expect(row(page, "High Throughput")).to_be_visible()
    expect(row(page, "Memory Efficient")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]category=performance(&|$)"))

    page.locator("#id_search").press_sequentially("latency", delay=30)
    expect(table).to_contain_text("2 presets")
    expect(row(page, "Low Latency")).to_be_visible()
    expect(row(page, "Low Latency (vLLM)")).to_be_visible()
    expect(row(page, "High Throughput")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"[?&]search=latency(&|$)"))
    assert query_of(page.url)["category"] == ["performance"]
    # The search waits for a pause in the typing: not one request per letter.
    assert 1 <= len(searches) < len("latency"), searches

    page.go_back()
    expect(row(page, "High Throughput")).to_be_visible()
    expect(table).to_contain_text(PERFORMANCE)
    assert query_of(page.url)["category"] == ["performance"]
    assert query_of(page.url).get("search", [""]) == [""]

    page.go_back()
    expect(table).to_contain_text(ALL_SYSTEM)
    expect(page).to_have_url(re.compile(r"/presets/$"))
    assert page.evaluate("() => window.stillTheSamePage") is True


def test_back_also_restores_the_filter_controls(page: Page) -> None:
    seed_system_presets()
    log_in(page)
    table = page.locator("#preset-table")
    page.select_option("#id_category", "performance")
    expect(table).to_contain_text(PERFORMANCE)
    page.select_option("#id_category", "memory")
    expect(table).to_contain_text(MEMORY)

    page.go_back()
    expect(table).to_contain_text(PERFORMANCE)
    expect(page.locator("#id_category")).to_have_value("performance", timeout=1_000)
    page.locator("#id_search").press_sequentially("balanced", delay=30)
    expect(table).to_contain_text("No preset matches these filters.")
    assert query_of(page.url)["category"] == ["performance"]


def test_leaving_the_search_box_adds_no_history_entry(page: Page) -> None:
    seed_system_presets()
    log_in(page)
    filters = page.locator("#preset-filters")
    page.locator("#id_search").press_sequentially("latency", delay=30)
    expect(page.locator("#preset-table")).to_contain_text("2 presets")  # Low Latency, for SGLang and vLLM
    expect(filters).not_to_have_class(re.compile(r"htmx-request"))
    entries = page.evaluate("() => history.length")

    page.get_by_role("heading", name="Presets", exact=True).click()  # focus leaves the search box
    expect(filters).not_to_have_class(re.compile(r"htmx-request"))  # a request it started has finished
    assert page.evaluate("() => history.length") == entries

    page.go_back()
    expect(page.locator("#preset-table")).to_contain_text(ALL_SYSTEM, timeout=1_000)


def test_editing_a_preset_shows_the_new_values_on_its_page(page: Page) -> None:
    user = log_in(page)
    preset = make_preset(name="Tunable", parameters={"tp-size": [1, 2]}, created_by=user)
    page.goto(preset.get_absolute_url())

    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit “Tunable”")
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 2 combinations")
    page.fill("#id_parameters", '{"tp-size": [4, 8], "chunked-prefill-size": [4096]}')
    expect(page.locator("#parameters-preview")).to_contain_text("--chunked-prefill-size")
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 2 combinations")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/presets/{preset.pk}/$"))
    expect(page.locator("#messages")).to_contain_text("Saved preset “Tunable”.")
    grid = page.locator(".grid-table tbody tr")
    expect(grid.filter(has_text="--tp-size").locator(".value")).to_have_text(["4", "8"])
    expect(grid.filter(has_text="--chunked-prefill-size").locator(".value")).to_have_text(["4096"])
    preset.refresh_from_db()
    assert preset.parameters == {"tp-size": [4, 8], "chunked-prefill-size": [4096]}


def test_duplicating_a_system_preset_gives_an_editable_copy(page: Page) -> None:
    seed_system_presets()
    user = log_in(page)
    expect(row(page, "High Throughput").get_by_role("link", name="Edit")).to_have_count(0)

    row(page, "High Throughput").get_by_text("Actions").click()  # the row's menu
    page.get_by_role("button", name="Duplicate High Throughput", exact=True).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("High Throughput (copy)")
    expect(page.locator("#messages")).to_contain_text("Created “High Throughput (copy)”, your own copy to edit.")
    copy = ParameterPreset.objects.get(name="High Throughput (copy)")
    original = ParameterPreset.objects.get(name="High Throughput")
    assert (copy.is_system, copy.created_by, copy.parameters) == (False, user, original.parameters)
    page.get_by_role("link", name="Edit", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit “High Throughput (copy)”")


def test_deleting_asks_first_and_dismissing_keeps_the_preset(page: Page) -> None:
    user = log_in(page)
    make_preset(name="Scratch", created_by=user)
    make_preset(name="Keeper", created_by=user)
    page.reload()
    deletes: list[Request] = []
    page.on("request", lambda request: deletes.append(request) if "/delete/" in request.url else None)

    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    row(page, "Scratch").get_by_text("Actions").click()  # the row's menu
    page.get_by_role("link", name="Delete Scratch", exact=True).click()
    assert dialogs == ["Delete the preset “Scratch”? It goes to the trash, where it can be restored for 30 days."]
    assert deletes == []
    expect(row(page, "Scratch")).to_be_visible()
    assert ParameterPreset.objects.filter(name="Scratch").exists()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("link", name="Delete Scratch", exact=True).click()
    expect(page.locator("#messages")).to_contain_text("Deleted preset “Scratch”.")
    expect(row(page, "Scratch")).to_have_count(0)
    expect(row(page, "Keeper")).to_be_visible()
    assert [request.method for request in deletes] == ["POST"]
    assert not ParameterPreset.objects.filter(name="Scratch").exists()


def test_importing_a_name_that_is_taken_fails_or_renames_as_chosen(
    page: Page, tmp_path: Path, console_errors: ConsoleErrors
) -> None:
    console_errors.allow(INVALID_FORM)  # the refused import comes back as a 422 page
    user = log_in(page)
    make_preset(name="Shared Grid", parameters={"tp-size": [1]}, created_by=user)
    upload = tmp_path / "shared-grid.json"
    document = {"version": "1.0", "preset": {"name": "Shared Grid", "parameters": {"tp-size": [2, 4]}}}
    upload.write_text(json.dumps(document))
    page.get_by_role("link", name="Import", exact=True).click()

    page.set_input_files("#id_file", upload)
    expect(page.locator("input[name=on_conflict][value=fail]")).to_be_checked()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator(".error-summary")).to_contain_text("Already taken: “Shared Grid”. Nothing was imported")
    assert list(ParameterPreset.objects.values_list("name", flat=True)) == ["Shared Grid"]

    page.set_input_files("#id_file", upload)
    page.locator("input[name=on_conflict][value=rename]").check()
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page).to_have_url(re.compile(r"/presets/$"))
    expect(page.locator("#messages")).to_contain_text("Imported 1 preset: “Shared Grid (imported)”.")
    expect(row(page, "Shared Grid (imported)")).to_be_visible()
    imported = ParameterPreset.objects.get(name="Shared Grid (imported)")
    assert (imported.parameters, imported.created_by) == ({"tp-size": [2, 4]}, user)
    assert ParameterPreset.objects.get(name="Shared Grid").parameters == {"tp-size": [1]}


def test_exporting_downloads_the_preset_as_a_json_document(page: Page) -> None:
    user = log_in(page)
    preset = make_preset(
        name="Export Me Please",
        description="For the file",
        category="custom",
        runtime="vllm",
        parameters={"tp-size": [1, 2], "enable-mixed-chunk": [True]},
        metadata={"tags": ["export"]},
        created_by=user,
    )
    page.goto(preset.get_absolute_url())

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export", exact=True).click()

    download = download_info.value
    assert download.suggested_filename == "preset-export-me-please.json"
    assert json.loads(Path(download.path()).read_text()) == {
        "version": "1.0",
        "preset": {
            "name": "Export Me Please",
            "description": "For the file",
            "category": "custom",
            "runtime": "vllm",
            "parameters": {"tp-size": [1, 2], "enable-mixed-chunk": [True]},
            "metadata": {"tags": ["export"]},
        },
    }


def test_screenshots_of_the_list_and_the_edit_page_are_kept(page: Page, artifacts_dir: Path) -> None:
    seed_system_presets()
    user = log_in(page)
    preset = make_preset(name="Screenshot Subject", parameters={"tp-size": [1, 2, 4]}, created_by=user)
    list_png, edit_png = artifacts_dir / "presets-list.png", artifacts_dir / "preset-edit.png"
    started = time.time() - 1  # written by this run, not left over from an earlier one

    page.reload()
    expect(row(page, "Screenshot Subject")).to_be_visible()
    page.screenshot(path=list_png, full_page=True)
    page.goto(f"/presets/{preset.pk}/edit/")
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 3 combinations")
    page.screenshot(path=edit_png, full_page=True)

    for path in (list_png, edit_png):
        assert path.stat().st_size > 0
        assert path.stat().st_mtime >= started
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_an_expired_session_sends_the_live_check_to_the_login_page(page: Page) -> None:
    log_in(page)
    page.goto("/presets/new/")
    page.context.clear_cookies(name="sessionid")

    with page.expect_response(lambda response: urlsplit(response.url).path == "/presets/preview/"):
        page.fill("#id_parameters", '{"tp-size": [1]}')
    expect(page.locator("#id_parameters.htmx-request")).to_have_count(0)

    expect(page).to_have_url(re.compile(r"/login/"), timeout=2_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
