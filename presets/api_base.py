"""What every part of the presets API shares: finding a preset, who may change it, If-Match,
the answer with its ETag, and the error answers each operation documents."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import status, viewsets
from rest_framework.response import Response

from autotuner.http import ApiError, JSONBodyParser, error_responses
from presets import serializers
from presets.models import SYSTEM_READ_ONLY, ParameterPreset
from presets.validators import Problem, parse_id

MAX_VERSION = 2**31 - 1  # the revision's version column is a 32-bit integer on PostgreSQL

_WHY = {
    400: "Invalid input: every problem with its path.",
    401: "Not signed in: no session and no valid API token.",
    403: "Not allowed: a system preset, someone else's preset, or a session request without its CSRF token.",
    404: "No such preset.",
    409: "A name clash.",
    412: "If-Match names another version of the preset than its current one (see ETag).",
    413: "The request body is too large.",
    415: "The body is not JSON (Content-Type).",
    429: "Too many requests; Retry-After says when to try again.",
}


def errors(*codes: int, **described: str) -> dict[int, OpenApiResponse]:
    """The error answers of a presets operation: 401, 403 and 429 always (signing in, a session's
    CSRF check, the throttles), then ``codes``; ``described`` words one more precisely (``e404="..."``)."""
    why = {**_WHY, **{int(key[1:]): text for key, text in described.items()}}
    return error_responses(403, *codes, why=why)


WRITE_ERRORS = (400, 413, 415)  # what any request with a JSON body may answer
VERSION_PARAMETER = OpenApiParameter(
    "version",
    {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
    OpenApiParameter.PATH,
    description="A version number of the preset (1, 2, …).",
)
ID_PARAMETER = OpenApiParameter(
    "id",
    {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    OpenApiParameter.PATH,
    description="The preset's id.",
)
HISTORY_PARAMETER = OpenApiParameter(
    "history", bool, description="Include each preset's versions, oldest first (`true` or `false`, the default)."
)


def etag_of(representation: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(representation, sort_keys=True, default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'


class PresetViewSetBase(viewsets.GenericViewSet):
    queryset = ParameterPreset.objects.all()
    serializer_class = serializers.PresetSerializer
    parser_classes = [JSONBodyParser]
    # Any text, so that /api/presets/abc answers the API's JSON 404 rather than Django's HTML one.
    lookup_value_regex = "[^/]+"

    def get_object(self) -> ParameterPreset:
        raw = self.kwargs["pk"]
        pk = parse_id(raw)
        preset = ParameterPreset.objects.filter(pk=pk).first() if pk else None
        if preset is None:
            raise ApiError(status.HTTP_404_NOT_FOUND, f"Preset {raw[:40]} not found")
        return preset

    def check_changeable(self, preset: ParameterPreset) -> None:
        if preset.is_system:
            raise ApiError(status.HTTP_403_FORBIDDEN, SYSTEM_READ_ONLY)
        if not preset.can_change(self.request.user):
            raise ApiError(status.HTTP_403_FORBIDDEN, "Only the preset's creator or staff can change it.")

    def check_if_match(self, preset: ParameterPreset) -> None:
        """Refuse a lost update: the client's If-Match must name the version it read."""
        if_match = self.request.headers.get("If-Match")
        if not if_match or if_match.strip() == "*":
            return
        current = etag_of(serializers.PresetSerializer(preset).data)
        offered = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
        if current not in offered:
            raise ApiError(
                status.HTTP_412_PRECONDITION_FAILED,
                "The preset changed since you read it (If-Match does not match its ETag); read it again.",
            )

    def check_name_free(self, name: str, exclude: int | None = None) -> None:
        taken = ParameterPreset.objects.named(name).exclude(pk=exclude).first()
        if taken is not None:
            raise ApiError(
                status.HTTP_409_CONFLICT,
                f'A preset named "{taken.name}" already exists (id {taken.pk}).',
                [Problem("name", f'"{taken.name}" is taken (id {taken.pk}); names ignore case and surrounding spaces')],
            )

    def respond(self, preset: ParameterPreset, status_code: int = 200, warned: bool = False) -> Response:
        """The preset with its ETag; after a write, what its engine warns of (unknown flags), if anything."""
        representation: dict[str, Any] = dict(serializers.PresetSerializer(preset).data)
        headers = {"ETag": etag_of(representation)}
        if warned and (found := preset.engine_warnings):
            representation = {**representation, "warnings": [finding.as_dict() for finding in found]}
        return Response(representation, status=status_code, headers=headers)
