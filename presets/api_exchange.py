"""The presets API's exchange: importing a document, exporting one preset or a bundle.
Mixed into presets.api.PresetViewSet, on the same routes. The document format is
presets.exchange's, read and written there for the pages too."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError, JSONBodyParser, PayloadTooLarge, invalid, parse_json
from presets import serializers
from presets.api_base import HISTORY_PARAMETER, PresetViewSetBase, errors
from presets.exchange import (
    MAX_IMPORT_PRESETS,
    MAX_IMPORT_SIZE,
    MAX_IMPORT_VERSIONS,
    download_response,
    dump,
    export_bundle,
    import_contents,
    is_bundle,
    parse_document,
    preset_download,
)
from presets.models import NameTaken, OnConflict, ParameterPreset, ReadOnlyPreset, import_engine_problems
from presets.validators import Problem


def history_flag(request: Request) -> bool:
    """``?history=``: true or false (or 1 and 0), false when absent. Empty is refused as the
    schema says (a boolean), not read as absent."""
    raw = request.query_params.get("history")
    if raw is None:
        return False
    value = {"false": False, "0": False, "true": True, "1": True}.get(raw.lower())
    if value is None:
        raise invalid([Problem("history", f"expected true or false, got {raw[:20]!r}")])
    return value


# Ids below 10**18 (all a database will give out), separated by commas, spaces around them allowed.
ID_LIST = re.compile(r"^( *[1-9][0-9]{0,17} *(, *[1-9][0-9]{0,17} *)*,? *)?$")


def id_list(raw: str) -> list[int]:
    if not ID_LIST.fullmatch(raw):
        raise invalid([Problem("ids", f"expected comma-separated preset ids, got {raw[:40]!r}")])
    return list(dict.fromkeys(int(part) for part in raw.split(",") if part.strip()))


def import_document(request: Request) -> Any:
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


class PresetExchangeMixin(PresetViewSetBase):
    @extend_schema(
        summary="Import a preset or a bundle",
        description=(
            "The document is validated as a whole (presets.exchange): every problem answers 400 at its "
            "path in the document, e.g. `presets[1].parameters.tp-size[0]`, including values a preset's "
            "engine refuses. Names already taken answer 409 unless `on_conflict` says otherwise. One import "
            f"takes at most {MAX_IMPORT_PRESETS} presets and {MAX_IMPORT_VERSIONS:,} versions in all histories."
        ),
        parameters=[OpenApiParameter("on_conflict", str, enum=[c.value for c in OnConflict])],
        request={
            "multipart/form-data": serializers.ImportUploadSerializer,
            "application/json": serializers.ImportDocumentSerializer,
        },
        responses={
            201: OpenApiResponse(
                {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Preset"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/Preset"}},
                    ]
                },
                description="The preset of a one-preset document; a list of them for a bundle.",
            ),
            **errors(
                400,
                409,
                413,
                415,
                e403="A replace of a system preset or of someone else's, or a session request without its CSRF token.",
                e409="Names already taken (on_conflict=fail); nothing was imported.",
            ),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[JSONBodyParser, MultiPartParser, FormParser],
        filter_backends=[],
        pagination_class=None,
    )
    def import_presets(self, request: Request) -> Response:
        on_conflict = request.query_params.get("on_conflict", OnConflict.FAIL)
        if on_conflict not in OnConflict.values:
            raise invalid(
                [Problem("on_conflict", f"expected one of {', '.join(OnConflict.values)}, got {on_conflict[:20]!r}")]
            )
        document = import_document(request)
        contents, problems = parse_document(document)
        problems += import_engine_problems(document, contents)
        if problems:
            raise invalid(problems, f"Invalid preset document: {problems[0]}" if len(problems) == 1 else "")
        try:
            with transaction.atomic():
                imported = import_contents(contents, on_conflict=on_conflict, by=request.user)
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
            return Response(serializers.PresetSerializer(imported, many=True).data, status=status.HTTP_201_CREATED)
        return self.respond(imported[0], status.HTTP_201_CREATED)

    @extend_schema(
        summary="Download one preset as a document",
        parameters=[HISTORY_PARAMETER],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, **errors(400, 404)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def export(self, request: Request, pk: str) -> HttpResponse:
        history = history_flag(request)
        preset = self.get_object()
        return preset_download(preset, history=history)

    @extend_schema(
        summary="Download a bundle of presets: those matching the list's filters, or ?ids=1,2",
        operation_id="presets_export_bundle",
        parameters=[
            OpenApiParameter(
                "ids",
                str,
                pattern=ID_LIST.pattern,
                description="Comma-separated ids; overrides the filters.",
            ),
            HISTORY_PARAMETER,
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            **errors(400, 404, e404="An id in `ids` names no preset."),
        },
    )
    @action(detail=False, methods=["get"], url_path="export", pagination_class=None)
    def export_many(self, request: Request) -> HttpResponse:
        history = history_flag(request)
        raw_ids = request.query_params.get("ids")
        if raw_ids:
            ids = id_list(raw_ids)
            presets = list(ParameterPreset.objects.filter(pk__in=ids))
            missing = sorted(set(ids) - {preset.pk for preset in presets})
            if missing:
                raise ApiError(status.HTTP_404_NOT_FOUND, f"Presets not found: {', '.join(map(str, missing))}")
            order = {preset_id: index for index, preset_id in enumerate(ids)}
            presets.sort(key=lambda preset: order[preset.pk])
        else:
            presets = list(self.filter_queryset(self.get_queryset()))
        return download_response(dump(export_bundle(presets, history=history)), "presets.json")
