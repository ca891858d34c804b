"""Run one inference engine as a child process: start it, wait until it serves, keep its log tail,
and stop it with everything it spawned.

The engine runs in its own session, so its process group holds the workers it forks (vLLM and
SGLang start one per GPU); stopping signals the whole group, because a worker left behind keeps
its GPU memory and the next experiment fails with out-of-memory. Imports nothing from Django.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

LOG_LINES = 200
POLL_SECONDS = 0.1
PROBE_TIMEOUT_SECONDS = 2.0
PROBE_PATHS = ("/health", "/v1/models")
# Engines are local: a proxy from the environment must never see the probes.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EngineFailed(Exception):
    """The engine did not come up: ``reason`` is one sentence, ``log_tail`` its last output lines."""

    def __init__(self, reason: str, log_tail: Sequence[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_tail = list(log_tail)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now; another process may take it before the engine binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class EngineProcess:
    """One engine process. Use as a context manager, which starts it and always stops it::

    with EngineProcess(command, env={"CUDA_VISIBLE_DEVICES": "0,1"}) as engine:
        engine.wait_until_healthy("http://127.0.0.1:30000", timeout_s=600)
        ...
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_lines: int = LOG_LINES,
    ) -> None:
        self.command = list(command)
        self.env = dict(env or {})
        self.cwd = cwd
        self._lines: deque[str] = deque(maxlen=log_lines)
        self._new_line = threading.Condition()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> EngineProcess:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("the engine was started already")
        # Python engines block-buffer a pipe, so a crash or SIGKILL would lose the lines that explain it.
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"engine-log-{self._process.pid}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process is not None
        stream = self._process.stdout
        assert stream is not None
        # Text mode splits on "\r" too, so each progress-bar redraw is a line of its own.
        for line in stream:
            with self._new_line:
                self._lines.append(line.rstrip("\n"))
                self._new_line.notify_all()
        stream.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        return self._process.poll() if self._process else None

    @property
    def log_tail(self) -> list[str]:
        with self._new_line:
            return list(self._lines)

    def wait_for_line(self, text: str, timeout_s: float) -> str | None:
        """The first line in the tail containing ``text``, waiting up to ``timeout_s`` for it to appear."""
        deadline = time.monotonic() + timeout_s
        with self._new_line:
            while True:
                for line in self._lines:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._new_line.wait(remaining)

    def wait_until_healthy(self, base_url: str, timeout_s: float) -> None:
        """Return once GET /health and then GET /v1/models answer 200.

        Raises EngineFailed as soon as the process exits, or after ``timeout_s``.
        """
        if self._process is None:
            raise RuntimeError("start the engine first")
        deadline = time.monotonic() + timeout_s
        base_url = base_url.rstrip("/")
        while True:
            if self._process.poll() is not None:
                raise EngineFailed(f"{self._exit_description()} before becoming healthy", self._drained_tail())
            if all(_answers(base_url + path, deadline) for path in PROBE_PATHS):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineFailed(f"not healthy after {timeout_s:g} s", self.log_tail)
            # Waiting on the process rather than sleeping notices a crash at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=min(POLL_SECONDS, remaining))

    def _exit_description(self) -> str:
        assert self._process is not None
        code = self._process.returncode
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def _drained_tail(self) -> list[str]:
        # The crash message is usually the last thing written: let the reader reach end of file.
        if self._reader is not None:
            self._reader.join(timeout=2)
        return self.log_tail

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the whole process group, SIGKILL whatever is left after ``grace_s``, reap the engine.

        Safe to call again and before start; returns the engine's exit status.
        """
        process = self._process
        if process is None:
            return None
        pgid = process.pid  # start_new_session makes the engine its group's leader
        deadline = time.monotonic() + grace_s
        if process.poll() is None or _group_alive(pgid):
            _signal_group(pgid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
            # Workers may outlive the engine that forked them, still holding their GPUs.
            while _group_alive(pgid) and time.monotonic() < deadline:
                threading.Event().wait(min(POLL_SECONDS, max(deadline - time.monotonic(), 0)))
            if process.poll() is None or _group_alive(pgid):
                _signal_group(pgid, signal.SIGKILL)
        process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        return process.returncode


def _answers(url: str, deadline: float) -> bool:
    timeout = max(min(PROBE_TIMEOUT_SECONDS, deadline - time.monotonic()), 0.05)
    try:
        with _opener.open(url, timeout=timeout) as response:
            response.read()
            return response.status == 200
    except urllib.error.HTTPError as error:
        error.close()  # it holds the response; left open it warns
        return False
    except (OSError, ValueError):
        return False  # not listening yet, reset while starting, or a half-written answer


def kill_group(pgid: int) -> bool:
    """SIGKILL a process group left behind (by a worker that died); True if anything was still running."""
    if not _group_alive(pgid):
        return False
    _signal_group(pgid, signal.SIGKILL)
    return True


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    """Whether a process other than a zombie is left in the group.

    Zombies count as members for ``killpg(pgid, 0)`` until their parent reaps them, and in a container
    whose init never reaps, orphaned workers stay zombies for good; /proc tells them apart.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while scanning
        # Fields after the command name, which may hold spaces and parentheses: state, ppid, pgrp, ...
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
