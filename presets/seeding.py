"""Seeding: the shipped system presets (presets/data/system_presets.json), created or brought up
to date by ``manage.py seed_presets`` (bin/start runs it on every start)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from presets.models import SYSTEM_PRESETS_FILE, ParameterPreset, RevisionEvent, _as_json
from presets.naming import name_key
from presets.validators import clean_parameters


@transaction.atomic
def seed_system_presets(definitions: Iterable[Mapping[str, Any]] | None = None) -> dict[str, list[str]]:
    """Create or restore the shipped system presets. Idempotent; returns names by outcome."""
    if definitions is None:
        definitions = json.loads(SYSTEM_PRESETS_FILE.read_text())["presets"]
    outcome: dict[str, list[str]] = {"created": [], "restored": [], "unchanged": []}
    for definition in definitions:
        wanted = {
            "name": definition["name"],
            "description": definition.get("description", ""),
            "category": definition.get("category", ""),
            "runtime": definition.get("runtime", ""),
            "parameters": definition["parameters"],
            "metadata": definition.get("metadata", {}),
        }
        preset = ParameterPreset.objects.filter(name_key=name_key(wanted["name"])).first()
        if preset is None:
            preset = ParameterPreset(is_system=True, **wanted)
            preset.full_clean()
            preset.save(event=RevisionEvent.SEEDED)
            outcome["created"].append(preset.name)
            continue
        if not preset.is_system:
            raise ValidationError(
                f'A user preset is named "{preset.name}", which a system preset needs; rename it first.'
            )
        wanted["parameters"] = clean_parameters(wanted["parameters"])
        # Compared as JSON text: in Python True == 1, but a flag set to 1 instead of true has changed.
        if _as_json(preset.content()) == _as_json(wanted):
            outcome["unchanged"].append(preset.name)
            continue
        for field, value in wanted.items():
            setattr(preset, field, value)
        preset.full_clean()
        # A new version, so users see in its history what the upgrade changed.
        preset.save(event=RevisionEvent.SEEDED, note="Updated with the system presets shipped in this release.")
        outcome["restored"].append(preset.name)
    return outcome
