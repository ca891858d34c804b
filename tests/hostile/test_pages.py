"""Every page that takes a POST, sent hostile input in every field of its form and in the ids of
its URL. Each answer is the form again with the error shown (200 or 422, as the page answers a
refused form), a redirect where the input is fine there, or a 4xx; never a 5xx, and the server
log shows no traceback.

The pages that take a POST are found by asking every URL of the site (outside the API and the
admin) with a POST: a new one fails ``test_every_page_that_takes_a_post_is_in_the_suite`` until
it is added to ``FORMS``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import ApiToken
from tests.hostile.cases import HOSTILE, Hostile, dotted, has, spliced
from tests.tasks.pages.helpers import form_data

pytestmark = pytest.mark.django_db

JSON, TEXT, LENIENT = "json", "text", "lenient"  # a JSON textarea, a text input, a selector's field


@dataclass(frozen=True)
class Form:
    """A page's form: its URL's arguments (the user's own objects by key), what a valid post sends,
    and the kind of each field the suite fills with hostile input."""

    args: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


PRESET_FORM = {"name": "Hostile", "description": "", "category": "custom", "runtime": "sglang",
               "parameters": '{"tp-size": [1, 2]}', "metadata": "{}", "change_note": ""}  # fmt: skip
PRESET_FIELDS = {"name": TEXT, "description": TEXT, "category": TEXT, "runtime": TEXT, "parameters": JSON,
                 "metadata": JSON, "change_note": TEXT}  # fmt: skip
TASK_FORM = form_data(name="Hostile sweep")
TASK_FIELDS = {
    **{name: TEXT for name in TASK_FORM if name not in ("selector_present", "preset_search", "merge_strategy")},
    "parameters": JSON,
    **{name: LENIENT for name in ("presets", "merge_strategy", "preset_search", "action", "use_presets")},
    # A checkbox counts any value posted as ticked: there is no text to refuse.
    **{name: LENIENT for name in ("skip_after_oom", "baseline", "early_stop")},
}
# Places in an imported file (the import page's one field).
DOCUMENT = {
    "version": "1.0",
    "preset": {
        "name": "Imported",
        "description": "",
        "parameters": {"tp-size": [1]},
        "metadata": {},
        "history": [
            {
                "version": 1,
                "created_by": "ada",
                "created_at": "2025-01-31T12:00:00Z",
                "content": {"name": "Imported", "parameters": {"tp-size": [1]}},
            }
        ],
    },
}
DOCUMENT_PLACES = {
    ("version",): "scalar",
    ("presets",): "array",
    ("preset", "name"): "scalar",
    ("preset", "description"): "scalar",
    ("preset", "parameters"): "object",
    ("preset", "metadata"): "object",
    ("preset", "history"): "array",
    ("preset", "history", 0, "version"): "scalar",
    ("preset", "history", 0, "created_by"): "scalar",
    ("preset", "history", 0, "created_at"): "scalar",
    ("preset", "history", 0, "content", "parameters"): "object",
}

FORMS: dict[str, Form] = {
    "login": Form(data={"username": "ada", "password": "wrong"}, fields={"username": TEXT, "password": TEXT}),
    "logout": Form(),
    "account": Form(data={"name": "CI"}, fields={"name": TEXT}),
    "revoke-token": Form(args=("token",)),
    "presets:create": Form(data=PRESET_FORM, fields=PRESET_FIELDS),
    "presets:edit": Form(args=("preset",), data={**PRESET_FORM, "name": "Mine"}, fields=PRESET_FIELDS),
    "presets:preview": Form(
        data={"parameters": '{"tp-size": [1]}', "runtime": "sglang"}, fields={"parameters": JSON, "runtime": LENIENT}
    ),
    "presets:import": Form(data={"on_conflict": "rename"}, fields={"on_conflict": TEXT, "file": "file"}),
    "presets:duplicate": Form(args=("preset",)),
    "presets:delete": Form(args=("preset",)),
    "presets:restore-version": Form(args=("preset", "1")),
    "presets:untrash": Form(args=("trashed",), data={"name": "Back again"}, fields={"name": TEXT}),
    "tasks:new": Form(data=TASK_FORM, fields=TASK_FIELDS),
    "tasks:edit": Form(args=("task",), data={**TASK_FORM, "name": "Sweep"}, fields=TASK_FIELDS),
    "tasks:duplicate": Form(args=("task",)),
    "tasks:delete": Form(args=("task",)),
    "tasks:save-grid": Form(args=("task",)),
    "tasks:run-action": Form(args=("task", "start")),
    "tasks:save-experiment": Form(args=("task", "1")),
}

# URLs that answer a POST without reading it, and why.
NOT_FORMS = {"favicon": "a RedirectView: it redirects to the icon whatever the method"}

# What a URL's arguments are when the site's URLs are asked whether they take a POST.
PROBE = {"pk": 999_999, "version": 1, "number": 1, "action": "start", "kind": "csv", "runtime": "sglang"}


def site_urls(resolver: URLResolver | None = None, namespace: str = "", route: str = "") -> Iterator[tuple[str, str]]:
    """Every page's URL name and a URL of it, outside the API and the admin."""
    for entry in (resolver or get_resolver()).url_patterns:
        text = route + str(entry.pattern)
        if text.startswith(("api/", "admin/")):
            continue
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from site_urls(entry, inner, text)
        elif isinstance(entry, URLPattern) and entry.name:
            name = namespace + entry.name
            yield name, reverse(name, kwargs={key: PROBE[key] for key in entry.pattern.regex.groupindex})


def test_every_page_that_takes_a_post_is_in_the_suite(user):
    taking_posts = set()
    for name, url in site_urls():
        client = Client()
        client.force_login(user)
        if client.post(url).status_code != 405:
            taking_posts.add(name)
    assert taking_posts == set(FORMS) | set(NOT_FORMS)


@pytest.fixture
def objects(mine, trashed, task, user) -> dict[str, str]:
    token = ApiToken.objects.create_token(user=user, name="Old")[0]
    return {"preset": str(mine.pk), "trashed": str(trashed.pk), "task": str(task.pk), "token": str(token.pk)}


SENTINEL = "7777777"


def url(name: str, objects: dict[str, str], at: int | None = None, hostile: str = "") -> str:
    """The form's URL for the user's own objects; with ``at``, that argument replaced by ``hostile``,
    as text that may not even match the route."""
    args = [objects.get(arg, arg) for arg in FORMS[name].args]
    if at is None:
        return reverse(name, args=args)
    args[at] = SENTINEL
    return reverse(name, args=args).replace(SENTINEL, hostile, 1)


REPEATED = object()  # a field sent 100,000 times


def encoded(data: dict[str, Any]) -> str:
    """A form body as a browser would send it; a lone surrogate becomes the bytes UTF-8 would give it
    (which are not UTF-8, and reach the view as U+FFFD)."""
    pairs = []
    for key, value in data.items():
        if value is REPEATED:
            pairs.append("&".join([f"{quote_plus(key)}=1"] * 100_000))
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs.append(f"{quote_plus(key)}={quote_plus(str(item).encode('utf-8', 'surrogatepass'))}")
    return "&".join(pairs)


def form_inputs(hostile: Hostile, kind: str) -> list[Any]:
    """What a field of ``kind`` is sent for ``hostile``: a JSON field each of its JSON forms, a text
    field its text (none for what only JSON can say: a key, a grid)."""
    if kind == JSON:
        return hostile.variants("object")
    if hostile.id == "list-100k":  # as many values as a form field can repeat
        return [REPEATED]
    return [hostile.text] if hostile.text is not None else []


def page_problems(response: Any, where: str, refused: bool) -> Iterator[str]:
    status = response.status_code
    if status >= 500:
        yield f"{where}: answered {status}"
    elif refused and 300 <= status < 400:
        yield f"{where}: taken ({status} to {response.get('Location')})"
    elif status == 422 and b'class="errorlist' not in response.content:
        yield f"{where}: 422 without an error shown"
    elif refused and status == 200 and b'class="errorlist' not in response.content:
        yield f"{where}: 200 without an error shown"


def refuses(hostile: Hostile, kind: str) -> bool:
    """Whether a field of ``kind`` must refuse ``hostile``: a JSON field what no grid or metadata
    may hold; any text field a NUL (no database column stores one)."""
    if kind == JSON:
        return hostile.refused
    return kind == TEXT and hostile.id == "nul"


def posted_file(client: Client, path: str, data: dict[str, Any], document: str):
    upload = SimpleUploadedFile("hostile.json", document.encode(), content_type="application/json")
    return client.post(path, {**data, "file": upload})


def params() -> list[Any]:
    return [
        pytest.param(
            name,
            hostile,
            id=f"{name}-{hostile.id}",
        )
        for name, form in FORMS.items()
        if form.fields
        for hostile in HOSTILE
    ]


@pytest.mark.parametrize(("name", "hostile"), params())
def test_hostile_input_in_every_form_field_is_an_error_on_the_form(client, user, objects, server_log, name, hostile):
    form = FORMS[name]
    path = url(name, objects)
    signed_in = client
    if name != "login":  # the login page sends the signed-in home
        client.force_login(user)
    problems: list[str] = []
    for field_name, kind in form.fields.items():
        if kind == "file":
            for where, place_kind in DOCUMENT_PLACES.items():
                if not has(DOCUMENT, where):
                    continue
                for fragment in hostile.variants(place_kind):
                    fine = where[-1] == "metadata" and hostile.id == "grid-10e21"
                    response = posted_file(signed_in, path, form.data, spliced(DOCUMENT, where, fragment))
                    problems += page_problems(response, f"file {dotted(where)}", hostile.refused and not fine)
            continue
        fine = field_name == "metadata" and hostile.id == "grid-10e21"  # any small object is metadata
        for value in form_inputs(hostile, kind):
            data = {**form.data, field_name: value}
            if name == "presets:import":  # multipart: a lone surrogate arrives as U+FFFD
                text = {key: ["1"] * 100_000 if item is REPEATED else
                        str(item).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                        for key, item in data.items()}  # fmt: skip
                response = posted_file(signed_in, path, text, json.dumps(DOCUMENT))
            else:
                response = signed_in.post(path, encoded(data), content_type="application/x-www-form-urlencoded")
            problems += page_problems(response, field_name, refuses(hostile, kind) and not fine)
    assert not problems, "\n".join(problems)


IN_URLS = {"id-2e63": str(2**63), "id-1e30": str(10**30), "id-minus-1": "-1", "number-1e999": "1e999",
           "surrogate-d800": "%ED%A0%80", "nul": "%00"}  # fmt: skip


@pytest.mark.parametrize("name", [name for name, form in FORMS.items() if form.args])
@pytest.mark.parametrize("hostile", [hostile for hostile in HOSTILE if hostile.id in IN_URLS], ids=lambda h: h.id)
def test_hostile_ids_in_a_forms_url_answer_404(signed_in, objects, server_log, name, hostile):
    form = FORMS[name]
    for at, arg in enumerate(form.args):
        if not arg.isdigit() and arg not in objects:
            continue  # a word of the route (an action): no id
        path = url(name, objects, at, IN_URLS[hostile.id])
        response = signed_in.post(path, encoded(form.data), content_type="application/x-www-form-urlencoded")
        assert response.status_code == 404, path


def test_a_form_of_more_fields_than_django_reads_is_refused_without_a_server_error(signed_in, server_log):
    response = signed_in.post("/tasks/new/", encoded({**TASK_FORM, "presets": REPEATED}),
                              content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/tasks/new/", "/tasks/preview/"])
@pytest.mark.parametrize("field", ["runtime", "merge_strategy", "preset_search", "gpus"])
def test_a_nul_in_the_preset_selectors_query_is_left_out(signed_in, server_log, path, field):
    response = signed_in.get(f"{path}?presets=1&{field}=a%00b")

    assert response.status_code == 200
    assert "Text with a NUL character was left out." in response.content.decode()
