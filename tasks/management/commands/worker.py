"""`manage.py worker`: django-tasks-db's db_worker, after recovering what a dead worker left running.

Run one per host (each GPU host against the same PostgreSQL database); see the README.
"""

from __future__ import annotations

import logging
import threading
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.db import connection
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from tasks.lifecycle import recover_lost_experiments

logger = logging.getLogger("autotuner.runs")


class Command(DbWorkerCommand):
    help = "Run the background worker that runs tasks' experiments (recovers lost experiments first)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        # Reloading on code changes would kill an engine mid-benchmark; restart the worker instead.
        parser.set_defaults(reload=False)

    def handle(self, *args: Any, **options: Any) -> None:
        lost = recover_lost_experiments()
        if lost:
            self.stdout.write(f"Marked {len(lost)} experiment(s) left by a stopped worker as failed (worker lost).")
        # Another host's worker may die while this one is idle: look for silent experiments now and then.
        threading.Thread(target=_keep_recovering, name="recover-lost", daemon=True).start()
        super().handle(*args, **options)


def _keep_recovering() -> None:
    interval = max(min(settings.WORKER_LOST_AFTER / 2, 60), 1)
    while True:
        time.sleep(interval)
        try:
            recover_lost_experiments()
        except Exception:  # the database may be away for a moment; the next round tries again
            logger.exception("recovering lost experiments failed")
        finally:
            connection.close()  # this thread's own; a fresh one next round
