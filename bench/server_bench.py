"""The app under load: gunicorn (2 workers, as bin/serve runs it) on a fresh database, measured with wrk.

    .venv/bin/python bench/server_bench.py [--seconds 10] [--concurrency 1 16] [--worker-class sync]

Builds a database in a temporary folder (the system presets, 1,000 tasks, one of them a grid
of 10,000 combinations, and generated presets), starts gunicorn on a free loopback port with
bench/settings.py (no API throttling; a middleware puts each request's database queries in an
``X-Queries`` header), warms every endpoint up, then measures each for ``--seconds`` at each
concurrency. ``GET /healthz`` (one raw ``SELECT 1``) is the baseline: every figure is also a
ratio to the baseline at the same concurrency, since absolute numbers move with the machine.
They move within a minute too, so each endpoint is measured in slices alternating with slices
of the baseline, and its ratio is to those (``measure_paired``).

Queries per request are read at 1,000 presets, then 9,000 more are added and they are read
again: they should not grow with the table. They are read on a second server (1 worker). Then:
all 10,000 presets in one response, and healthz, the list and a merge at 64 clients (no errors
allowed). Each target prints PASS or MISS; nothing is asserted. Needs Debian's ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIRST_PRESETS, PRESETS, TASKS = 1_000, 10_000, 1_000
# 5 × 4 × 2 × 5 × 5 × 2 × 5 = 10,000 combinations, as in bench/plan_bench.py.
BIG_GRID: dict[str, list[Any]] = {
    "tp-size": [1, 2, 4, 8, 16],
    "dp-size": [1, 2, 4, 8],
    "pp-size": [1, 2],
    "mem-fraction-static": [0.7, 0.75, 0.8, 0.85, 0.9],
    "schedule-policy": ["lpm", "fcfs", "random", "dfs-weight", "lof"],
    "disable-radix-cache": [False, True],
    "chunked-prefill-size": [1024, 2048, 4096, 8192, 16384],
}
FLAGS = ["chunked-prefill-size", "max-running-requests", "max-prefill-tokens"]
ROUNDS = 5  # slices per measurement, alternating with the baseline (measure_paired)
# Presets the merges pick from: their ordered pairs give each request of a case a merge of its own.
SPREAD = 100


@dataclass
class Case:
    label: str
    path: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # Paths (or bodies) to send in turn instead of ``path`` (``body``), from a random one; wrk's two
    # threads half-way apart.
    paths: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


# --- the database --------------------------------------------------------------------------


def setup_django(data_dir: Path) -> None:
    os.environ["AUTOTUNER_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def add_presets(start: int, stop: int) -> None:
    from presets.models import ParameterPreset

    rng = random.Random(start)
    presets = []
    for number in range(start, stop):
        parameters = {
            "tp-size": sorted(rng.sample([1, 2, 4, 8], rng.randint(1, 3))),
            "mem-fraction-static": sorted(rng.sample([0.7, 0.75, 0.8, 0.85, 0.9], rng.randint(1, 3))),
            "schedule-policy": rng.sample(["fcfs", "lpm", "dfs-weight", "random"], rng.randint(1, 2)),
        }
        for flag in rng.sample(FLAGS, 2):
            parameters[flag] = [rng.choice([256, 512, 1024, 2048, 4096])]
        name = f"Generated preset {number:05d}"
        presets.append(
            ParameterPreset(
                name=name,
                name_key=name.casefold(),
                description=f"Benchmark preset number {number}",
                category=rng.choice(["memory", "performance", "general", "custom"]),
                runtime=rng.choice(["sglang", "vllm", ""]),
                parameters=parameters,
                metadata={"author": "bench", "tags": ["generated"]},
                current_version=1,
            )
        )
    ParameterPreset.objects.bulk_create(presets, batch_size=1000)


def build_database() -> dict[str, Any]:
    """Migrate, seed, add the first presets and the tasks; return what the requests need."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import ApiToken
    from presets.models import ParameterPreset
    from tasks.models import Task

    call_command("migrate", verbosity=0)
    call_command("seed_presets", verbosity=0)
    add_presets(0, FIRST_PRESETS)
    user = get_user_model().objects.create_user("bench", password="bench-password-1", is_staff=True)
    small = {"tp-size": [1, 2], "mem-fraction-static": [0.8, 0.9], "schedule-policy": ["fcfs", "lpm"]}
    Task.objects.bulk_create(
        Task(
            name=f"Bench task {number:04d}",
            name_key=f"bench task {number:04d}",
            model="meta-llama/Llama-3.1-8B-Instruct",
            runtime="sglang",
            gpus=16,
            parameters=BIG_GRID if number == 0 else small,
            created_by=user,
        )
        for number in range(TASKS)
    )
    client = Client()
    client.force_login(user)
    ids = list(
        ParameterPreset.objects.filter(is_system=False, runtime="sglang")
        .order_by("id")
        .values_list("id", flat=True)[:SPREAD]
    )
    return {
        "token": ApiToken.objects.create_token(user=user, name="bench")[1],
        "session": client.cookies["sessionid"].value,
        "csrf": secrets.token_hex(16),  # 32 characters: a valid unmasked CSRF secret
        "ids": ids,
        "big_task": Task.objects.get(name_key="bench task 0000").pk,
    }


