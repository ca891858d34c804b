"""Regenerating each committed catalogue from its engine's own argument parser gives the file back.

Runs where the engines' wheels are unpacked (engines/data/README.md says how): set
AUTOTUNER_ENGINE_SOURCES to a folder holding one ``<engine>-<version>/`` per catalogue, and
AUTOTUNER_ENGINE_PYTHON to a Python with engines.gpustubs.PARSE_TIME_PACKAGES installed.
"""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from engines.catalogue import DATA_DIR

SOURCES = os.environ.get("AUTOTUNER_ENGINE_SOURCES", "")
PYTHON = os.environ.get("AUTOTUNER_ENGINE_PYTHON", "")


@pytest.mark.parametrize("committed", sorted(DATA_DIR.glob("*.json")), ids=lambda path: path.stem)
def test_the_engines_own_parser_regenerates_the_committed_catalogue(committed, tmp_path):
    unpacked = Path(SOURCES) / committed.stem
    if not (SOURCES and PYTHON and unpacked.is_dir()):
        pytest.skip(
            f"{committed.stem} is not unpacked here: set AUTOTUNER_ENGINE_SOURCES (with {committed.stem}/ in it) "
            "and AUTOTUNER_ENGINE_PYTHON, as engines/data/README.md shows"
        )
    output = tmp_path / committed.name

    call_command(
        "regenerate_catalogue",
        committed.stem.split("-", 1)[0],
        "--python",
        PYTHON,
        "--engine-path",
        str(unpacked),
        "--output",
        str(output),
        stdout=StringIO(),
    )

    assert output.read_text() == committed.read_text()
