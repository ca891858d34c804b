"""Regenerating each committed catalogue from its engine's own argument parser gives the file back.

Runs where the engines' wheels are unpacked (engines/data/README.md says how): set
AUTOTUNER_ENGINE_SOURCES to a folder holding one ``<engine>-<version>/`` per catalogue, and
AUTOTUNER_ENGINE_PYTHON to a Python with engines.gpustubs.PARSE_TIME_PACKAGES installed.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from engines.catalogue import DATA_DIR
from tests.engines.wheels import PYTHON, unpacked


@pytest.mark.parametrize("committed", sorted(DATA_DIR.glob("*.json")), ids=lambda path: path.stem)
def test_the_engines_own_parser_regenerates_the_committed_catalogue(committed, tmp_path):
    sources = unpacked(committed.stem)
    output = tmp_path / committed.name

    call_command(
        "regenerate_catalogue",
        committed.stem.split("-", 1)[0],
        "--python",
        PYTHON,
        "--engine-path",
        str(sources),
        "--output",
        str(output),
        stdout=StringIO(),
    )

    assert output.read_text() == committed.read_text()
