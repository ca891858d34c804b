"""`manage.py worker`: django-tasks-db's db_worker, after recovering what a dead worker left running.

Run one per host (each GPU host against the same PostgreSQL database); see the README.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from tasks.lifecycle import recover_lost_experiments


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
        super().handle(*args, **options)
