"""A benchmark runs in a process of its own (tasks.isolated): its own interpreter, the worker's
stop reaching it, its levels reported back, its failure raised in the worker."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tasks.isolated import in_own_process


def report_levels(loads, *, stop, on_level):
    for load in loads:
        on_level(load)
    return os.getpid()


def wait_for_stop(*, stop, on_level):
    deadline = time.monotonic() + 30
    while not stop.is_set():
        if time.monotonic() > deadline:
            return "never stopped"
        time.sleep(0.01)
    return "stopped"


def refuse(*, stop, on_level):
    raise ValueError("goodput is the highest load meeting every SLO: set at least one SLO")


def test_the_function_runs_in_another_process_and_its_levels_come_back():
    seen = []

    pid = in_own_process(report_levels, [1, 8, 32], stop=threading.Event(), on_level=seen.append)

    assert pid != os.getpid()
    assert seen == [1, 8, 32]


def test_the_workers_stop_reaches_the_child():
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    assert in_own_process(wait_for_stop, stop=stop, on_level=lambda load: None) == "stopped"


def test_the_childs_error_is_raised_in_the_worker():
    with pytest.raises(ValueError, match="set at least one SLO"):
        in_own_process(refuse, stop=threading.Event(), on_level=lambda load: None)
