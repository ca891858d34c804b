"""The hostile-input suite's cases (tests/hostile) sent to the app under gunicorn, timed.

    .venv/bin/python bench/hostile_bench.py [--top 3]

Builds a fresh SQLite database in a temporary folder (the system presets, a user with a preset,
a trashed preset, a task and a token), starts gunicorn (2 workers, as bin/serve runs it) on a free
loopback port with bench/settings.py (no API throttling), and sends one at a time every request
the suite sends: every API operation of the schema with each hostile input in each body field,
path parameter and query parameter, and every page form with it in each field. For each input
it prints how many requests it made, the slowest answers with their status, and whether any
answered 5xx; then how many tracebacks and WORKER TIMEOUT lines gunicorn's log holds. The target:
every answer well under 1 s, no 5xx, no traceback, no timeout. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_bench import free_port, setup_django, start_gunicorn, stop, wait_until_up  # noqa: E402

TARGET_SECONDS = 1.0
CSRF = "0123456789abcdef0123456789abcdef"  # an unmasked CSRF secret: cookie and header alike


def build_database() -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import ApiToken
    from tests.factories import make_preset, make_task

    call_command("migrate", verbosity=0)
    call_command("seed_presets", verbosity=0)
    user = get_user_model().objects.create_user("ada", password="pw-ada-123")
    mine = make_preset(name="Mine", parameters={"tp-size": [1, 2]}, created_by=user)
    mine.description = "Changed"
    mine.save(by=user, note="second")
    trashed = make_preset(name="Thrown away", created_by=user)
    trashed.trash(by=user)
    task = make_task(name="Sweep", parameters={"tp-size": [1, 2]}, created_by=user)
    token, key = ApiToken.objects.create_token(user=user, name="bench")
    client = Client()
    client.force_login(user)
    return {
        "objects": {"preset": mine.pk, "trashed": trashed.pk, "task": task.pk, "token": token.pk},
        "token": key,
        "session": client.cookies["sessionid"].value,
    }


def requests(data: dict[str, Any]):
    """(input, where, method, path, body, headers) for every request the suite sends."""
    from tests.hostile import test_api as api
    from tests.hostile import test_pages as pages
    from tests.hostile.cases import HOSTILE, dotted, has, spliced

    objects = data["objects"]
    token = {"Authorization": f"Token {data['token']}"}
    as_json = {**token, "Content-Type": "application/json"}
    for operation in api.OPERATIONS:
        method = operation.method.upper()
        for hostile in HOSTILE:
            if operation.fields:
                base = api.body(operation, objects)
                for where, kind in operation.fields:
                    if has(base, where):
                        for fragment in hostile.variants(kind):
                            body = spliced(base, where, fragment)
                            yield hostile.id, f"{method} {operation.path} {dotted(where)}", method, \
                                api.url(operation, objects), body, as_json  # fmt: skip
            value = api.in_url(hostile)
            for name in operation.path_parameters:
                if value is not None:
                    yield hostile.id, f"{method} {operation.path} {{{name}}}", method, \
                        api.url(operation, objects, **{name: value}), None, token  # fmt: skip
            for name in operation.query_parameters:
                if value is None and hostile.id != "list-100k":
                    continue
                # gunicorn reads a request line of at most 4 KiB: a flood of one-letter parameters fits.
                query = f"{name}={value}" if value is not None else f"{name}=1&" + "&".join(["a"] * 1000)
                yield hostile.id, f"{method} {operation.path} ?{name}", method, \
                    f"{api.url(operation, objects)}?{query}", None, token  # fmt: skip

    # What tests/hostile/test_bounded_work.py caps, at full size: 200 flags of 1,000 refused values
    # (200,000 problems), a bundle of 15,000 presets and a history of 100,000 versions.
    refused = json.dumps({f"flag-{number}": [None] * 1000 for number in range(200)})
    bundle = {
        "version": "1.0",
        "presets": [{"name": f"Bulk {n}", "parameters": {"tp-size": [1]}} for n in range(15_000)],
    }
    history = {"version": "1.0", "preset": {"name": "Long", "parameters": {"tp-size": [1]}, "history": [1] * 100_000}}
    for label, path, body in [
        ("POST /api/presets/ 200,000 problems", "/api/presets/", f'{{"name": "Many", "parameters": {refused}}}'),
        ("POST /api/tasks/ 200,000 problems", "/api/tasks/",
         f'{{"name": "Many", "model": "m", "runtime": "sglang", "parameters": {refused}}}'),
        ("POST /api/presets/import 15,000 presets", "/api/presets/import", json.dumps(bundle)),
        ("POST /api/presets/import 100,000 versions", "/api/presets/import", json.dumps(history)),
    ]:  # fmt: skip
        yield "bounded-work", label, "POST", path, body, as_json
    names = {key: str(pk) for key, pk in objects.items()}
    browser = {"Cookie": f"sessionid={data['session']}; csrftoken={CSRF}", "X-CSRFToken": CSRF,
               "Content-Type": "application/x-www-form-urlencoded"}  # fmt: skip
    for name in ("presets:preview", "presets:create", "tasks:new"):
        data = {**pages.FORMS[name].data, "parameters": refused}
        yield (
            "bounded-work",
            f"POST {name} 200,000 problems",
            "POST",
            pages.url(name, names),
            pages.encoded(data),
            browser,
        )
    for name, form in pages.FORMS.items():
        if name in ("login", "logout"):  # the session stays signed in
            continue
        path = pages.url(name, names)
        for hostile in HOSTILE:
            for field, kind in form.fields.items():
                if kind == "file":
                    for where, place_kind in pages.DOCUMENT_PLACES.items():
                        if has(pages.DOCUMENT, where):
                            for fragment in hostile.variants(place_kind):
                                document = spliced(pages.DOCUMENT, where, fragment)
                                payload, content_type = multipart(form.data, document)
                                yield hostile.id, f"POST {name} file {dotted(where)}", "POST", path, payload, \
                                    {**browser, "Content-Type": content_type}  # fmt: skip
                    continue
                for value in pages.form_inputs(hostile, kind):
                    if name == "presets:import":
                        continue  # its text field is sent with the file above
                    yield hostile.id, f"POST {name} {field}", "POST", path, \
                        pages.encoded({**form.data, field: value}), browser  # fmt: skip


def multipart(data: dict[str, str], document: str) -> tuple[bytes, str]:
    boundary = "hostile-bench-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n' for key, value in
             data.items()]  # fmt: skip
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="hostile.json"\r\n'
        f"Content-Type: application/json\r\n\r\n{document}\r\n--{boundary}--\r\n"
    )
    return "".join(parts).encode(), f"multipart/form-data; boundary={boundary}"


def send(base: str, method: str, path: str, body: str | bytes | None, headers: dict[str, str]) -> tuple[int, float]:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, time.perf_counter() - started


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a form's redirect is its answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=3, help="the slowest answers shown per input")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="autotuner-hostile-"))
    setup_django(workdir)
    print(f"Building a database in {workdir} …", flush=True)
    data = build_database()
    urllib.request.install_opener(urllib.request.build_opener(NoRedirects))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AUTOTUNER_DATA_DIR": str(workdir),
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
    }
    log_path = workdir / "server.log"
    server = start_gunicorn(port, env, log_path.open("w"))
    answers: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    try:
        wait_until_up(base)
        for hostile_id, where, method, path, body, headers in requests(data):
            status, seconds = send(base, method, path, body, headers)
            answers[hostile_id].append((seconds, status, where))
    finally:
        stop(server)

    print(f"\n{'input':<20} {'requests':>8} {'5xx':>4}  slowest answers (seconds, status, where)")
    slowest = 0.0
    for hostile_id, timed in answers.items():
        timed.sort(reverse=True)
        slowest = max(slowest, timed[0][0])
        errors = sum(1 for _, status, _ in timed if status >= 500)
        top = "; ".join(f"{seconds:.3f} {status} {where}" for seconds, status, where in timed[: args.top])
        print(f"{hostile_id:<20} {len(timed):>8} {errors:>4}  {top}")
    log = log_path.read_text(errors="replace")
    total = sum(len(timed) for timed in answers.values())
    failures = sum(1 for timed in answers.values() for _, status, _ in timed if status >= 500)
    print(
        f"\n{total:,} requests; slowest {slowest:.3f} s (target under {TARGET_SECONDS:.0f} s: "
        f"{'PASS' if slowest < TARGET_SECONDS else 'MISS'}); 5xx: {failures}; "
        f"tracebacks in the server log: {log.count('Traceback')}; WORKER TIMEOUT: {log.count('WORKER TIMEOUT')}"
    )
    print(f"Server log: {log_path}")


if __name__ == "__main__":
    main()
