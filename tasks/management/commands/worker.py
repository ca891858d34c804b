"""`manage.py worker`: django-tasks-db's worker loop in one thread per slot, after recovering what a
dead worker left running and offering this host's GPUs.

A host lends its GPUs (AUTOTUNER_GPU_IDS) to as many experiments at once as fit, so a worker runs
one job per slot at a time: a slot per GPU by default (a tp=1 grid on 8 GPUs runs 8 at once), one
without GPU ids. Each slot is db_worker's own ``Worker`` with its own database connection; the
GPUs each experiment uses are leased in the database, so any number of workers and hosts share
them. Run one per host (each GPU host against the same PostgreSQL database); see the README.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from argparse import ArgumentParser
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import connection
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import Worker

from tasks import gpus
from tasks.lifecycle import recover_lost_experiments

logger = logging.getLogger("autotuner.runs")


class Command(DbWorkerCommand):
    help = "Run the background worker that runs tasks' experiments, one per slot (a slot per GPU by default)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--slots",
            type=int,
            default=None,
            help="Experiments run at once (default: one per GPU in AUTOTUNER_GPU_IDS, else 1).",
        )
        # Reloading on code changes would kill an engine mid-benchmark; restart the worker instead.
        # A short interval: a slot freed by a finished experiment takes the next job at once.
        parser.set_defaults(reload=False, interval=0.2)

    def handle(self, *args: Any, **options: Any) -> None:
        self.configure_logging(options["verbosity"])
        lost = recover_lost_experiments()
        if lost:
            self.stdout.write(f"Marked {len(lost)} experiment(s) left by a stopped worker as failed (worker lost).")
        host = settings.HOST_NAME
        if settings.GPU_IDS:
            gpus.register_host(host, settings.GPU_IDS)
        # Another host's worker may die while this one is idle: look for silent experiments now and then.
        threading.Thread(target=_keep_recovering, args=(host,), name="recover-lost", daemon=True).start()
        slots = options["slots"] or max(len(settings.GPU_IDS), 1)
        workers = [
            Worker(
                queue_names=options["queue_name"].split(","),
                excluded_queue_names=options["exclude_queues"].split(",") if options["exclude_queues"] else [],
                interval=options["interval"],
                batch=options["batch"],
                backend_name=options["backend_name"],
                startup_delay=options["startup_delay"],
                max_tasks=options["max_tasks"],
                worker_id=f"{options['worker_id'][:58]}-{slot}",
            )
            for slot in range(slots)
        ]
        _stop_on_signals(workers)
        threads = [
            threading.Thread(target=_run_slot, args=(worker,), name=f"slot-{slot}", daemon=True)
            for slot, worker in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.2)


def _run_slot(worker: Worker) -> None:
    try:
        worker.run()
    finally:
        connection.close()  # this thread's own


def _stop_on_signals(workers: list[Worker]) -> None:
    """The first SIGTERM or SIGINT lets every slot finish its experiment and stop; a second ends at once."""
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stopping.is_set():
            logger.warning("%s again: stopping now", signal.strsignal(signum))
            sys.exit(1)
        stopping.set()
        logger.warning("%s: finishing the experiments running, then stopping", signal.strsignal(signum))
        for worker in workers:
            worker.running = False

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(signum, on_signal)


def _keep_recovering(host: str) -> None:
    interval = max(min(settings.WORKER_LOST_AFTER / 2, 60), 1)
    while True:
        time.sleep(interval)
        try:
            recover_lost_experiments()
            if settings.GPU_IDS:
                gpus.register_host(host, settings.GPU_IDS)  # the dashboard tells a live host by it
        except Exception:  # the database may be away for a moment; the next round tries again
            logger.exception("recovering lost experiments failed")
        finally:
            connection.close()  # this thread's own; a fresh one next round