def cases(data: dict[str, Any]) -> list[Case]:
    token = {"Authorization": f"Token {data['token']}"}
    posting = {**token, "Content-Type": "application/json"}
    browser = {"Cookie": f"sessionid={data['session']}; csrftoken={data['csrf']}"}
    ids = data["ids"]

    def preview(pair: tuple[int, int]) -> str:  # what a strategy radio asks for
        return "/tasks/preview/?" + urllib.parse.urlencode(
            [("selector_present", "1"), ("use_presets", "on")]
            + [("presets", preset_id) for preset_id in pair]
            + [("preset_search", ""), ("merge_strategy", "union"), ("runtime", "sglang"), ("gpus", "1")]
        )

    previewing = {**browser, "HX-Request": "true", "HX-Target": "merge-preview"}
    return [
        Case("GET /healthz (baseline)", "/healthz"),
        Case("GET bare view, 1 ORM query", "/bench/bare"),
        Case(
            "GET API list, filtered, 100 rows",
            "/api/presets/?category=memory&runtime=sglang&page_size=100",
            headers=token,
        ),
        Case("POST API merge, 2 presets", "/api/presets/merge", "POST", json.dumps({"preset_ids": ids[:2]}), posting),
        Case("POST API merge, 20 presets", "/api/presets/merge", "POST", json.dumps({"preset_ids": ids[:20]}), posting),
        # A merge of 2, each request another pair: nothing a database or an OS cache keeps is repeated.
        Case(
            "POST API merge, 2, each a new pair",
            "/api/presets/merge",
            "POST",
            json.dumps({"preset_ids": ids[:2]}),
            posting,
            bodies=[json.dumps({"preset_ids": [first, second]}) for first in ids for second in ids if first != second],
        ),
        Case("GET merge-preview fragment", preview((ids[0], ids[1])), headers=previewing),
        # The same fragment, each request another pair of presets.
        Case(
            "GET merge-preview, each a new merge",
            preview((ids[0], ids[1])),
            headers=previewing,
            paths=[preview((first, second)) for first in ids for second in ids if first != second],
        ),
        Case("GET presets page (HTML)", "/presets/", headers=browser),
        Case("GET new-task page (HTML)", "/tasks/new/", headers=browser),
        Case("GET API plan, 10,000 combinations", f"/api/tasks/{data['big_task']}/plan", headers=token),
        Case("GET task page, 10,000 combinations", f"/tasks/{data['big_task']}/", headers=browser),
    ]


