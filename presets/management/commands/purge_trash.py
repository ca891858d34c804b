"""`manage.py purge_trash`: delete for good the presets in the trash for longer than 30 days.

Safe to run from cron (e.g. daily): idempotent, quiet with -v0, and it exits 0 when there is nothing to do.
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from presets.models import TRASH_DAYS, ParameterPreset


class Command(BaseCommand):
    help = f"Delete the presets that have been in the trash for more than {TRASH_DAYS} days, with their history."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=TRASH_DAYS,
            help=f"Purge what was deleted this many days ago (default {TRASH_DAYS}).",
        )
        parser.add_argument("--dry-run", action="store_true", help="List what would be purged; delete nothing.")

    def handle(self, *args: Any, days: int, dry_run: bool, **options: Any) -> None:
        if days < 0:
            raise CommandError(f"--days must be 0 or more, got {days}.")
        cutoff = timezone.now() - timedelta(days=days)
        expired = ParameterPreset.everything.filter(deleted_at__lt=cutoff, is_system=False)
        names = list(expired.values_list("name", flat=True))
        if not dry_run:
            # A queryset delete: the model's delete() guards system presets, which never reach the trash.
            expired.delete()
        verb = "Would purge" if dry_run else "Purged"
        self.stdout.write(f"{verb} {len(names)} preset(s) deleted before {cutoff:%Y-%m-%d %H:%M} UTC.")
        if options["verbosity"] > 1:
            for name in names:
                self.stdout.write(f"  {name}")
