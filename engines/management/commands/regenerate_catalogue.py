from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from engines import registry
from engines.catalogue import DATA_DIR, dumps, parse
from engines.parsers import catalogue_from, engine_version, flags_from_help, flags_from_parser


class Command(BaseCommand):
    help = (
        "Write engines/data/<engine>-<version>.json from the installed engine's own argument parser, "
        "or from its --help output (--from-help FILE) where the engine cannot be imported."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("engine", choices=registry.engine_names())
        parser.add_argument("--from-help", metavar="FILE", help="read the flags from saved --help output")
        # Not --version: every Django command already has that one (Django's own version).
        parser.add_argument("--engine-version", help="the engine version (default: the installed one)")
        parser.add_argument("--output", metavar="FILE", help="where to write (default: engines/data/)")

    def handle(
        self,
        *args: Any,
        engine: str,
        from_help: str | None,
        engine_version: str | None,
        output: str | None,
        **options: Any,
    ) -> None:
        if from_help:
            if not engine_version:
                raise CommandError("--from-help needs --engine-version: the help text does not say which release it is")
            flags = flags_from_help(Path(from_help).read_text())
            source = f"{engine} {engine_version}, the --help output in {Path(from_help).name}"
        else:
            module, _, function = registry.engine(engine).parser.partition(":")
            try:
                parser = getattr(importlib.import_module(module), function)()
            except ImportError as error:
                raise CommandError(f"{engine} is not importable here ({error}); use --from-help") from None
            flags = flags_from_parser(parser)
            engine_version = engine_version or self._installed_version(engine)
            source = f"{engine} {engine_version}, its own argument parser"
        catalogue = catalogue_from(engine, engine_version, source, flags)
        text = dumps(catalogue)
        parse(json.loads(text))  # what is written must load
        target = Path(output) if output else DATA_DIR / f"{engine}-{engine_version}.json"
        target.write_text(text)
        self.stdout.write(f"Wrote {len(catalogue.flags)} flags of {engine} {engine_version} to {target}")

    @staticmethod
    def _installed_version(engine: str) -> str:
        try:
            return engine_version(engine)
        except ImportError as error:
            raise CommandError(str(error)) from None
