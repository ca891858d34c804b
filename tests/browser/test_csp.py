"""Every page under the strict Content-Security-Policy, in headless Chromium: walked as a logged-in
superuser with data on every page (presets, a preset with two versions, a trashed preset, a
finished task with its plot), each page answering with the policy and reporting no violation,
and htmx still working with no eval and no injected style."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect

from tasks.models import Experiment, Task
from tasks.states import ExperimentStatus, TaskStatus
from tests.factories import make_preset, make_task

if TYPE_CHECKING:
    from tests.browser.conftest import ConsoleErrors

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-root-123"
STRICT_DIRECTIVES = [
    "default-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
    "form-action 'self'",
]
# Runs before any page script; a CSP violation fires this event on the document (and Chromium
# also logs it as a console error, which the console_errors fixture fails on).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__cspViolations")


def visit(page: Page, path: str, *, status: int = 200, directives: list[str] = STRICT_DIRECTIVES) -> None:
    """Open ``path``; its document must carry the strict policy, and every inline <script> on it the
    policy's nonce (a <script src> needs none: it is a file from this site)."""
    response = page.goto(path)
    assert response is not None
    assert response.status == status, path
    policy = response.headers.get("content-security-policy", "")
    for directive in directives:
        assert directive in policy.split("; "), (path, directive, policy)
    # The nonce is only in the header when the page used it (Django's LazyNonce).
    script_src = re.search(r"(?:^|; )script-src 'self'(?: 'nonce-([^']+)')?(?:;|$)", policy)
    assert script_src, (path, policy)
    assert "unsafe" not in policy
    page.wait_for_load_state("load")
    for script in page.locator("script:not([type='application/json'])").all():
        # Chromium empties the nonce attribute once checked; the property keeps it.
        nonce = script.evaluate("s => s.nonce")
        if script.get_attribute("src") is None:
            assert nonce == script_src.group(1), (path, script.inner_html()[:80])
        elif nonce:
            assert nonce == script_src.group(1), (path, script.get_attribute("src"))


def make_data(user: Any) -> dict[str, Any]:
    """A page's worth of everything: two presets, one of them edited once, one trashed, and a
    finished task whose two measured experiments draw the results plot."""
    sweep = make_preset(name="Sweep", runtime="sglang", parameters={"tp-size": [1, 2]}, created_by=user)
    sweep.parameters = {"tp-size": [1, 2, 4]}
    sweep.save(by=user, note="more GPUs")
    make_preset(name="Memory", runtime="sglang", parameters={"mem-fraction-static": [0.8, 0.9]}, created_by=user)
    make_preset(name="Old sweep", runtime="sglang", created_by=user).trash(by=user)

    task = make_task(name="Llama sweep", parameters={"tp-size": [1, 2]}, gpus=2, created_by=user)
    earlier = timezone.now() - timedelta(hours=1)
    for number, (throughput, latency) in enumerate([(900.0, 3.2), (1400.0, 4.1)], start=1):
        level = {"concurrency": 32, "ttft_ms": {"p90": 120.0}, "tpot_ms": {"p90": 15.0}, "e2e_s": {"p99": 4.5}}
        Experiment.objects.create(
            task=task,
            number=number,
            status=ExperimentStatus.SUCCEEDED,
            parameters={"tp-size": number},
            command=f"python -m sglang.launch_server --tp-size {number}",
            levels=[{**level, "success_rate": 1.0}],
            score=throughput,
            throughput=throughput,
            latency=latency,
            scored_level=32,
            started_at=earlier,
            finished_at=earlier + timedelta(minutes=number),
        )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.COMPLETED, started_at=earlier, finished_at=timezone.now())
    return {"sweep": sweep, "task": task}


