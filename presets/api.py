"""The presets REST API: the seed's contract under /api/presets/.

The hot endpoints (list, get, merge) build plain dicts from ``.values()`` rather than
going through serializers, which cost 2-3x here; serializers only describe the schema.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from itertools import islice
from typing import Any
from urllib.parse import urlencode

import orjson
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import JSON_OPTIONS, ApiError, JSONBodyParser, PayloadTooLarge, fast_json, invalid, parse_json
from engines.catalogue import for_engine
from engines.checks import check_grid, merge_for_engine
from presets import serializers
from presets.diff import diff_contents
from presets.exchange import (
    MAX_IMPORT_SIZE,
    download_response,
    dump,
    export_bundle,
    is_bundle,
    parse_document,
    preset_download,
)
from presets.filters import PresetFilter
from presets.merging import MergeStrategy
from presets.models import (
    MAX_NOTE_LENGTH,
    SYSTEM_READ_ONLY,
    NameInUse,
    NameTaken,
    OnConflict,
    ParameterPreset,
    PresetListing,
    PresetRevision,
    ReadOnlyPreset,
    engine_errors,
    merge_input,
)
from presets.validators import (
    RUNTIMES,
    Problem,
    change_note,
    describe_type,
    name_problems,
    parse_id,
    preset_fields,
)

FIELDS = serializers.PRESET_FIELDS
SOURCES = serializers.SOURCES  # API field -> model field, where they differ
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
MAX_PAGE = 1_000_000  # keeps the offset inside the database's 64-bit integers
MAX_ID = 2**63 - 1
MAX_VERSION = 2**31 - 1

ERRORS = {
    400: OpenApiResponse(serializers.ErrorSerializer, description="Invalid input: every problem with its path."),
    401: OpenApiResponse(serializers.ErrorSerializer, description="Not logged in."),
    403: OpenApiResponse(serializers.ErrorSerializer, description="Not allowed (system presets are read-only)."),
    404: OpenApiResponse(serializers.ErrorSerializer, description="No such preset."),
}
VERSION_PARAMETER = OpenApiParameter(
    "version", int, OpenApiParameter.PATH, description="A version number of the preset (1, 2, …)."
)
HISTORY_PARAMETER = OpenApiParameter(
    "history", bool, description="Include each preset's versions, oldest first (`true` or `false`, the default)."
)


def represent(row: dict[str, Any]) -> dict[str, Any]:
    """A preset row from ``.values(*FIELDS)`` as the API shows it: any-engine is ``null``."""
    row["runtime"] = row["runtime"] or None
    return row


# The columns list_page reads for a listed preset, in FIELDS order (SOURCES maps the API's names).
# JSON columns are read as their stored text and embedded in the response as they are: parsing
# and re-encoding 20,000 JSON values was most of the time of a 10,000-preset list.
_LIST_COLUMNS = tuple(SOURCES.get(field, field) for field in FIELDS)


def _listed(found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """list_page's rows as the API shows presets (``represent``'s rule for any-engine included).

    Written out rather than ``dict(zip(FIELDS, row))``: a third of the time for a 100-row page.
    tests/presets/test_api_list.py checks the keys against FIELDS and the values against a
    preset's own endpoint."""
    fragment = orjson.Fragment
    return [
        {
            "id": id_,
            "name": name,
            "description": description,
            "category": category,
            "runtime": runtime or None,
            "is_system": is_system,
            "parameters": fragment(parameters),
            "metadata": fragment(metadata),
            "created_at": created_at,
            "updated_at": updated_at,
            "version": version,
        }
        for (
            id_,
            name,
            description,
            category,
            runtime,
            is_system,
            parameters,
            metadata,
            created_at,
            updated_at,
            version,
        ) in found
    ]


