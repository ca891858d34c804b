from __future__ import annotations

from django.apps import AppConfig


class AutotunerConfig(AppConfig):
    """The project package as an app: its system check and management commands."""

    name = "autotuner"
    verbose_name = "autotuner"

    def ready(self) -> None:
        from autotuner import database  # noqa: F401  (registers the database check)
