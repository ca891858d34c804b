"""The engine runner against real child processes: the stand-in engine coming up, crashing out of
memory, never answering, and process groups that must be stopped whole."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from engines import standin
from tasks.runner import EngineFailed, EngineProcess, free_port

pytestmark = pytest.mark.engine

# A leader and a child that both ignore SIGTERM, as a wedged engine and its worker might.
STUBBORN_GROUP = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(60)"])
print(f"child {child.pid}", flush=True)
time.sleep(60)
"""
# A leader that exits on SIGTERM but leaves its child behind.
ORPHANING_LEADER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('ready', flush=True); time.sleep(60)"])
print(f"child {child.pid}", flush=True)
time.sleep(60)
"""


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def alive(pid: int) -> bool:
    """Whether the process runs: a zombie is dead (this container's init may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def started_child(engine: EngineProcess) -> int:
    assert engine.wait_for_line("ready", timeout_s=10), engine.log_tail
    line = engine.wait_for_line("child ", timeout_s=1)
    assert line
    return int(line.split()[1])


def test_the_standin_becomes_healthy_and_serves_its_model():
    port = free_port()
    with EngineProcess(standin.command(port)) as engine:
        engine.wait_until_healthy(base_url(port), timeout_s=10)
        with urllib.request.urlopen(f"{base_url(port)}/v1/models", timeout=2) as response:
            models = json.load(response)
        assert models["data"] == [{"id": "m", "object": "model"}]
        # The log is read by a thread: wait for the lines rather than race it.
        assert engine.wait_for_line("serving m on", timeout_s=5)
        assert engine.wait_for_line("GET /health", timeout_s=5)  # one log line per request


def test_vllm_style_arguments_start_the_standin_too():
    port = free_port()
    command = [sys.executable, "-m", standin.MODULE, "serve", "org/model", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.9", "--unknown", "1"]
    with EngineProcess(command) as engine:
        engine.wait_until_healthy(base_url(port), timeout_s=10)
        assert engine.wait_for_line("serving org/model", timeout_s=5)


def test_an_out_of_memory_start_fails_fast_with_the_crash_in_the_log_tail():
    port = free_port()
    started = time.monotonic()
    engine = EngineProcess(standin.command(port, "--mem-fraction-static", "0.97"))
    with engine, pytest.raises(EngineFailed) as caught:
        engine.wait_until_healthy(base_url(port), timeout_s=30)
    assert caught.value.reason == "exited with status 1 before becoming healthy"
    assert str(caught.value) == caught.value.reason
    assert any("CUDA out of memory" in line for line in caught.value.log_tail)
    assert time.monotonic() - started < 5, "a crash is noticed at once, not at the timeout"
    assert engine.returncode == 1


def test_an_engine_that_never_becomes_healthy_times_out_with_the_reason():
    port = free_port()
    with EngineProcess(standin.command(port, "--startup-seconds", "60")) as engine:
        started = time.monotonic()
        with pytest.raises(EngineFailed) as caught:
            engine.wait_until_healthy(base_url(port), timeout_s=0.5)
        assert caught.value.reason == "not healthy after 0.5 s"
        assert 0.5 <= time.monotonic() - started < 3
        assert any("loading m" in line for line in caught.value.log_tail)


def test_stop_ends_the_process_group_and_reaps_the_engine():
    port = free_port()
    engine = EngineProcess(standin.command(port))
    engine.start()
    engine.wait_until_healthy(base_url(port), timeout_s=10)
    pid = engine.pid
    assert pid is not None
    assert os.getpgid(pid) == pid, "the engine leads a process group of its own"
    assert engine.stop() == 0, "the stand-in exits cleanly on SIGTERM"
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert any("shutting down" in line for line in engine.log_tail)
    assert engine.stop() == 0, "stopping again changes nothing"


def test_stop_kills_a_group_that_ignores_sigterm_after_the_grace_period():
    engine = EngineProcess([sys.executable, "-c", STUBBORN_GROUP])
    with engine:
        child = started_child(engine)
        started = time.monotonic()
        assert engine.stop(grace_s=0.5) == -signal.SIGKILL
        assert 0.5 <= time.monotonic() - started < 3
    assert not alive(child)
    with pytest.raises(ProcessLookupError):
        os.kill(engine.pid, 0)


def test_stop_kills_a_worker_its_engine_left_behind():
    engine = EngineProcess([sys.executable, "-c", ORPHANING_LEADER])
    with engine:
        child = started_child(engine)
        assert engine.stop(grace_s=0.5) == -signal.SIGTERM
    assert not alive(child), "the worker would keep its GPU memory"


def test_extra_environment_reaches_the_engine():
    code = "import os; print('devices', os.environ['CUDA_VISIBLE_DEVICES'])"
    with EngineProcess([sys.executable, "-c", code], env={"CUDA_VISIBLE_DEVICES": "2,3"}) as engine:
        assert engine.wait_for_line("devices", timeout_s=10) == "devices 2,3"


def test_stop_before_start_does_nothing():
    assert EngineProcess(["true"]).stop() is None


def test_free_port_can_be_bound():
    port = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
