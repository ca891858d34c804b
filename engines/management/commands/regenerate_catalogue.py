from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from engines import registry
from engines.catalogue import DATA_DIR, CatalogueError, dumps, parse
from engines.parsers import catalogue_from, flags_from_help


class Command(BaseCommand):
    help = (
        "Write engines/data/<engine>-<version>.json from the engine's own argument parser, run by a Python "
        "where the engine is installed (--python, --engine-path), or from its --help output (--from-help FILE)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("engine", choices=registry.engine_names())
        parser.add_argument("--from-help", metavar="FILE", help="read the flags from saved --help output")
        parser.add_argument(
            "--python", metavar="PYTHON", default=sys.executable, help="a Python with the engine's parse-time packages"
        )
        parser.add_argument("--engine-path", metavar="DIR", help="where the engine's wheel is unpacked (on sys.path)")
        # Not --version: every Django command already has that one (Django's own version).
        parser.add_argument("--engine-version", help="the engine version (--from-help only)")
        parser.add_argument("--output", metavar="FILE", help="where to write (default: engines/data/)")

    def handle(
        self,
        *args: Any,
        engine: str,
        from_help: str | None,
        python: str,
        engine_path: str | None,
        engine_version: str | None,
        output: str | None,
        **options: Any,
    ) -> None:
        if from_help:
            if not engine_version:
                raise CommandError("--from-help needs --engine-version: the help text does not say which release it is")
            flags = flags_from_help(Path(from_help).read_text())
            source = f"{engine} {engine_version}, the --help output in {Path(from_help).name}"
            text = dumps(catalogue_from(engine, engine_version, source, flags))
        else:
            text = self._own_document(engine, python, engine_path)
        # What is written must load; it holds only what the engine says (parse adds the bounds a
        # flag's meaning fixes: written back, they would override a later change of those).
        catalogue = parse(json.loads(text))
        target = Path(output) if output else DATA_DIR / f"{engine}-{catalogue.version}.json"
        target.write_text(text)
        self.stdout.write(f"Wrote {len(catalogue.flags)} flags of {engine} {catalogue.version} to {target}")

    @staticmethod
    def _own_document(engine: str, python: str, engine_path: str | None) -> str:
        """The catalogue the engine's own parser gives, from ``python -m engines.parsers`` in ``python``."""
        paths = [engine_path] if engine_path else []
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([*paths, str(settings.BASE_DIR)])}
        try:
            done = subprocess.run(
                [python, "-m", "engines.parsers", engine],
                env=environment,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        except OSError as error:
            raise CommandError(f"cannot run {python}: {error}") from None
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise CommandError(f"{engine} is not importable here ({last}); use --python, --engine-path or --from-help")
        try:
            parse(json.loads(done.stdout))
        except (ValueError, CatalogueError) as error:
            raise CommandError(f"{engine}'s parser gave no catalogue: {error}") from None
        return done.stdout