class ListedJSON:
    """Each listed preset's JSON text, kept per process under what identifies its content.

    A list reads, per preset, only its id, version and update time (key-based expiry, as Rails'
    cache keys do): every change of a preset's content goes through ``ParameterPreset.save``,
    which moves ``updated_at`` (and ``current_version`` when the content changed), so a changed
    preset has a new key and the old text is never served for it. Reading the eleven columns
    and writing them as JSON was two thirds of a 100-row list request. A page with any preset
    not known here is read and written whole, as it is now in the database.

    Only what writes a preset's row without ``save`` (``QuerySet.update``, raw SQL) could leave
    a listed preset stale; the app never does, and tests clear this between them (a rolled-back
    test database gives out the same ids again).
    """

    KEY = ("id", "current_version", "updated_at")

    def __init__(self, size: int) -> None:
        self.size = size  # texts kept (more only while one page larger than this is)
        self._texts: dict[tuple[Any, ...], bytes] = {}
        self._lock = threading.Lock()
        self._key_at = tuple(_LIST_COLUMNS.index(column) for column in self.KEY)

    def page(self, listing: PresetListing, *, offset: int, limit: int) -> tuple[int, bytes]:
        """How many presets ``listing`` keeps, and the JSON array of its page from ``offset``."""
        presets = ParameterPreset.objects
        total, keys = presets.list_page(listing, columns=self.KEY, offset=offset, limit=limit)
        texts = [self._texts.get(key) for key in keys]
        if None in texts:
            texts = self._remember(presets.page_rows(listing, columns=_LIST_COLUMNS, offset=offset, limit=limit))
        return total, b"[" + b",".join(texts) + b"]"

    def clear(self) -> None:
        with self._lock:
            self._texts.clear()

    def __len__(self) -> int:
        return len(self._texts)

    def _remember(self, found: list[tuple[Any, ...]]) -> list[bytes]:
        texts = [orjson.dumps(preset, option=JSON_OPTIONS) for preset in _listed(found)]
        with self._lock:
            excess = len(self._texts) + len(texts) - self.size
            if excess > 0:  # the oldest go, a quarter at least, so that this is not done every time
                for key in list(islice(self._texts, max(excess, self.size // 4))):
                    del self._texts[key]
            for row, text in zip(found, texts, strict=True):
                self._texts[tuple(row[at] for at in self._key_at)] = text
        return texts


listed_json = ListedJSON(size=20_000)


def list_answer(request: HttpRequest, query: QueryDict) -> tuple[bytes, dict[str, str]]:
    """The list endpoint's JSON array (its text) and headers (X-Total-Count, and Link to the next and
    previous pages) for a query string; an API error for a bad one. Serves DRF's view and the
    fast path."""
    listing, errors = PresetFilter.listing(query)
    if listing is None:
        raise translate_validation(errors)
    page = _positive_int(query, "page", 1, MAX_PAGE)
    page_size = _positive_int(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = (page - 1) * page_size
    total, page_json = listed_json.page(listing, offset=start, limit=page_size)
    headers = {"X-Total-Count": str(total)}
    links = []
    if start + page_size < total:
        links.append(f'<{_page_url(request, query, page + 1)}>; rel="next"')
    if page > 1:
        links.append(f'<{_page_url(request, query, page - 1)}>; rel="prev"')
    if links:
        headers["Link"] = ", ".join(links)
    return page_json, headers


def _page_url(request: HttpRequest, query: QueryDict, page: int) -> str:
    """This list's URL for another page: the same query with ``page`` (last)."""
    pairs = [(key, value) for key, values in query.lists() if key != "page" for value in values]
    return request.build_absolute_uri(f"{request.path}?{urlencode([*pairs, ('page', page)])}")


def represent_preset(preset: ParameterPreset) -> dict[str, Any]:
    return represent({field: getattr(preset, SOURCES.get(field, field)) for field in FIELDS})


def represent_revision(revision: PresetRevision, current: int) -> dict[str, Any]:
    return {
        "version": revision.version,
        "event": revision.event,
        "note": revision.note,
        "created_by": revision.created_by.get_username() if revision.created_by else None,
        "created_at": revision.created_at,
        "current": revision.version == current,
        "content": revision.content,
    }


def etag_of(representation: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(representation, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _flag(request: Request, name: str) -> bool:
    """A true/false query parameter, false when absent."""
    raw = request.query_params.get(name, "")
    value = {"": False, "false": False, "0": False, "true": True, "1": True}.get(raw.lower())
    if value is None:
        raise invalid([Problem(name, f"expected true or false, got {raw[:20]!r}")])
    return value


def _positive_int(query: QueryDict, name: str, default: int, maximum: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = parse_id(raw)
    if value is None or (maximum is not None and value > maximum):
        upper = f" up to {maximum:,}" if maximum else ""
        raise invalid([Problem(name, f"expected a whole number from 1{upper}, got {raw[:20]!r}")])
    return value


@extend_schema_view(
    list=extend_schema(
        summary="List presets",
        parameters=[
            OpenApiParameter("page", int, description="1-based page number."),
            OpenApiParameter("page_size", int, description=f"Default {DEFAULT_PAGE_SIZE}, at most {MAX_PAGE_SIZE}."),
        ],
        responses={200: serializers.PresetSerializer(many=True), 400: ERRORS[400], 401: ERRORS[401]},
    ),
    retrieve=extend_schema(summary="Get one preset", responses={200: serializers.PresetSerializer, **ERRORS}),
    create=extend_schema(
        summary="Create a preset",
        description="`change_note`, if given, is kept as version 1's note.",
        request=serializers.PresetSerializer,
        responses={201: serializers.PresetSerializer, **ERRORS, 409: ERRORS[400]},
    ),
    update=extend_schema(
        summary="Replace a preset",
        description="A change records a new version, with `change_note` as its note; no change, no version.",
        request=serializers.PresetSerializer,
        responses={200: serializers.PresetSerializer, **ERRORS, 409: ERRORS[400], 412: ERRORS[400]},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a preset",
        description="A change records a new version, with `change_note` as its note; no change, no version.",
        request=serializers.PresetSerializer,
        responses={200: serializers.PresetSerializer, **ERRORS, 409: ERRORS[400], 412: ERRORS[400]},
    ),
    destroy=extend_schema(
        summary="Move a preset to the trash",
        description="It can be restored from /api/presets/trash until its `purge_after`.",
        responses={204: None, **ERRORS, 412: ERRORS[400]},
    ),
)
class PresetViewSet(viewsets.GenericViewSet):
    queryset = ParameterPreset.objects.all()
    serializer_class = serializers.PresetSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = PresetFilter
    parser_classes = [JSONBodyParser]
    # Any text, so that /api/presets/abc answers a JSON 404 rather than Django's HTML one.
    lookup_value_regex = "[^/]+"

    # --- helpers -------------------------------------------------------------------------

    def get_object(self) -> ParameterPreset:
        raw = self.kwargs["pk"]
        pk = parse_id(raw)
        preset = ParameterPreset.objects.filter(pk=pk).first() if pk else None
        if preset is None:
            raise ApiError(status.HTTP_404_NOT_FOUND, f"Preset {raw[:40]} not found")
        return preset

    def _changeable(self, preset: ParameterPreset) -> None:
        if preset.is_system:
            raise ApiError(status.HTTP_403_FORBIDDEN, SYSTEM_READ_ONLY)
        if not preset.can_change(self.request.user):
            raise ApiError(status.HTTP_403_FORBIDDEN, "Only the preset's creator or staff can change it.")

    def _check_if_match(self, preset: ParameterPreset) -> None:
        """Refuse a lost update: the client's If-Match must name the version it read."""
        if_match = self.request.headers.get("If-Match")
        if not if_match or if_match.strip() == "*":
            return
        current = etag_of(represent_preset(preset))
        offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
        if current not in offered:
            raise ApiError(
                status.HTTP_412_PRECONDITION_FAILED,
                "The preset changed since you read it (If-Match does not match its ETag); read it again.",
            )

    def _check_name_free(self, name: str, exclude: int | None = None) -> None:
        taken = ParameterPreset.objects.named(name).exclude(pk=exclude).first()
        if taken is not None:
            raise ApiError(
                status.HTTP_409_CONFLICT,
                f'A preset named "{taken.name}" already exists (id {taken.pk}).',
                [Problem("name", f'"{taken.name}" is taken (id {taken.pk}); names ignore case and spaces')],
            )

    def _respond(self, preset: ParameterPreset, status_code: int = 200, warned: bool = False) -> Response:
        representation = represent_preset(preset)
        headers = {"ETag": etag_of(representation)}
        if warned and (found := preset.engine_warnings):
            # Only on a write, and only when there is something to say: the seed's shape otherwise.
            representation = {**representation, "warnings": [finding.as_dict() for finding in found]}
        return Response(representation, status=status_code, headers=headers)

    # --- the contract ----------------------------------------------------------------------

    def list(self, request: Request) -> Response:
        # Here for the browsable API and ?format=: they need the presets themselves (the
        # browsable API shows its filter form only for a list), not the JSON text.
        page_json, headers = list_answer(request, request.query_params)
        return Response(orjson.loads(page_json), headers=headers)

    def retrieve(self, request: Request, pk: str) -> Response:
        return self._respond(self.get_object())

    def create(self, request: Request) -> Response:
        fields, problems = preset_fields(request.data)
        note, note_problems = change_note(request.data, limit=MAX_NOTE_LENGTH)
        problems += note_problems
        if problems:
            raise invalid(problems)
        _check_engine(fields["parameters"], fields["runtime"])
        self._check_name_free(fields["name"])
        preset = ParameterPreset(**fields, created_by=request.user)
        try:
            preset.save(by=request.user, note=note)
        except IntegrityError:  # a concurrent create took the name between check and insert
            self._check_name_free(fields["name"])
            raise
        return self._respond(preset, status.HTTP_201_CREATED, warned=True)

    def update(self, request: Request, pk: str) -> Response:
        return self._write(partial=False)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self._write(partial=True)

    def _write(self, *, partial: bool) -> Response:
        fields, problems = preset_fields(self.request.data, partial=partial)
        note, note_problems = change_note(self.request.data, limit=MAX_NOTE_LENGTH)
        problems += note_problems
        with transaction.atomic():
            preset = self.get_object()
            self._changeable(preset)
            self._check_if_match(preset)
            if problems:
                raise invalid(problems)
            _check_engine(fields.get("parameters", preset.parameters), fields.get("runtime", preset.runtime))
            if "name" in fields:
                self._check_name_free(fields["name"], exclude=preset.pk)
            for field, value in fields.items():
                setattr(preset, field, value)
            preset.save(by=self.request.user, note=note)
        return self._respond(preset, warned=True)

    def destroy(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            preset = self.get_object()
            self._changeable(preset)
            self._check_if_match(preset)
            preset.trash(by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Copy a preset into a new user preset",
        request=None,
        responses={201: serializers.PresetSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def duplicate(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            copy = self.get_object().duplicate(by=request.user)
        return self._respond(copy, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Merge presets in the given order",
        request=serializers.MergeRequestSerializer,
        responses={200: serializers.MergeResultSerializer, **ERRORS},
    )
    @action(detail=False, methods=["post"])
    def merge(self, request: Request) -> Response:
        # Served by `merge_endpoint` below for API clients; this action answers the browsable
        # API and describes the endpoint in the schema.
        return Response(merge_result(request.data))

    @extend_schema(
        summary="Import a preset or a bundle",
        parameters=[OpenApiParameter("on_conflict", str, enum=[c.value for c in OnConflict])],
        request={
            "multipart/form-data": serializers.ImportUploadSerializer,
            "application/json": serializers.ExportDocumentSerializer,
        },
        responses={
            201: serializers.PresetSerializer(many=True),
            **ERRORS,
            409: ERRORS[400],
            413: ERRORS[400],
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[JSONBodyParser, MultiPartParser, FormParser],
        filter_backends=[],
    )
    def import_presets(self, request: Request) -> Response:
        on_conflict = request.query_params.get("on_conflict", OnConflict.FAIL)
        if on_conflict not in OnConflict.values:
            raise invalid(
                [Problem("on_conflict", f"expected one of {', '.join(OnConflict.values)}, got {on_conflict[:20]!r}")]
            )
        document = _import_document(request)
        contents, problems = parse_document(document)
        for index, content in enumerate(contents):
            where = f"presets[{index}]" if is_bundle(document) else "preset"
            if content.get("parameters") and content.get("runtime"):
                problems += [
                    Problem(f"{where}.parameters.{finding.path}", finding.message)
                    for finding in engine_errors(content["parameters"], content["runtime"])
                ]
        if problems:
            raise invalid(problems, f"Invalid preset document: {problems[0]}" if len(problems) == 1 else "")
        try:
            with transaction.atomic():
                imported = ParameterPreset.objects.import_contents(contents, on_conflict=on_conflict, by=request.user)
        except NameTaken as error:
            where = "presets[{}].name" if is_bundle(document) else "preset.name"
            raise ApiError(
                status.HTTP_409_CONFLICT,
                "Already taken: "
                + ", ".join(f'"{preset.name}" (id {preset.pk})' for _, preset in error.clashes)
                + "; nothing was imported. Use on_conflict=rename or on_conflict=replace.",
                [Problem(where.format(index), f'"{preset.name}" exists') for index, preset in error.clashes],
            ) from None
        except (ReadOnlyPreset, PermissionDenied) as error:
            raise ApiError(status.HTTP_403_FORBIDDEN, str(error)) from None
        if is_bundle(document):
            return Response([represent_preset(preset) for preset in imported], status=status.HTTP_201_CREATED)
        return self._respond(imported[0], status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download one preset as a document",
        parameters=[HISTORY_PARAMETER],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponse:
        history = _flag(request, "history")
        preset = self.get_object()
        return preset_download(preset, history=history)

    @extend_schema(
        summary="Download a bundle of presets: those matching the list's filters, or ?ids=1,2",
        operation_id="presets_export_bundle",
        parameters=[
            OpenApiParameter("ids", str, description="Comma-separated ids; overrides the filters."),
            HISTORY_PARAMETER,
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, 400: ERRORS[400], 404: ERRORS[404]},
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export_many(self, request: Request) -> HttpResponse:
        history = _flag(request, "history")
        raw_ids = request.query_params.get("ids")
        if raw_ids:
            ids = _id_list(raw_ids)
            presets = list(ParameterPreset.objects.filter(pk__in=ids))
            missing = sorted(set(ids) - {preset.pk for preset in presets})
            if missing:
                raise ApiError(status.HTTP_404_NOT_FOUND, f"Presets not found: {', '.join(map(str, missing))}")
            order = {preset_id: index for index, preset_id in enumerate(ids)}
            presets.sort(key=lambda preset: order[preset.pk])
        else:
            presets = list(self.filter_queryset(self.get_queryset()))
        return download_response(dump(export_bundle(presets, history=history)), "presets.json")

    # --- history ---------------------------------------------------------------------------

    def _revision(self, preset: ParameterPreset, raw: str) -> PresetRevision:
        number = parse_id(raw)
        revision = None
        if number is not None and number <= MAX_VERSION:
            revision = preset.revisions.select_related("created_by").filter(version=number).first()
        if revision is None:
            raise ApiError(
                status.HTTP_404_NOT_FOUND,
                f"Preset {preset.pk} has no version {raw[:20]}; {_versions_held(preset)}.",
            )
        return revision

    @extend_schema(
        summary="List a preset's versions, newest first",
        responses={200: serializers.PresetVersionSerializer(many=True), 401: ERRORS[401], 404: ERRORS[404]},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def versions(self, request: Request, pk: str) -> Response:
        preset = self.get_object()
        revisions = preset.revisions.select_related("created_by").order_by("-version")
        return Response([represent_revision(revision, preset.current_version) for revision in revisions])

    @extend_schema(
        summary="Get one version of a preset",
        parameters=[VERSION_PARAMETER],
        responses={
            200: serializers.PresetVersionSerializer,
            401: ERRORS[401],
            404: OpenApiResponse(serializers.ErrorSerializer, description="No such preset, or no such version."),
        },
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)")
    def version_detail(self, request: Request, pk: str, version: str) -> Response:
        preset = self.get_object()
        return Response(represent_revision(self._revision(preset, version), preset.current_version))

    @extend_schema(
        summary="Make an earlier version current again",
        description=(
            "Its content becomes a new version (history only grows), with `change_note` as its note "
            '(by default "Restored version n."). The creator or staff only; send `If-Match` to refuse lost updates.'
        ),
        parameters=[VERSION_PARAMETER],
        request=serializers.ChangeNoteSerializer,
        responses={
            200: serializers.PresetSerializer,
            **ERRORS,
            404: OpenApiResponse(serializers.ErrorSerializer, description="No such preset, or no such version."),
            409: OpenApiResponse(serializers.ErrorSerializer, description="Another preset has that version's name."),
            412: ERRORS[400],
        },
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[^/]+)/restore")
    def restore_version(self, request: Request, pk: str, version: str) -> Response:
        note, problems = change_note(request.data, limit=MAX_NOTE_LENGTH)
        if not isinstance(request.data, dict):
            problems.append(
                Problem("", f'expected an object like {{"change_note": "…"}}, got {describe_type(request.data)}')
            )
        with transaction.atomic():
            preset = self.get_object()
            self._changeable(preset)
            self._check_if_match(preset)
            if problems:
                raise invalid(problems)
            revision = self._revision(preset, version)
            content = revision.content
            runtime = content.get("runtime")
            if runtime and (found := engine_errors(content.get("parameters", {}), runtime)):
                raise ApiError(
                    status.HTTP_409_CONFLICT,
                    f"The {runtime} engine now refuses version {revision.version}'s parameters.",
                    [Problem(f"parameters.{finding.path}", finding.message) for finding in found],
                )
            try:
                with transaction.atomic():
                    preset.restore_version(revision.version, by=request.user, note=note)
            except (NameInUse, IntegrityError):
                name = content["name"]
                raise ApiError(
                    status.HTTP_409_CONFLICT,
                    f"Another preset is named “{name}” now, as version {revision.version} was; rename that one first.",
                    [Problem("name", f'"{name}" is taken by another preset')],
                ) from None
        return self._respond(preset, warned=True)

    @extend_schema(
        summary="What changed between two versions of a preset",
        parameters=[
            OpenApiParameter("from", int, required=True, description="The earlier version's number."),
            OpenApiParameter("to", int, description="The later version's number; the current version if omitted."),
        ],
        responses={
            200: serializers.PresetDiffSerializer,
            400: ERRORS[400],
            401: ERRORS[401],
            404: OpenApiResponse(serializers.ErrorSerializer, description="No such preset, or no such version."),
        },
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str) -> Response:
        preset = self.get_object()
        problems: list[Problem] = []
        numbers: dict[str, int] = {}
        for name, default in (("from", None), ("to", preset.current_version)):
            raw = request.query_params.get(name, "")
            number = parse_id(raw)
            if number is not None and number <= MAX_VERSION:
                numbers[name] = number
            elif raw == "" and default is not None:
                numbers[name] = default
            elif raw == "":
                problems.append(Problem(name, f"this parameter is required: a version number, e.g. {name}=1"))
            else:
                problems.append(Problem(name, f"expected a version number (a whole number from 1), got {raw[:20]!r}"))
        if problems:
            raise invalid(problems)
        found = {revision.version: revision for revision in preset.revisions.filter(version__in=numbers.values())}
        missing = {name: number for name, number in numbers.items() if number not in found}
        if missing:
            shown = " or ".join(map(str, sorted(set(missing.values()))))
            raise ApiError(
                status.HTTP_404_NOT_FOUND,
                f"Preset {preset.pk} has no version {shown}; {_versions_held(preset)}.",
                [Problem(name, f"no version {number}") for name, number in missing.items()],
            )
        difference = diff_contents(found[numbers["from"]].content, found[numbers["to"]].content)
        return Response(
            {"from": numbers["from"], "to": numbers["to"], "summary": difference.summary(), **difference.as_dict()}
        )

    # --- the trash -------------------------------------------------------------------------

    @extend_schema(
        summary="List the presets in the trash you may restore (yours; staff: all)",
        responses={200: serializers.TrashedPresetSerializer(many=True), 401: ERRORS[401]},
    )
    @action(detail=False, methods=["get"], url_path="trash", filter_backends=[])
    def trash(self, request: Request) -> Response:
        trashed = ParameterPreset.everything.filter(deleted_at__isnull=False).select_related("deleted_by")
        if not request.user.is_staff:
            trashed = trashed.filter(created_by=request.user)
        return Response(
            [
                {
                    "id": preset.pk,
                    "name": preset.name,
                    "deleted_at": preset.deleted_at,
                    "deleted_by": preset.deleted_by.get_username() if preset.deleted_by else None,
                    "purge_after": preset.purge_after,
                    "version": preset.current_version,
                }
                for preset in trashed.order_by("-deleted_at", "-pk")
            ]
        )

    @extend_schema(
        summary="Bring a preset back from the trash",
        description="Under its own name, or under `name` when another preset has taken it meanwhile.",
        request=serializers.UntrashSerializer,
        responses={
            200: serializers.PresetSerializer,
            **ERRORS,
            403: OpenApiResponse(serializers.ErrorSerializer, description="Not its creator or staff."),
            404: OpenApiResponse(serializers.ErrorSerializer, description="No such preset in the trash."),
            409: OpenApiResponse(serializers.ErrorSerializer, description="The name is taken; send another `name`."),
        },
    )
    @action(detail=False, methods=["post"], url_path=r"trash/(?P<pk>[^/]+)/restore")
    def untrash(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            number = parse_id(pk)
            preset = ParameterPreset.everything.filter(pk=number, deleted_at__isnull=False).first() if number else None
            if preset is None:
                raise ApiError(status.HTTP_404_NOT_FOUND, f"Preset {pk[:40]} is not in the trash")
            if not preset.can_change(request.user):
                raise ApiError(status.HTTP_403_FORBIDDEN, "Only the preset's creator or staff can restore it.")
            name = _untrash_name(request.data)
            try:
                with transaction.atomic():
                    preset.untrash(by=request.user, name=name)
            except (NameInUse, IntegrityError):
                wanted = (name or preset.name).strip()
                raise ApiError(
                    status.HTTP_409_CONFLICT,
                    f'Another preset is named “{wanted}” now; send {{"name": "…"}} to restore it under a new name.',
                    [Problem("name", f'"{wanted}" is taken; send another name')],
                ) from None
        return self._respond(preset)


def _versions_held(preset: ParameterPreset) -> str:
    if preset.current_version <= 1:
        return f"it has only version {preset.current_version}" if preset.current_version else "it has no versions"
    return f"its versions are 1 to {preset.current_version}"


def _untrash_name(data: Any) -> str | None:
    """The optional new ``name`` of a preset restored from the trash, checked."""
    if not isinstance(data, dict):
        raise invalid([Problem("", f'expected an object like {{"name": "…"}}, got {describe_type(data)}')])
    if data.get("name") is None:
        return None
    name, problems = name_problems(data["name"])
    if problems:
        raise invalid([problem.under("name") for problem in problems])
    return name


def _id_list(raw: str) -> list[int]:
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    ids = [parse_id(part) for part in parts]
    if not parts or None in ids:
        raise invalid([Problem("ids", f"expected comma-separated preset ids, got {raw[:40]!r}")])
    return list(dict.fromkeys(ids))


def _merge_request(data: Any) -> tuple[list[int], MergeStrategy, str]:
    """The merge body, checked: ``{"preset_ids": [3, 1], "merge_strategy": "union", "runtime": null}``."""
    if not isinstance(data, dict):
        raise invalid([Problem("", 'expected an object like {"preset_ids": [3, 1], "merge_strategy": "union"}')])
    problems: list[Problem] = []
    ids = data.get("preset_ids")
    if ids is None:
        problems.append(Problem("preset_ids", "this field is required: a list of preset ids, in merge order"))
    elif not isinstance(ids, list):
        problems.append(Problem("preset_ids", "expected a list of preset ids"))
    elif not ids:
        problems.append(Problem("preset_ids", "the list is empty; select at least one preset"))
    else:
        seen: dict[int, int] = {}
        for index, preset_id in enumerate(ids):
            if type(preset_id) is not int or not 1 <= preset_id <= MAX_ID:
                problems.append(
                    Problem(f"preset_ids[{index}]", f"expected a preset id, got {json.dumps(preset_id)[:40]}")
                )
            elif preset_id in seen:
                problems.append(
                    Problem(
                        f"preset_ids[{index}]", f"preset {preset_id} is repeated (first at index {seen[preset_id]})"
                    )
                )
            else:
                seen[preset_id] = index
    raw_strategy = data.get("merge_strategy") or MergeStrategy.UNION
    try:
        strategy = MergeStrategy(raw_strategy)
    except (ValueError, TypeError):
        strategy = MergeStrategy.UNION
        problems.append(
            Problem(
                "merge_strategy",
                f"unknown strategy {json.dumps(raw_strategy)[:40]}; expected one of "
                + ", ".join(s.value for s in MergeStrategy),
            )
        )
    runtime = data.get("runtime") or ""
    if runtime not in ("", *RUNTIMES):
        problems.append(Problem("runtime", f'expected "sglang", "vllm" or null, got {json.dumps(runtime)[:40]}'))
    if problems:
        raise invalid(problems)
    return ids, strategy, runtime


def _import_document(request: Request) -> Any:
    """The uploaded file (multipart ``file``) or the JSON body, parsed; 413 over 1 MiB."""
    upload = request.FILES.get("file") if request.content_type.startswith("multipart/") else None
    if upload is not None:
        if upload.size > MAX_IMPORT_SIZE:
            raise PayloadTooLarge(f"The file is {upload.size:,} bytes; at most 1 MiB (1,048,576 bytes) is accepted.")
        return parse_json(upload.read())
    if request.content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        raise invalid([Problem("file", "no file was uploaded; send it in the multipart field 'file'")])
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_IMPORT_SIZE:
        raise PayloadTooLarge("The document is over 1 MiB (1,048,576 bytes).")
    return request.data


def _check_engine(parameters: dict[str, Any], runtime: str) -> None:
    """400 for values the preset's engine would refuse (unknown flags are only warnings)."""
    found = engine_errors(parameters, runtime) if runtime else []
    if found:
        raise invalid([Problem(f"parameters.{finding.path}", finding.message) for finding in found])


def merge_result(data: Any) -> dict[str, Any]:
    """The merge endpoint's answer to a request body, or an ApiError."""
    ids, strategy, runtime = _merge_request(data)
    found = ParameterPreset.objects.merge_rows(ids)
    missing = [preset_id for preset_id in ids if preset_id not in found]
    if missing:
        raise ApiError(
            status.HTTP_404_NOT_FOUND,
            f"Preset{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} not found",
            [Problem(f"preset_ids[{ids.index(m)}]", f"no preset with id {m}") for m in missing],
        )
    return _merged(tuple(found[i] for i in ids), strategy, runtime)


@lru_cache(maxsize=256)
def _merged(presets: tuple[tuple[str, str], ...], strategy: MergeStrategy, runtime: str) -> dict[str, Any]:
    """The merge answer for presets given as (name, parameters as stored), in order.

    It depends on nothing else (the engines' catalogues are code), so the same merge asked again,
    by anyone, is answered from here: an edited preset is another text, so another key. Shared:
    the endpoints only serialize it.
    """
    inputs = [merge_input(name, text) for name, text in presets]
    catalogue = for_engine(runtime) if runtime else None
    result = merge_for_engine(inputs, strategy, catalogue)
    answer = result.as_dict()
    if catalogue is not None:  # with an engine named, what it would say of the merged grid
        answer["warnings"] = [finding.as_dict() for finding in check_grid(result.parameters, catalogue)]
    return answer


@fast_json(PresetViewSet.as_view({"post": "merge"}))
def merge_endpoint(request: HttpRequest, data: Any) -> dict[str, Any]:
    """POST /api/presets/merge, the hottest endpoint: see autotuner.http.fast_json."""
    return merge_result(data)


@fast_json(PresetViewSet.as_view({"get": "list", "post": "create"}), method="GET")
def list_endpoint(request: HttpRequest) -> tuple[orjson.Fragment, dict[str, str]]:
    """GET /api/presets/, the most used read; creating a preset goes to DRF."""
    page_json, headers = list_answer(request, request.GET)
    return orjson.Fragment(page_json), headers
