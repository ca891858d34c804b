"""The presets REST API under /api/presets/: list, get, create, change, trash, duplicate, merge.

Serializers (presets.serializers) validate what comes in and write what goes out; their fields
call presets.validators, the one check of a preset's content. The history and the trash are
presets.api_history's, import and export presets.api_exchange's, on the same routes.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError
from autotuner.pagination import PAGINATION_HEADERS, HeaderPagination
from engines.catalogue import for_engine
from engines.checks import check_grid
from presets import serializers
from presets.api_base import ID_PARAMETER, WRITE_ERRORS, errors
from presets.api_exchange import PresetExchangeMixin
from presets.api_fields import STORABLE_TEXT
from presets.api_history import PresetHistoryMixin
from presets.filters import MAX_SEARCH_LENGTH, PresetFilter
from presets.models import ParameterPreset, PresetsNotFound
from presets.validators import Problem, grid_size_problems

CHANGE = "A change records a new version, with `change_note` as its note; no change, no version."
NAME_TAKEN = "The name is taken (names ignore case and surrounding spaces)."
# What a listed preset needs: the serializer's fields, nothing else.
LISTED = ("id", "name", "description", "category", "runtime", "is_system", "parameters", "metadata")
LISTED_FIELDS = (*LISTED, "created_at", "updated_at", "current_version")
ORDERINGS = [value for value, _ in PresetFilter.base_filters["ordering"].extra["choices"]]


def filter_choice(name: str) -> OpenApiParameter:
    """A choice filter of PresetFilter, empty included: django-filter reads an empty value as not
    filtering, as the tasks list's filters say too."""
    found = PresetFilter.base_filters[name]
    values = ["", *(value for value, _ in found.extra["choices"])]
    return OpenApiParameter(name, str, enum=values, description=f"{found.extra['help_text']} Empty: every preset.")


