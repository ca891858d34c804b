"""`manage.py wait_for_database`: wait until the database answers, saying where it looked, or give up."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from autotuner.database import unreachable_reason

RETRY_EVERY = 2.0  # seconds


class Command(BaseCommand):
    help = "Wait until the database answers (bin/serve runs it first); exit 1 with the reason after --timeout."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to keep trying (0: try once)")
        parser.add_argument("--database", default="default")

    def handle(self, *args: Any, timeout: float, database: str, **options: Any) -> None:
        deadline = time.monotonic() + timeout
        while reason := unreachable_reason(database):
            if time.monotonic() + RETRY_EVERY > deadline:
                raise CommandError(f"{reason} (gave up after {timeout:g} s)")
            self.stderr.write(f"{reason}; trying again in {RETRY_EVERY:g} s")
            time.sleep(RETRY_EVERY)
        if options["verbosity"] > 1:
            self.stdout.write("The database answers.")