def test_every_page_holds_under_the_strict_policy(page: Page, console_errors: ConsoleErrors) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    user = get_user_model().objects.create_superuser("root", password=PASSWORD)
    data = make_data(user)
    sweep, task = data["sweep"], data["task"]

    # Logged out: the login page, the admin's and a 404.
    for path in ["/login/", "/admin/login/"]:
        visit(page, path)
        assert violations(page) == [], path
    visit(page, "/no-such-page/", status=404)
    assert violations(page) == []
    console_errors.allow("the server responded with a status of 404")

    page.goto("/login/?next=/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()

    experiment = Experiment.objects.get(task=task, number=1)
    pages = [
        "/",
        "/presets/",
        f"/presets/{sweep.pk}/",
        "/presets/new/",
        f"/presets/{sweep.pk}/edit/",
        f"/presets/{sweep.pk}/delete/",
        "/presets/import/",
        f"/presets/{sweep.pk}/history/",
        f"/presets/{sweep.pk}/history/?from=1&to=2",
        f"/presets/{sweep.pk}/history/1/",
        "/presets/trash/",
        "/tasks/",
        "/tasks/new/",
        f"/tasks/{task.pk}/",
        f"/tasks/{task.pk}/results/",
        f"/tasks/{task.pk}/edit/",
        f"/tasks/{task.pk}/restart/",
        f"/tasks/{task.pk}/delete/",
        "/engines/",
        "/account/",
        "/api/presets/",
        f"/api/presets/{sweep.pk}/",
        f"/api/tasks/{task.pk}/",
        "/admin/",
        "/admin/presets/parameterpreset/",
        f"/admin/presets/parameterpreset/{sweep.pk}/change/",
        f"/admin/presets/parameterpreset/{sweep.pk}/delete/",
        "/admin/presets/parameterpreset/add/",
        "/admin/tasks/task/",
        f"/admin/tasks/task/{task.pk}/change/",
        "/admin/tasks/experiment/",
        f"/admin/tasks/experiment/{experiment.pk}/change/",
        f"/admin/auth/user/{user.pk}/change/",
    ]
    for path in pages:
        visit(page, path)
        assert violations(page) == [], path

    # The results plot is there, drawn with presentation attributes only.
    visit(page, f"/tasks/{task.pk}/results/")
    expect(page.locator("figure.plot svg")).to_be_visible()
    assert page.locator("figure.plot [style], figure.plot style, figure.plot script").count() == 0

    # DRF's browsable API: its jQuery and Bootstrap open the filters dialog.
    visit(page, "/api/presets/")
    page.get_by_role("button", name="Filters").click()
    expect(page.locator("#filtersModal")).to_be_visible()
    assert violations(page) == []

    # Swagger UI: its start-up script is a file now; the operations render and one opens. Its icons
    # are data: images, allowed on this page alone.
    docs_directives = [d for d in STRICT_DIRECTIVES if not d.startswith("img-src")] + ["img-src 'self' data:"]
    visit(page, "/api/docs/", directives=docs_directives)
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("autotuner API")
    operation = page.locator(".opblock-summary").first
    operation.click()
    expect(page.locator(".opblock.is-open").first).to_be_visible()
    page.get_by_role("button", name="Try it out").first.click()
    expect(page.get_by_role("button", name="Execute").first).to_be_visible()
    assert violations(page) == []


def test_htmx_works_with_no_eval_and_no_injected_style(page: Page) -> None:
    page.add_init_script(RECORD_VIOLATIONS)
    user = get_user_model().objects.create_superuser("root", password=PASSWORD)
    make_data(user)
    page.goto("/login/?next=/presets/")
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", name="Presets", exact=True)).to_be_visible()

    assert page.evaluate("[htmx.config.allowEval, htmx.config.includeIndicatorStyles]") == [False, False]
    assert page.locator("style").count() == 0

    # Filtering the list swaps the table in through htmx (no navigation: the URL is pushed). The old
    # table carries a style attribute, as a script or a resized element would: htmx must not copy it
    # onto the new table with setAttribute, which the policy blocks.
    page.locator("#preset-table").evaluate("table => { table.style.opacity = '0.99' }")
    rows = page.locator("#preset-table tbody tr")
    expect(rows.filter(has_text="Memory")).to_have_count(1)
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        page.fill("#id_search", "Sweep")
    expect(rows.filter(has_text="Memory")).to_have_count(0)
    expect(rows.filter(has_text="Sweep")).to_have_count(1)

    # The live preview of a preset's parameters, another htmx swap.
    page.goto("/presets/new/")
    page.fill("#id_parameters", '{"tp-size": [1, 2, 4]}')
    expect(page.locator("#parameters-preview")).to_contain_text("Valid: 3 combinations")
    assert page.locator("style").count() == 0
    assert violations(page) == []
