"""The preset exchange format: what export writes and import reads.

One preset: ``{"version": "1.0", "preset": {name, description, category, runtime,
parameters, metadata}}``; several: ``{"version": "1.0", "presets": [...]}``.

Exported with its history, a preset also carries ``"history"``, its versions oldest first:
``[{"version": 1, "event": "created", "note": "", "created_by": "ada", "created_at":
"2025-01-31T12:00:00+00:00", "content": {name, description, …}}, …]``. A document without
``history`` is what it was before histories existed, and still reads the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any
from urllib.parse import quote

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import content_disposition_header
from django.utils.text import slugify

from presets.models import (
    MAX_NOTE_LENGTH,
    NameTaken,
    OnConflict,
    ParameterPreset,
    PresetRevision,
    ReadOnlyPreset,
    RevisionEvent,
)
from presets.naming import name_key
from presets.validators import Problem, describe_type, note_problems, preset_fields

FORMAT_VERSION = "1.0"
MAX_IMPORT_SIZE = 1024 * 1024
MAX_VERSION = 2**31 - 1  # the revision's version column is a 32-bit integer on PostgreSQL
MAX_USERNAME_LENGTH = 150
# An import is one request: each preset is a few writes and each version a row, and a file under
# the size limit holds tens of thousands of either, which would hold a worker past its timeout.
# An export of more is imported in parts, or without its histories.
MAX_IMPORT_PRESETS = 100
MAX_IMPORT_VERSIONS = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def export_document(preset: ParameterPreset, *, history: bool = False) -> dict[str, Any]:
    if history:
        prefetch_related_objects([preset], _revisions_oldest_first())
    return {"version": FORMAT_VERSION, "preset": _exported(preset, history)}


def export_bundle(presets: Iterable[ParameterPreset], *, history: bool = False) -> dict[str, Any]:
    presets = list(presets)
    if history:
        prefetch_related_objects(presets, _revisions_oldest_first())
    return {"version": FORMAT_VERSION, "presets": [_exported(preset, history) for preset in presets]}


def _revisions_oldest_first() -> Prefetch:
    return Prefetch("revisions", queryset=PresetRevision.objects.select_related("created_by").order_by("version"))


def _as_exported(content: dict[str, Any]) -> dict[str, Any]:
    """A preset's content as a document shows it: an any-engine preset's runtime is null, as the
    API writes it (stored, it is "")."""
    return {**content, "runtime": content.get("runtime") or None}


def _exported(preset: ParameterPreset, history: bool) -> dict[str, Any]:
    content = _as_exported(preset.content())
    if not history:
        return content
    return {**content, "history": [exported_revision(revision) for revision in preset.revisions.all()]}


def exported_revision(revision: PresetRevision) -> dict[str, Any]:
    return {
        "version": revision.version,
        "event": revision.event,
        "note": revision.note,
        # An imported version goes on naming the author its file named, not whoever imported it.
        "created_by": revision.author_in_file or (revision.created_by.get_username() if revision.created_by else None),
        "created_at": revision.created_at.isoformat(),
        "content": _as_exported(revision.content),
    }


def dump(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False).encode() + b"\n"


def download_response(body: bytes, filename: str, unicode_filename: str | None = None) -> HttpResponse:
    """A JSON file download. ``unicode_filename``, when given, is sent as RFC 6266's ``filename*``
    for browsers that read it, next to the ASCII ``filename`` for those that do not."""
    response = HttpResponse(body, content_type="application/json")
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    if unicode_filename and unicode_filename != filename:
        disposition += f"; filename*=UTF-8''{quote(unicode_filename)}"
    response["Content-Disposition"] = disposition
    return response


def export_filename(name: str) -> str:
    """``preset-high-throughput.json``: a lowercase ASCII slug of the name."""
    return f"preset-{slugify(name) or 'unnamed'}.json"


def export_unicode_filename(name: str) -> str | None:
    """For a name with non-ASCII letters, the slug that keeps them: ``preset-größe-ü.json``."""
    if name.isascii():
        return None
    return f"preset-{slugify(name, allow_unicode=True) or 'unnamed'}.json"


def preset_download(preset: ParameterPreset, *, history: bool = False) -> HttpResponse:
    return download_response(
        dump(export_document(preset, history=history)),
        export_filename(preset.name),
        export_unicode_filename(preset.name),
    )


def _version_problem(version: object) -> str | None:
    if version is None:
        return f'this field is required (this server writes "{FORMAT_VERSION}")'
    text = str(version) if isinstance(version, str | int | float) and not isinstance(version, bool) else None
    if text is None or not (text == "1" or text.startswith("1.")):
        return f"unsupported version {json.dumps(version)[:40]}; this server reads version 1.x documents"
    return None


def parse_document(document: object) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The presets an import document holds, each normalised, and every problem with its JSON path.

    Paths are rooted in the document: ``preset.parameters.tp-size[0]``, ``presets[2].name``,
    ``presets[1].history[0].version``. A preset that carries a history has it, checked, under
    ``"history"`` (see parse_history) next to its content fields.
    """
    if not isinstance(document, dict):
        return [], [
            Problem("", f'expected an object with "version" and "preset" or "presets", got {describe_type(document)}')
        ]
    problems: list[Problem] = []
    version_problem = _version_problem(document.get("version"))
    if version_problem:
        problems.append(Problem("version", version_problem))

    if "preset" in document and "presets" in document:
        # At the second of the two: every problem has a place a client can point at.
        return [], [*problems, Problem("presets", 'give either "preset" (one) or "presets" (a list), not both')]
    if "preset" in document:
        items, paths = [document["preset"]], ["preset"]
    elif "presets" in document:
        if not isinstance(document["presets"], list):
            return [], [*problems, Problem("presets", f"expected a list, got {describe_type(document['presets'])}")]
        if not document["presets"]:
            return [], [*problems, Problem("presets", "the list is empty; nothing to import")]
        items = document["presets"]
        paths = [f"presets[{index}]" for index in range(len(items))]
    else:
        return [], [*problems, Problem("", 'expected "preset" (one preset) or "presets" (a list of presets)')]

    too_many = _too_many(items, paths)
    if too_many:
        return [], [*problems, too_many]

    contents: list[dict[str, Any]] = []
    first_path_of: dict[str, str] = {}
    for item, path in zip(items, paths, strict=True):
        fields, found = preset_fields(item)
        problems += [problem.under(path) for problem in found]
        if isinstance(item, Mapping) and item.get("history") is not None:
            fields["history"], history_problems = parse_history(item["history"])
            problems += [problem.under(f"{path}.history") for problem in history_problems]
        name = fields.get("name")
        if name and not found:
            key = name.casefold()
            if key in first_path_of:
                problems.append(Problem(f"{path}.name", f'"{name}" is already used by {first_path_of[key]}'))
            first_path_of.setdefault(key, path)
        contents.append(fields)
    return contents, problems


