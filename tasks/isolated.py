"""Run a benchmark in a process of its own.

A worker runs one experiment per GPU at once, each in a thread. Their benchmark clients parse every
streamed token in Python: in one interpreter they would share one GIL, and eight engines streaming
thousands of tokens a second each would be measured at the speed of the client, not of the engines,
all alike. So each benchmark runs in a child process (forked from a forkserver that has the client
imported already), while the worker's thread keeps the experiment's heartbeat and its cancel.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Event
from typing import Any

POLL_SECONDS = 0.05
# Imported once by the forkserver, so a child starts with the client ready.
PRELOADED = ["tasks.benchmark"]

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(PRELOADED)

# The child's side: set by the pool's initializer (events and queues pass only at a process's start).
_stop: Event | None = None
_levels: SimpleQueue[float] | None = None


def in_own_process[T](
    function: Callable[..., T],
    *args: Any,
    stop: threading.Event,
    on_level: Callable[[float], None],
    **kwargs: Any,
) -> T:
    """``function(*args, stop=<event>, on_level=<callback>, **kwargs)`` in a child process; ``stop``
    reaches it and each ``on_level`` comes back. ``function`` must be a module's top-level function
    and its arguments picklable. Its exception, if any, is raised here."""
    stopping = _context.Event()
    levels: SimpleQueue[float] = _context.SimpleQueue()
    with ProcessPoolExecutor(
        max_workers=1, mp_context=_context, initializer=_attach, initargs=(stopping, levels)
    ) as pool:
        future = pool.submit(_call, function, *args, **kwargs)
        while True:
            if stop.is_set():
                stopping.set()
            try:
                result = future.result(timeout=POLL_SECONDS)
            except TimeoutError:
                result = None
            while not levels.empty():  # written before the result was: all here once it is
                on_level(levels.get())
            if future.done():
                return future.result() if result is None else result


def _attach(stopping: Event, levels: SimpleQueue[float]) -> None:
    global _stop, _levels
    _stop, _levels = stopping, levels


def _call[T](function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    if _stop is None or _levels is None:
        raise RuntimeError("_call runs in a pool made by in_own_process")
    return function(*args, stop=_stop, on_level=_levels.put, **kwargs)
