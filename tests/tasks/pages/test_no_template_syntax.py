"""Every page and htmx fragment, rendered with data in each state it shows, prints no template
syntax: a template mistake (a multi-line {# #}, an unclosed tag) shows as text, not as an error."""

from __future__ import annotations

import re

import pytest
from django.urls import get_resolver

from presets.models import ParameterPreset
from tasks.models import Task
from tests.factories import make_preset

pytestmark = pytest.mark.django_db

TEMPLATE_SYNTAX = ("{#", "#}", "{%", "%}", "{{")  # a closing "}}" is also JSON (a flag's default)
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def edited(user) -> ParameterPreset:
    """A preset with a second version, so its history and diff have something to show."""
    preset = make_preset(name="Edited", created_by=user, runtime="sglang", parameters={"tp-size": [1]})
    preset.parameters = {"tp-size": [1, 2], "schedule-policy": ["lpm"]}
    preset.save(by=user, note="Wider")
    return preset


def pages(edited: ParameterPreset, trashed: ParameterPreset, tasks: dict[str, Task]) -> dict[str, tuple[str, dict]]:
    """(URL, extra request headers) of every page and fragment, by a name that says which state."""
    found = {
        "dashboard": ("/", {}),
        "login": ("/login/?next=/tasks/", {}),
        "engines": ("/engines/", {}),
        "engines-search": ("/engines/?runtime=vllm&search=cache", {}),
        "engine-changes": ("/engines/vllm/changes/", {}),
        "account": ("/account/", {}),
        "presets": ("/presets/", {}),
        "presets-fragment": ("/presets/?search=E", HTMX),
        "preset-new": ("/presets/new/", {}),
        "preset-import": ("/presets/import/", {}),
        "trash": ("/presets/trash/", {}),
        "preset": (f"/presets/{edited.pk}/", {}),
        "preset-edit": (f"/presets/{edited.pk}/edit/", {}),
        "preset-delete": (f"/presets/{edited.pk}/delete/", {}),
        "preset-history": (f"/presets/{edited.pk}/history/", {}),
        "preset-version": (f"/presets/{edited.pk}/history/1/", {}),
        "tasks": ("/tasks/", {}),
        "tasks-fragment": ("/tasks/?status=draft", HTMX),
        "task-new": ("/tasks/new/", {}),
        "task-new-from-presets": (f"/tasks/new/?presets={edited.pk}", {}),
        "task-preview": (f"/tasks/preview/?presets={edited.pk}&merge_strategy=union&runtime=sglang&gpus=1", HTMX),
    }
    for state, task in tasks.items():
        found |= {
            f"task-{state}": (f"/tasks/{task.pk}/", {}),
            f"task-{state}-edit": (f"/tasks/{task.pk}/edit/", {}),
            f"task-{state}-delete": (f"/tasks/{task.pk}/delete/", {}),
            f"task-{state}-progress": (f"/tasks/{task.pk}/progress/", HTMX),
            f"task-{state}-results": (f"/tasks/{task.pk}/results/", {}),
        }
    return found


def syntax_in(html: str) -> list[str]:
    """The template syntax in the text a reader sees (tags and their attributes left out)."""
    text = re.sub(r"<[^>]*>", " ", html)
    return [syntax for syntax in TEMPLATE_SYNTAX if syntax in text]


@pytest.mark.parametrize("state", ["draft", "running", "finished"])
def test_no_page_or_fragment_prints_template_syntax(request, signed_in, edited, trashed, state):
    # One task per run: the running and finished fixtures are the draft task, moved on.
    shown = pages(edited, trashed, {state: request.getfixturevalue(state)})
    printed = {}
    for name, (url, headers) in shown.items():
        response = signed_in.get(url, **headers)
        # A locked task's edit and delete pages redirect; everything else is a page or a fragment.
        assert response.status_code in (200, 302), f"{name}: {url} answered {response.status_code}"
        if response.status_code == 200:
            printed[name] = syntax_in(response.content.decode())
    # The live check of the preset form, the one fragment answered to a POST: valid, and with findings.
    for grid in ('{"tp-size": [1, 2]}', '{"tp-szie": [1], "mem-fraction-static": [9]}'):
        response = signed_in.post("/presets/preview/", {"parameters": grid, "runtime": "sglang"}, **HTMX)
        assert response.status_code == 200
        printed[f"preset-preview {grid}"] = syntax_in(response.content.decode())

    assert {name: found for name, found in printed.items() if found} == {}


# The page URLs this test reaches on purpose; a new page fails this until it is added above.
NOT_PAGES = {
    # Downloads (JSON, CSV, a shell script), POST-only actions and redirects: no HTML to read.
    "presets:export-shown", "presets:untrash", "presets:duplicate", "presets:export",
    "presets:restore-version", "tasks:duplicate", "tasks:save-grid", "tasks:plan-json", "tasks:plan-sh",
    "tasks:run-action", "tasks:results-download", "tasks:save-experiment",
    "accounts:revoke-token",
}  # fmt: skip


def test_every_named_page_is_rendered_by_the_test_above_or_named_as_no_page():
    names = {
        f"{namespace}:{name}" if namespace else name
        for namespace, (prefix, resolver) in [("", ("", get_resolver()))]
        + [(ns, value) for ns, value in get_resolver().namespace_dict.items()]
        for name in resolver.reverse_dict
        if isinstance(name, str)
    }
    covered = {
        "dashboard", "engines:flags", "engines:changes", "accounts:account", "presets:list", "presets:create",
        "presets:import", "presets:preview", "presets:trash", "presets:detail", "presets:edit", "presets:delete",
        "presets:history", "presets:version", "tasks:list", "tasks:new", "tasks:preview", "tasks:detail",
        "tasks:edit", "tasks:delete", "tasks:progress", "tasks:results",
    }  # fmt: skip
    pages_here = {name for name in names if name.split(":")[0] in {"presets", "tasks", "engines", "accounts"}}

    assert pages_here - covered - NOT_PAGES == set()
