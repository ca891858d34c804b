"""Where the engines' own sources are unpacked for the tests that run their parsers (.ci/run does it;
engines/data/README.md shows how by hand). Skipped when they are not, except under CI=true: CI
unpacks them, so there a missing one is a failure, not a quiet skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SOURCES = os.environ.get("AUTOTUNER_ENGINE_SOURCES", "")
PYTHON = os.environ.get("AUTOTUNER_ENGINE_PYTHON", "")


def unpacked(release: str) -> Path:
    """The folder holding ``release`` (``vllm-0.34.0``) unpacked; skips (fails under CI) without it."""
    folder = Path(SOURCES) / release
    if not (SOURCES and PYTHON and folder.is_dir()):
        reason = (
            f"{release} is not unpacked here: set AUTOTUNER_ENGINE_SOURCES (with {release}/ in it) "
            "and AUTOTUNER_ENGINE_PYTHON, as engines/data/README.md shows"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return folder