def _too_many(items: list[Any], paths: list[str]) -> Problem | None:
    """Whether a document holds more presets, or more versions in all, than one import takes."""
    if len(items) > MAX_IMPORT_PRESETS:
        return Problem("presets", f"at most {MAX_IMPORT_PRESETS} presets are imported at once, got {len(items):,}")
    versions = 0
    for item, path in zip(items, paths, strict=True):
        history = item.get("history") if isinstance(item, Mapping) else None
        versions += len(history) if isinstance(history, list) else 0
        if versions > MAX_IMPORT_VERSIONS:
            return Problem(
                f"{path}.history",
                f"at most {MAX_IMPORT_VERSIONS:,} versions are imported at once, in all histories; "
                "import fewer presets at a time, or this one without its history",
            )
    return None


def is_bundle(document: dict[str, Any]) -> bool:
    return "presets" in document


def parse_history(raw: object) -> tuple[list[dict[str, Any]], list[Problem]]:
    """A preset's exported history, checked: its entries normalised, and every problem.

    Each entry becomes ``{"version", "event", "note", "created_by", "created_at", "content"}``:
    ``created_by`` a username or None, ``created_at`` an aware datetime or None (unknown),
    ``event`` "created" for the first entry and "edited" after it when the file gives none.
    Paths are relative to the list: ``[2].content.parameters.tp-size[0]``.
    """
    if not isinstance(raw, list):
        return [], [Problem("", f"expected a list of versions, oldest first, got {describe_type(raw)}")]
    entries: list[dict[str, Any]] = []
    problems: list[Problem] = []
    previous = 0
    for index, item in enumerate(raw):
        entry, found = _history_entry(item, index, previous)
        problems += [problem.under(f"[{index}]") for problem in found]
        if isinstance(entry.get("version"), int):
            previous = entry["version"]
        entries.append(entry)
    return entries, problems


def _history_entry(item: object, index: int, previous: int) -> tuple[dict[str, Any], list[Problem]]:
    if not isinstance(item, Mapping):
        return {}, [Problem("", f'expected an object with "version" and "content", got {describe_type(item)}')]
    entry: dict[str, Any] = {}
    problems: list[Problem] = []

    version = item.get("version")
    if version is None:
        problems.append(Problem("version", "this field is required: a whole number from 1"))
    elif type(version) is not int or not 1 <= version <= MAX_VERSION:
        problems.append(Problem("version", f"expected a whole number from 1, got {json.dumps(version)[:40]}"))
    elif version <= previous:
        problems.append(
            Problem("version", f"expected a number above {previous} (versions increase, oldest first), got {version}")
        )
        entry["version"] = version
    else:
        entry["version"] = version

    event = item.get("event")
    if event is None:
        entry["event"] = RevisionEvent.CREATED if index == 0 else RevisionEvent.EDITED
    elif event in RevisionEvent.values:
        entry["event"] = event
    else:
        problems.append(
            Problem("event", f"expected one of {', '.join(RevisionEvent.values)}, got {json.dumps(event)[:40]}")
        )

    entry["note"], found = note_problems(item.get("note"), limit=MAX_NOTE_LENGTH)
    problems += [problem.under("note") for problem in found]

    created_by = item.get("created_by")
    if created_by is not None and not isinstance(created_by, str):
        problems.append(Problem("created_by", f"expected a username or null, got {describe_type(created_by)}"))
    elif created_by is not None and (len(created_by) > MAX_USERNAME_LENGTH or _CONTROL.search(created_by)):
        problems.append(
            Problem("created_by", f"expected a username (at most {MAX_USERNAME_LENGTH} printable characters)")
        )
    else:
        entry["created_by"] = created_by or None

    entry["created_at"], problem = _timestamp(item.get("created_at"))
    if problem:
        problems.append(Problem("created_at", problem))

    if "content" not in item:
        problems.append(Problem("content", "this field is required: the preset as it was in this version"))
    else:
        entry["content"], found = preset_fields(item["content"])
        problems += [problem.under("content") for problem in found]
    return entry, problems


