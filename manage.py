#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    if sys.version_info < (3, 12):  # noqa: UP036 -- must run, and explain, on an older python3
        sys.exit("autotuner needs Python 3.12 or newer; run it through bin/start or bin/test.")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "autotuner.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
