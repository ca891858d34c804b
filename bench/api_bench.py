"""Benchmark the presets API under gunicorn (2 workers) with wrk, and print the figures.

    .venv/bin/python bench/api_bench.py [--seconds 10] [--connections 8]

Builds a fresh database in a temporary folder (system presets + 10,000 generated ones),
starts gunicorn on a free loopback port, and measures each endpoint for the same time.
``/healthz`` (a JSON view running one raw ``SELECT 1``) is the baseline: every figure is also
shown as a ratio to it, since absolute numbers move with the machine. A second reference,
a bare Django JSON view doing one ORM query (bench/urls.py), is the baseline the presets
API issue names; the last column compares with it. Needs Debian's
``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRESET_COUNT = 10_000


def build_database(data_dir: Path) -> tuple[str, list[int]]:
    """Migrate, seed and fill a fresh database; return an API token and a few preset ids."""
    os.environ["AUTOTUNER_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autotuner.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from presets.models import ParameterPreset

    call_command("migrate", verbosity=0)
    call_command("seed_presets", verbosity=0)
    rng = random.Random(7)
    flags = [
        "tp-size",
        "dp-size",
        "mem-fraction-static",
        "schedule-policy",
        "chunked-prefill-size",
        "max-running-requests",
    ]
    presets = []
    for number in range(PRESET_COUNT):
        parameters = {
            "tp-size": sorted(rng.sample([1, 2, 4, 8], rng.randint(1, 3))),
            "mem-fraction-static": sorted(rng.sample([0.7, 0.75, 0.8, 0.85, 0.9], rng.randint(1, 3))),
            "schedule-policy": rng.sample(["fcfs", "lpm", "dfs-weight", "random"], rng.randint(1, 2)),
        }
        for flag in rng.sample(flags[3:], 2):
            parameters.setdefault(flag, [rng.choice([256, 512, 1024, 2048, 4096])])
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
            )
        )
    ParameterPreset.objects.bulk_create(presets, batch_size=1000)
    user = get_user_model().objects.create_user("bench", password="bench-password-1")
    token = Token.objects.create(user=user).key
    ids = list(ParameterPreset.objects.order_by("id").values_list("id", flat=True)[:40])
    return token, ids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def run_wrk(url: str, token: str, seconds: int, connections: int, body: dict | None, script_dir: Path) -> dict:
    script = script_dir / "request.lua"
    lines = [f'wrk.headers["Authorization"] = "Token {token}"']
    if body is not None:
        lines += [
            'wrk.method = "POST"',
            f"wrk.body = {json.dumps(json.dumps(body))}",
            'wrk.headers["Content-Type"] = "application/json"',
        ]
    # Count non-2xx answers so an error page is never mistaken for a fast response.
    lines += [
        "errors = 0",
        "response = function(status, headers, body) if status >= 300 then errors = errors + 1 end end",
    ]
    script.write_text("\n".join(lines) + "\n")
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": rps,
        "p50": _ms(re.search(r"\s50%\s+([\d.]+\w+)", output).group(1)),
        "p99": _ms(re.search(r"\s99%\s+([\d.]+\w+)", output).group(1)),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def time_full_list(base: str, token: str, runs: int = 10) -> tuple[float, int]:
    """Median seconds to fetch all presets in one response, and how many came back."""
    timings, count = [], 0
    for _ in range(runs):
        request = urllib.request.Request(
            f"{base}/api/presets/?page_size=10000", headers={"Authorization": f"Token {token}"}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            count = len(json.loads(response.read()))
        timings.append(time.perf_counter() - started)
    return statistics.median(timings), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("This benchmark needs wrk: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="autotuner-bench-"))
    print(f"Building a database with {PRESET_COUNT:,} presets in {workdir} …", flush=True)
    token, ids = build_database(workdir)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AUTOTUNER_DATA_DIR": str(workdir),
        "DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "autotuner.wsgi",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_until_up(base)
        cases = [
            ("GET /healthz (baseline)", f"{base}/healthz", None),
            ("GET bare Django view, 1 ORM query", f"{base}/bench/bare", None),
            ("GET /api/presets/{id}", f"{base}/api/presets/{ids[0]}", None),
            ("GET list, filtered, 100 rows", f"{base}/api/presets/?category=memory&runtime=sglang&page_size=100", None),
            ("POST merge, 2 presets", f"{base}/api/presets/merge", {"preset_ids": ids[:2]}),
            (
                "POST merge, 20 presets",
                f"{base}/api/presets/merge",
                {"preset_ids": ids[:20], "merge_strategy": "union"},
            ),
        ]
        for _, url, body in cases:  # warm up both workers
            run_wrk(url, token, 1, args.connections, body, workdir)
        print(f"\n{args.connections} connections, {args.seconds} s each, gunicorn 2 sync workers\n")
        print(f"{'endpoint':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'/healthz':>9} {'/bare':>6}")
        healthz = bare = None
        for label, url, body in cases:
            figures = run_wrk(url, token, args.seconds, args.connections, body, workdir)
            healthz = healthz or figures["rps"]
            if "bare" in url:
                bare = figures["rps"]
            versus_bare = figures["rps"] / (bare or figures["rps"])
            print(
                f"{label:34} {figures['rps']:8.0f} {figures['p50']:8.2f} {figures['p99']:8.2f} "
                f"{figures['errors']:8d} {figures['rps'] / healthz:9.0%} {versus_bare:6.0%}",
                flush=True,
            )
        seconds, count = time_full_list(base, token)
        print(f"\nAll presets in one response: {count:,} presets, median {seconds * 1000:.0f} ms over 10 requests")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