def _timestamp(raw: object) -> tuple[Any, str]:
    """An aware datetime from ISO 8601 text (UTC when it names no offset), or why not."""
    if raw is None:
        return None, ""
    expected = "expected an ISO 8601 date and time like 2025-01-31T12:00:00Z"
    if not isinstance(raw, str):
        return None, f"{expected}, got {describe_type(raw)}"
    try:
        moment = parse_datetime(raw.strip())
    except ValueError:  # well-formed, but no such moment: month 13, hour 25
        moment = None
    if moment is None:
        return None, f"{expected}, got {json.dumps(raw)[:40]}"
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    try:  # kept in UTC: 9999-12-31T23:59:59-14:00 is past the last moment a datetime holds
        return moment.astimezone(UTC), ""
    except OverflowError:
        return None, f"{json.dumps(raw)[:40]} is outside the years 1 to 9999 once moved to UTC"


@transaction.atomic
def import_contents(contents: list[dict[str, Any]], *, on_conflict: str, by: Any) -> list[ParameterPreset]:
    """Create presets from validated contents, all or none; name clashes resolved per ``on_conflict``.

    A content may carry ``history`` (exchange.parse_history's entries, oldest first). A new
    preset (no clash, or renamed) gets those versions as they were, with their numbers,
    events, notes and times, each credited to ``by`` (who imported it), the author the file names
    kept as text (``author_in_file``): a file never credits a local user;
    when its own content differs from the last of them, one more version ("imported")
    follows. A replaced preset keeps its own history and gets one "imported" version (none
    when nothing changed): the file's history is not merged into it.

    Raises NameTaken (fail), ReadOnlyPreset or PermissionDenied (replace of a preset ``by`` may not change).
    """
    on_conflict = OnConflict(on_conflict)
    contents = [dict(content) for content in contents]  # the caller's dicts keep their history
    histories = [content.pop("history", None) or [] for content in contents]
    keys = [name_key(content["name"]) for content in contents]
    existing = {preset.name_key: preset for preset in ParameterPreset.objects.filter(name_key__in=keys)}
    clashes = [(index, existing[key]) for index, key in enumerate(keys) if key in existing]
    if clashes and on_conflict == OnConflict.FAIL:
        raise NameTaken(clashes)
    if on_conflict == OnConflict.REPLACE:
        for _, preset in clashes:
            if preset.is_system:
                raise ReadOnlyPreset(f'"{preset.name}" is a system preset and is never replaced.')
            if not preset.can_change(by):
                raise PermissionDenied(f'Only the creator of "{preset.name}" or staff can replace it.')
    importer = by.pk if by and by.is_authenticated else None
    imported: list[ParameterPreset] = []
    for key, content, history in zip(keys, contents, histories, strict=True):
        target = existing.get(key)
        if target is not None and on_conflict == OnConflict.REPLACE:
            for field, value in content.items():
                setattr(target, field, value)
            note = "Replaced by an import; the history in the file was not merged." if history else ""
            target.save(by=by, event=RevisionEvent.IMPORTED, note=note)
            imported.append(target)
            continue
        if target is not None or ParameterPreset.objects.filter(name_key=key).exists():
            content = {**content, "name": ParameterPreset.objects.free_name(content["name"], suffix="imported")}
        preset = ParameterPreset(**content, created_by=by if by and by.is_authenticated else None)
        note = ""
        if history:
            # The row alone first (ParameterPreset.save would record it as version 1): its
            # versions are the file's. Saving it again below adds one only if it differs.
            super(ParameterPreset, preset).save()
            PresetRevision.objects.bulk_create(
                PresetRevision(
                    preset=preset,
                    version=entry["version"],
                    content=entry["content"],
                    event=entry["event"],
                    note=entry["note"],
                    created_by_id=importer,
                    author_in_file=entry["created_by"] or "",
                    created_at=entry["created_at"] or timezone.now(),
                )
                for entry in history
            )
            preset.current_version = history[-1]["version"]
            note = f"Imported; the file's preset differs from its version {preset.current_version}."
        preset.save(by=by, event=RevisionEvent.IMPORTED, note=note)
        imported.append(preset)
    return imported
