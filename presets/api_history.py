"""The presets API's history: a preset's versions, one version, restoring one, the difference
between two, and the trash. Mixed into presets.api.PresetViewSet, on the same routes."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError, invalid
from presets import serializers
from presets.api_base import MAX_VERSION, VERSION_PARAMETER, WRITE_ERRORS, PresetViewSetBase, errors
from presets.diff import diff_contents
from presets.models import NameInUse, ParameterPreset, PresetRevision, engine_errors
from presets.validators import Problem, parse_id

NO_VERSION = "No such preset, or no such version."


def versions_held(preset: ParameterPreset) -> str:
    if preset.current_version <= 1:
        return f"it has only version {preset.current_version}" if preset.current_version else "it has no versions"
    return f"its versions are 1 to {preset.current_version}"


class PresetHistoryMixin(PresetViewSetBase):
    def revision(self, preset: ParameterPreset, raw: str) -> PresetRevision:
        number = parse_id(raw)
        revision = None
        if number is not None and number <= MAX_VERSION:
            revision = preset.revisions.select_related("created_by").filter(version=number).first()
        if revision is None:
            raise ApiError(
                status.HTTP_404_NOT_FOUND, f"Preset {preset.pk} has no version {raw[:20]}; {versions_held(preset)}."
            )
        return revision

    def version_answer(self, revisions: object, preset: ParameterPreset, many: bool = False) -> Response:
        context = {"current_version": preset.current_version}
        return Response(serializers.PresetVersionSerializer(revisions, many=many, context=context).data)

    @extend_schema(
        summary="List a preset's versions, newest first",
        responses={200: serializers.PresetVersionSerializer(many=True), **errors(404)},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def versions(self, request: Request, pk: str) -> Response:
        preset = self.get_object()
        revisions = preset.revisions.select_related("created_by").order_by("-version")
        return self.version_answer(revisions, preset, many=True)

    @extend_schema(
        summary="Get one version of a preset",
        parameters=[VERSION_PARAMETER],
        responses={200: serializers.PresetVersionSerializer, **errors(404, e404=NO_VERSION)},
    )
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<version>[^/]+)", filter_backends=[])
    def version_detail(self, request: Request, pk: str, version: str) -> Response:
        preset = self.get_object()
        return self.version_answer(self.revision(preset, version), preset)

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
            **errors(
                *WRITE_ERRORS,
                404,
                409,
                412,
                e404=NO_VERSION,
                e409="Another preset has that version's name, or its engine now refuses its parameters.",
            ),
        },
    )
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<version>[^/]+)/restore", filter_backends=[])
    def restore_version(self, request: Request, pk: str, version: str) -> Response:
        body = serializers.ChangeNoteSerializer(data=request.data)
        with transaction.atomic():
            preset = self.get_object()
            self.check_changeable(preset)
            self.check_if_match(preset)
            body.is_valid(raise_exception=True)
            revision = self.revision(preset, version)
            content = revision.content
            runtime = content.get("runtime") or ""
            if found := engine_errors(content.get("parameters", {}), runtime):
                refuser = f"The {runtime} engine" if runtime else "Every engine with these flags"
                raise ApiError(
                    status.HTTP_409_CONFLICT,
                    f"{refuser} now refuses version {revision.version}'s parameters.",
                    [Problem(f"parameters.{finding.path}", finding.message) for finding in found],
                )
            try:
                with transaction.atomic():
                    note = body.validated_data.get("change_note", "")
                    preset.restore_version(revision.version, by=request.user, note=note)
            except (NameInUse, IntegrityError):
                name = content["name"]
                raise ApiError(
                    status.HTTP_409_CONFLICT,
                    f"Another preset is named “{name}” now, as version {revision.version} was; rename that one first.",
                    [Problem("name", f'"{name}" is taken by another preset')],
                ) from None
        return self.respond(preset, warned=True)

    @extend_schema(
        summary="What changed between two versions of a preset",
        parameters=[
            OpenApiParameter(
                "from",
                {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
                required=True,
                description="The earlier version's number.",
            ),
            OpenApiParameter(
                "to",
                {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
                description="The later version's number; the current version if omitted.",
            ),
        ],
        responses={200: serializers.PresetDiffSerializer, **errors(400, 404, e404=NO_VERSION)},
    )
    @action(detail=True, methods=["get"], filter_backends=[])
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
                f"Preset {preset.pk} has no version {shown}; {versions_held(preset)}.",
                [Problem(name, f"no version {number}") for name, number in missing.items()],
            )
        difference = diff_contents(found[numbers["from"]].content, found[numbers["to"]].content)
        return Response(
            {"from": numbers["from"], "to": numbers["to"], "summary": difference.summary(), **difference.as_dict()}
        )

    # The trash

    @extend_schema(
        summary="List the presets in the trash you may restore (yours; staff: all)",
        responses={200: serializers.TrashedPresetSerializer(many=True), **errors()},
    )
    @action(detail=False, methods=["get"], url_path="trash", filter_backends=[], pagination_class=None)
    def trash(self, request: Request) -> Response:
        trashed = ParameterPreset.everything.filter(deleted_at__isnull=False).select_related("deleted_by")
        if not request.user.is_staff:
            trashed = trashed.filter(created_by_id=request.user.pk)
        return Response(serializers.TrashedPresetSerializer(trashed.order_by("-deleted_at", "-pk"), many=True).data)

    @extend_schema(
        summary="Bring a preset back from the trash",
        description="Under its own name, or under `name` when another preset has taken it meanwhile.",
        parameters=[
            OpenApiParameter(
                "id",
                {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                OpenApiParameter.PATH,
                description="The id of the preset in the trash.",
            )
        ],
        request=serializers.UntrashSerializer,
        responses={
            200: serializers.PresetSerializer,
            **errors(
                *WRITE_ERRORS,
                404,
                409,
                e403="Not its creator or staff, or a session request without its CSRF token.",
                e404="No such preset in the trash.",
                e409="The name is taken; send another `name`.",
            ),
        },
    )
    @action(detail=False, methods=["post"], url_path=r"trash/(?P<pk>[^/]+)/restore", filter_backends=[])
    def untrash(self, request: Request, pk: str) -> Response:
        with transaction.atomic():
            number = parse_id(pk)
            preset = ParameterPreset.everything.filter(pk=number, deleted_at__isnull=False).first() if number else None
            if preset is None:
                raise ApiError(status.HTTP_404_NOT_FOUND, f"Preset {pk[:40]} is not in the trash")
            if not preset.can_change(request.user):
                raise ApiError(status.HTTP_403_FORBIDDEN, "Only the preset's creator or staff can restore it.")
            body = serializers.UntrashSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            name = body.validated_data.get("name")
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
        return self.respond(preset)