@extend_schema_view(
    list=extend_schema(
        summary="List presets",
        description="A JSON array, one page of it: the total and the next and previous pages are in headers.",
        parameters=[
            *PAGINATION_HEADERS,
            # What PresetFilter's form accepts: text without NUL; a search of at most 200 characters.
            OpenApiParameter(
                "search",
                {"type": "string", "maxLength": MAX_SEARCH_LENGTH, "pattern": STORABLE_TEXT},
                description="Case-insensitive, in name and description.",
            ),
            OpenApiParameter("category", {"type": "string", "pattern": STORABLE_TEXT}),
            filter_choice("runtime"),
            filter_choice("is_system"),
            # Comma-separated; an empty item (``ordering=``) asks for the default order.
            OpenApiParameter(
                "ordering",
                {"type": "array", "items": {"type": "string", "enum": [*ORDERINGS, ""]}},
                style="form",
                explode=False,
                description="Fields to order by, `-` for descending, comma-separated; ties keep the default order.",
            ),
        ],
        responses={200: serializers.PresetSerializer(many=True), **errors(400)},
    ),
    retrieve=extend_schema(
        summary="Get one preset",
        parameters=[ID_PARAMETER],
        responses={200: serializers.PresetSerializer, **errors(404)},
    ),
    create=extend_schema(
        summary="Create a preset",
        description="`change_note`, if given, is kept as version 1's note.",
        responses={201: serializers.PresetSerializer, **errors(*WRITE_ERRORS, 409, e409=NAME_TAKEN)},
    ),
    update=extend_schema(
        summary="Replace a preset",
        description=CHANGE,
        parameters=[ID_PARAMETER],
        responses={200: serializers.PresetSerializer, **errors(*WRITE_ERRORS, 404, 409, 412, e409=NAME_TAKEN)},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a preset",
        description=CHANGE,
        parameters=[ID_PARAMETER],
        responses={200: serializers.PresetSerializer, **errors(*WRITE_ERRORS, 404, 409, 412, e409=NAME_TAKEN)},
    ),
    destroy=extend_schema(
        summary="Move a preset to the trash",
        description="It can be restored from /api/presets/trash until its `purge_after`.",
        parameters=[ID_PARAMETER],
        responses={204: None, **errors(404, 412)},
    ),
)
class PresetViewSet(PresetHistoryMixin, PresetExchangeMixin):
    filter_backends = [DjangoFilterBackend]
    filterset_class = PresetFilter
    pagination_class = HeaderPagination

    def get_queryset(self) -> QuerySet[ParameterPreset]:
        return ParameterPreset.objects.only(*LISTED_FIELDS)

    def list(self, request: Request) -> Response:
        # Rows as dicts: the serializer reads them as it reads presets, without building a model each.
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()).values(*LISTED_FIELDS))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return self.respond(self.get_object())

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        note = fields.pop("change_note", "")
        self.check_name_free(fields["name"])
        preset = ParameterPreset(**fields, created_by_id=request.user.pk)
        try:
            preset.save(by=request.user, note=note)
        except IntegrityError:  # a concurrent create took the name between check and insert
            self.check_name_free(fields["name"])
            raise
        return self.respond(preset, status.HTTP_201_CREATED, warned=True)

    def update(self, request: Request, pk: str) -> Response:
        return self.write(partial=False)

    def partial_update(self, request: Request, pk: str) -> Response:
        return self.write(partial=True)

    def write(self, *, partial: bool) -> Response:
        with transaction.atomic():
            preset = self.get_object()
            self.check_changeable(preset)
            self.check_if_match(preset)
            serializer = self.get_serializer(preset, data=self.request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            fields = dict(serializer.validated_data)
            note = fields.pop("change_note", "")
            if "name" in fields:
                self.check_name_free(fields["name"], exclude=preset.pk)
            for field, value in fields.items():
                setattr(preset, field, value)
            preset.save(by=self.request.user, note=note)
        return self.respond(preset, warned=True)

    def destroy(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            preset = self.get_object()
            self.check_changeable(preset)
            self.check_if_match(preset)
            preset.trash(by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Copy a preset into a new user preset",
        parameters=[ID_PARAMETER],
        request=None,
        responses={201: serializers.PresetSerializer, **errors(404)},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def duplicate(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            copy = self.get_object().duplicate(by=request.user)
        return self.respond(copy, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Merge presets in the given order",
        description=(
            "With `runtime`, flags that are one flag for that engine merge as one, and `warnings` says "
            "what the engine would refuse of the merged grid."
        ),
        request=serializers.MergeRequestSerializer,
        responses={
            200: serializers.MergeResultSerializer,
            **errors(*WRITE_ERRORS, 404, e404="Ids that name no preset: each at its index in `preset_ids`."),
        },
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def merge(self, request: Request) -> Response:
        body = serializers.MergeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        runtime = body.validated_data["runtime"]
        try:
            result, _ = ParameterPreset.objects.merge(
                body.validated_data["preset_ids"], strategy=body.validated_data["merge_strategy"], runtime=runtime
            )
        except PresetsNotFound as error:
            missing = [pk for _, pk in error.missing]
            raise ApiError(
                status.HTTP_404_NOT_FOUND,
                f"Preset{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} not found",
                [Problem(f"preset_ids[{index}]", f"no preset with id {pk}") for index, pk in error.missing],
            ) from None
        if too_big := grid_size_problems(result.parameters):
            raise ApiError(
                status.HTTP_400_BAD_REQUEST,
                f"The merged grid is too big: {too_big[0].message}",
                [problem.under("preset_ids") for problem in too_big],
            )
        answer = result.as_dict()
        catalogue = for_engine(runtime) if runtime else None
        if catalogue is not None:  # with an engine named, what it would say of the merged grid
            answer["warnings"] = [finding.as_dict() for finding in check_grid(result.parameters, catalogue)]
        return Response(answer)
