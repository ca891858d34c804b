from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from presets.seeding import seed_system_presets


class Command(BaseCommand):
    help = "Create the shipped system presets, or restore their definition if it was changed. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            outcome = seed_system_presets()
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        summary = ", ".join(f"{len(names)} {state}" for state, names in outcome.items())
        self.stdout.write(f"System presets: {summary}.")
        for state in ("created", "restored"):
            for name in outcome[state]:
                self.stdout.write(f"  {state}: {name}")
