"""The presets REST API: the seed's contract under /api/presets/.

The hot endpoints (list, get, merge) build plain dicts from ``.values()`` rather than
going through serializers, which cost 2-3x here; serializers only describe the schema.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError, JSONBodyParser, PayloadTooLarge, fast_json_post, invalid, parse_json
from engines.catalogue import for_engine
from engines.checks import check_grid, merge_for_engine
from presets import serializers
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
from presets.models import SYSTEM_READ_ONLY, NameTaken, OnConflict, ParameterPreset, ReadOnlyPreset, engine_errors
from presets.validators import RUNTIMES, Problem, parse_id, preset_fields

FIELDS = serializers.PRESET_FIELDS
DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
MAX_PAGE = 1_000_000  # keeps the offset inside the database's 64-bit integers
MAX_ID = 2**63 - 1

ERRORS = {
    400: OpenApiResponse(serializers.ErrorSerializer, description="Invalid input: every problem with its path."),
    401: OpenApiResponse(serializers.ErrorSerializer, description="Not logged in."),
    403: OpenApiResponse(serializers.ErrorSerializer, description="Not allowed (system presets are read-only)."),
    404: OpenApiResponse(serializers.ErrorSerializer, description="No such preset."),
}


def represent(row: dict[str, Any]) -> dict[str, Any]:
    """A preset row from ``.values(*FIELDS)`` as the API shows it: any-engine is ``null``."""
    row["runtime"] = row["runtime"] or None
    return row


# JSON columns read as their stored text and embedded in the response as they are: parsing
# and re-encoding 20,000 JSON values was most of the time of a 10,000-preset list.
_AS_TEXT = {"parameters": Cast("parameters", TextField()), "metadata": Cast("metadata", TextField())}


def list_rows(queryset: QuerySet[ParameterPreset]) -> list[dict[str, Any]]:
    rows = []
    for row in queryset.values(
        *(f for f in FIELDS if f not in _AS_TEXT), **{f"{f}_text": c for f, c in _AS_TEXT.items()}
    ):
        for field in _AS_TEXT:
            row[field] = orjson.Fragment(row.pop(f"{field}_text"))
        rows.append(represent({field: row[field] for field in FIELDS}))
    return rows


def represent_preset(preset: ParameterPreset) -> dict[str, Any]:
    return represent({field: getattr(preset, field) for field in FIELDS})


def etag_of(representation: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(representation, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


def _positive_int(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
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
        request=serializers.PresetSerializer,
        responses={201: serializers.PresetSerializer, **ERRORS, 409: ERRORS[400]},
    ),
    update=extend_schema(
        summary="Replace a preset",
        request=serializers.PresetSerializer,
        responses={200: serializers.PresetSerializer, **ERRORS, 409: ERRORS[400], 412: ERRORS[400]},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a preset",
        request=serializers.PresetSerializer,
        responses={200: serializers.PresetSerializer, **ERRORS, 409: ERRORS[400], 412: ERRORS[400]},
    ),
    destroy=extend_schema(summary="Delete a preset", responses={204: None, **ERRORS, 412: ERRORS[400]}),
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
        queryset = self.filter_queryset(self.get_queryset())
        page = _positive_int(request, "page", 1, MAX_PAGE)
        page_size = _positive_int(request, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        total = queryset.count()
        start = (page - 1) * page_size
        rows = list_rows(queryset[start : start + page_size])
        headers = {"X-Total-Count": str(total)}
        links = []
        if start + page_size < total:
            links.append(f'<{self._page_url(request, page + 1)}>; rel="next"')
        if page > 1:
            links.append(f'<{self._page_url(request, page - 1)}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return Response(rows, headers=headers)

    @staticmethod
    def _page_url(request: Request, page: int) -> str:
        query = request.query_params.copy()
        query["page"] = str(page)
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    def retrieve(self, request: Request, pk: str) -> Response:
        return self._respond(self.get_object())

    def create(self, request: Request) -> Response:
        fields, problems = preset_fields(request.data)
        if problems:
            raise invalid(problems)
        _check_engine(fields["parameters"], fields["runtime"])
        self._check_name_free(fields["name"])
        preset = ParameterPreset(**fields, created_by=request.user)
        try:
            preset.save(by=request.user)
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
            preset.save(by=self.request.user)
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
        responses={(200, "application/json"): OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> HttpResponse:
        preset = self.get_object()
        return preset_download(preset)

    @extend_schema(
        summary="Download a bundle of presets: those matching the list's filters, or ?ids=1,2",
        operation_id="presets_export_bundle",
        parameters=[OpenApiParameter("ids", str, description="Comma-separated ids; overrides the filters.")],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, 400: ERRORS[400], 404: ERRORS[404]},
    )
    @action(detail=False, methods=["get"], url_path="export")
    def export_many(self, request: Request) -> HttpResponse:
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
        return download_response(dump(export_bundle(presets)), "presets.json")


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
    found = ParameterPreset.objects.merge_inputs(ids)
    missing = [preset_id for preset_id in ids if preset_id not in found]
    if missing:
        raise ApiError(
            status.HTTP_404_NOT_FOUND,
            f"Preset{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} not found",
            [Problem(f"preset_ids[{ids.index(m)}]", f"no preset with id {m}") for m in missing],
        )
    catalogue = for_engine(runtime) if runtime else None
    result = merge_for_engine([found[i] for i in ids], strategy, catalogue)
    answer = result.as_dict()
    if catalogue is not None:  # with an engine named, what it would say of the merged grid
        answer["warnings"] = [finding.as_dict() for finding in check_grid(result.parameters, catalogue)]
    return answer


@fast_json_post(PresetViewSet.as_view({"post": "merge"}))
def merge_endpoint(request: HttpRequest, data: Any) -> dict[str, Any]:
    """POST /api/presets/merge, the hottest endpoint: see autotuner.http.fast_json_post."""
    return merge_result(data)