# --- the server and the load generator -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, env: dict[str, str], log: Any, workers: int = 2) -> subprocess.Popen:
    """gunicorn as bin/serve starts it (its worker class and threads from the environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "autotuner.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        # The app's request log stays on (it is part of a request's cost), out of the table's way.
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def wait_until_up(base: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def fetch(base: str, case: Case, turn: int = 0) -> tuple[int, int, bytes]:
    """One request (the ``turn``-th of a case with paths or bodies): its status, its database
    queries (the X-Queries header) and its body."""
    path = case.paths[turn % len(case.paths)] if case.paths else case.path
    body = case.bodies[turn % len(case.bodies)] if case.bodies else case.body
    request = urllib.request.Request(
        base + path, data=body.encode() if body else None, headers=case.headers, method=case.method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, int(response.headers.get("X-Queries", -1)), response.read()
    except urllib.error.HTTPError as error:
        return error.code, int(error.headers.get("X-Queries", -1)), error.read()


def probe(base: str, case: Case) -> tuple[int, int]:
    """The status and the fewest queries of a few requests: a token's use is written at most once a
    minute per worker, and the first request a worker serves may do one-off work."""
    answers = [fetch(base, case, turn)[:2] for turn in range(4)]
    return answers[-1][0], min(queries for _, queries in answers)


def run_wrk(base: str, case: Case, seconds: int, connections: int, script_dir: Path) -> dict[str, float]:
    script = script_dir / "request.lua"
    lines = [f'wrk.method = "{case.method}"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in case.headers.items()]
    if case.body is not None:
        lines.append(f"wrk.body = {json.dumps(case.body)}")
    turns = case.paths or case.bodies
    if turns:  # each run starts somewhere else: runs of a few seconds would repeat the first ones
        lines += [
            "local turns = {" + ", ".join(map(json.dumps, turns)) + "}",
            f"local first = {random.randrange(len(turns))}",
            "function setup(thread) thread:set('at', first); first = (first + math.floor(#turns / 2)) % #turns end",
            "function request() at = at % #turns + 1; return wrk.format("
            + ("nil, turns[at]" if case.paths else "nil, nil, nil, turns[at]")
            + ") end",
        ]
    script.write_text("\n".join(lines) + "\n")
    threads = min(2, connections)
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            base + case.path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", output)
    return {
        "requests": int(done.group(1)),
        "seconds": _ms(done.group(2) + done.group(3)) / 1000,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _ms(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1)),
        "p99": _ms(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1)),
        # wrk counts a 3xx as success; a redirect here is the login page, an error.
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0),
    }


def measure_paired(
    base: str, case: Case, baseline: Case, seconds: int, clients: int, script_dir: Path, rounds: int = ROUNDS
) -> tuple[dict[str, float], dict[str, float]]:
    """``case`` and the baseline, ``seconds`` each, in alternating slices: on a shared machine the
    speed drifts within a minute, and a ratio is only fair between figures taken side by side.
    Requests/s are over all the slices; p50 and p99 are the median slice's (one slice disturbed by
    the machine does not decide them)."""
    slices: dict[str, list[dict[str, float]]] = {"case": [], "baseline": []}
    for _ in range(rounds):
        for name, measured in (("baseline", baseline), ("case", case)):
            slices[name].append(run_wrk(base, measured, max(1, seconds // rounds), clients, script_dir))
    return _combined(slices["case"]), _combined(slices["baseline"])


def _combined(slices: list[dict[str, float]]) -> dict[str, float]:
    requests, seconds = sum(one["requests"] for one in slices), sum(one["seconds"] for one in slices)
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds,
        "p50": statistics.median(one["p50"] for one in slices),
        "p99": statistics.median(one["p99"] for one in slices),
        "errors": sum(one["errors"] for one in slices),
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def time_all_presets(base: str, token: str, runs: int = 10) -> tuple[float, int]:
    """Median seconds to fetch every preset in one response, and how many came back."""
    case = Case("", f"/api/presets/?page_size={PRESETS}", headers={"Authorization": f"Token {token}"})
    timings, count = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        _, _, body = fetch(base, case)
        timings.append(time.perf_counter() - started)
        count = len(json.loads(body))
    return statistics.median(timings), count


# --- the report ------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="measure only the endpoints whose label contains one of these (the baseline always runs)",
    )
    parser.add_argument(
        "--worker-class",
        choices=["sync", "gthread"],
        default=None,
        help="gunicorn's worker class (default: bin/serve's, GUNICORN_CMD_ARGS or gunicorn.conf.py)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("This benchmark needs wrk: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="autotuner-bench-"))
    setup_django(workdir)
    print(f"Building a database in {workdir} …", flush=True)
    data = build_database()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AUTOTUNER_DATA_DIR": str(workdir),
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
    }
    if args.worker_class:
        env["GUNICORN_CMD_ARGS"] = f"{env.get('GUNICORN_CMD_ARGS', '')} --worker-class {args.worker_class}".strip()
    log = (workdir / "server.log").open("w")
    server = start_gunicorn(port, env, log)
    # Queries per request are counted on a server of their own, so that probing never warms the
    # measured workers.
    probe_port = free_port()
    prober = start_gunicorn(probe_port, env, log, workers=1)
    try:
        wait_until_up(base)
        probe_base = f"http://127.0.0.1:{probe_port}"
        wait_until_up(probe_base)
        all_cases = cases(data)
        if args.only:
            all_cases = all_cases[:1] + [
                case for case in all_cases[1:] if any(text.lower() in case.label.lower() for text in args.only)
            ]
        queries_small = {case.label: probe(probe_base, case) for case in all_cases}
        add_presets(FIRST_PRESETS, PRESETS)
        queries = {case.label: probe(probe_base, case) for case in all_cases}
        stop(prober)
        for case in all_cases:  # warm both workers up
            run_wrk(base, case, 2, 4, workdir)

        figures: dict[tuple[str, int], dict[str, float]] = {}
        ratios: dict[tuple[str, int], float] = {}
        baseline_case = all_cases[0]
        print(
            f"\ngunicorn 2 workers ({env.get('GUNICORN_CMD_ARGS') or 'sync'}), {PRESETS:,} presets, {TASKS:,} tasks, "
            f"wrk for {args.seconds} s each, in {ROUNDS} slices alternating with as many of the baseline "
            "(its rows, last: all its slices)"
        )
        header = f"{'endpoint':36} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'vs base':>7}"
        print(f"{header} {'queries at 1k/10k':>17}")

        def show(case: Case, clients: int) -> None:
            result = figures[case.label, clients]
            status = queries[case.label][0]
            counted = f"{queries_small[case.label][1]}/{queries[case.label][1]}" + (
                "" if status == 200 else f" (HTTP {status})"
            )
            print(
                f"{case.label:36} {clients:7d} {result['rps']:8.0f} {result['p50']:8.2f} {result['p99']:8.2f} "
                f"{result['errors']:6.0f} {ratios[case.label, clients]:7.0%} {counted:>17}",
                flush=True,
            )

        baseline_slices: dict[int, list[dict[str, float]]] = {clients: [] for clients in args.concurrency}
        for case in all_cases[1:]:
            for clients in args.concurrency:
                result, paired = measure_paired(base, case, baseline_case, args.seconds, clients, workdir)
                figures[case.label, clients] = result
                ratios[case.label, clients] = result["rps"] / paired["rps"]
                baseline_slices[clients].append(paired)
                show(case, clients)
        for clients in args.concurrency:
            figures[baseline_case.label, clients] = _combined(baseline_slices[clients])
            ratios[baseline_case.label, clients] = 1.0
            show(baseline_case, clients)

        print(f"\n64 clients, {args.seconds} s each")
        at64 = {}
        busy = ("GET /healthz (baseline)", "GET API list, filtered, 100 rows", "POST API merge, 2 presets")
        for case in [case for case in all_cases if case.label in busy]:
            result = at64[case.label] = run_wrk(base, case, args.seconds, 64, workdir)
            print(
                f"{case.label:36} {64:7d} {result['rps']:8.0f} {result['p50']:8.2f} {result['p99']:8.2f} "
                f"{result['errors']:6.0f}",
                flush=True,
            )

        seconds, count = time_all_presets(base, data["token"])
        print(f"\nAll presets in one response: {count:,} presets, median {seconds * 1000:.0f} ms of 10 requests")

        busiest = max(args.concurrency)
        print(f"\nTargets of issue 18 (ratios at {busiest} clients)")

        def ratio_target(label: str, minimum: float, name: str) -> None:
            if (label, busiest) not in figures:
                return
            ratio = ratios[label, busiest]
            print(f"  {verdict(ratio >= minimum)}  {name} ≥ {minimum:.0%} of the baseline: {ratio:.0%}")

        ratio_target("POST API merge, 2 presets", 0.50, "merge of 2 presets")
        ratio_target("GET API list, filtered, 100 rows", 0.25, "100-row list of 10,000")
        print(f"  {verdict(seconds <= 0.2)}  all 10,000 presets in one response ≤ 200 ms: {seconds * 1000:.0f} ms")
        wide = [
            f"{case.label} ({figures[case.label, busiest]['p99'] / figures[case.label, busiest]['p50']:.1f}×)"
            for case in all_cases
            if figures[case.label, busiest]["p99"] > 4 * figures[case.label, busiest]["p50"]
        ]
        print(
            f"  {verdict(not wide)}  p99 ≤ 4 × p50 at {busiest} clients" + (f": not {', '.join(wide)}" if wide else "")
        )
        errors = sum(result["errors"] for result in at64.values())
        idle = [label for label, result in at64.items() if not result["rps"]]  # nothing answered: no proof
        print(
            f"  {verdict(errors == 0 and not idle)}  no errors at 64 clients: {errors:.0f}"
            + (f", but no answer at all from {', '.join(idle)}" if idle else "")
        )
        grew = [label for label in queries if queries[label][1] != queries_small[label][1]]
        failed = [label for label, (status, _) in queries.items() if status != 200]
        print(
            f"  {verdict(not grew and not failed)}  queries per request the same at 1,000 and 10,000 presets"
            + (f": not {', '.join(grew + failed)}" if grew or failed else "")
        )
    finally:
        stop(server)
        stop(prober)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
