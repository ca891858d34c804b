"""The engines' flag catalogue, to browse: /engines/ and /api/engines/."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError, error_responses
from autotuner.pages import template_for
from engines import registry
from engines.catalogue import MEANINGFUL_BOUNDS, Catalogue, Flag, engines, for_engine

MAX_SEARCH = 100
# The flags a tuning grid usually varies, listed first on the Engines page: the sizes and fractions
# whose meaning bounds them, and the scheduling, batching, cache and precision choices presets tune.
TUNING_FLAGS = frozenset(MEANINGFUL_BOUNDS) | {
    "schedule-policy",
    "scheduling-policy",
    "chunked-prefill-size",
    "enable-chunked-prefill",
    "enable-mixed-chunk",
    "enable-prefix-caching",
    "disable-radix-cache",
    "enable-hierarchical-cache",
    "kv-cache-dtype",
    "quantization",
    "attention-backend",
    "disable-cuda-graph",
    "enforce-eager",
    "enable-torch-compile",
    "async-scheduling",
}


def is_tuning(flag: Flag) -> bool:
    return not TUNING_FLAGS.isdisjoint((flag.name, *flag.aliases))


def matching(catalogue: Catalogue, search: str) -> list[Flag]:
    """The flags whose name, an alias or help text contains ``search`` (all when empty)."""
    needle = search.strip().lower().removeprefix("--")
    if not needle:
        return list(catalogue.flags.values())

    def rank(flag: Flag) -> int | None:
        names = (flag.name, *flag.aliases)
        if any(needle == name for name in names):
            return 0
        if any(needle in name for name in names):
            return 1
        return 2 if needle in flag.help.lower() else None

    ranked = [(rank(flag), flag.name, flag) for flag in catalogue.flags.values()]
    # Flags named like the search first, then those whose help mentions it.
    return [flag for score, _, flag in sorted((item for item in ranked if item[0] is not None), key=lambda x: x[:2])]


@login_required
@require_safe
@vary_on_headers("HX-Request")
def engine_flags(request: HttpRequest) -> HttpResponse:
    available = engines()
    runtime = request.GET.get("runtime") or (available[0] if available else "")
    catalogue = for_engine(runtime) if runtime in available else None
    if catalogue is None:
        raise Http404(f"No catalogue for {runtime!r}")
    search = request.GET.get("search", "")[:MAX_SEARCH]
    flags = matching(catalogue, search)
    context: dict[str, Any] = {
        "engines": available,
        "catalogue": catalogue,
        "runtime": runtime,
        "search": search,
        "flags": flags,
        "tuning": [flag for flag in flags if is_tuning(flag)],
        "other": [flag for flag in flags if not is_tuning(flag)],
    }
    return render(request, template_for(request, "engines/engine_flags.html", "flag-table"), context)


class EngineViewSet(viewsets.ViewSet):
    lookup_field = "runtime"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        summary="The engines whose flags are known",
        operation_id="engines_list",
        responses={
            200: inline_serializer(
                "EngineSummary",
                {
                    "runtime": serializers.ChoiceField(choices=registry.choices()),
                    "version": serializers.CharField(help_text="The engine version the flags were read from."),
                    "flags": serializers.IntegerField(help_text="How many flags are known."),
                },
                many=True,
            ),
            **error_responses(),
        },
    )
    def list(self, request: Request) -> Response:
        found = [for_engine(engine) for engine in engines()]
        return Response(
            [
                {"runtime": catalogue.engine, "version": catalogue.version, "flags": len(catalogue.flags)}
                for catalogue in found
                if catalogue
            ]
        )

    @extend_schema(
        summary="One engine's flags: name, aliases, kind, choices, bounds, default, help",
        operation_id="engines_flags",
        parameters=[OpenApiParameter("search", str, description="Part of a flag's name, alias or help.")],
        responses={200: OpenApiTypes.OBJECT, **error_responses(404, why={404: "No catalogue for that engine."})},
    )
    def retrieve(self, request: Request, runtime: str) -> Response:
        catalogue = for_engine(runtime) if runtime in engines() else None
        if catalogue is None:
            raise ApiError(status.HTTP_404_NOT_FOUND, f"No engine {runtime[:40]!r}; known: {', '.join(engines())}")
        flags = matching(catalogue, request.query_params.get("search", "")[:MAX_SEARCH])
        document = catalogue.as_document()
        document["flags"] = [flag.as_dict() for flag in flags]
        return Response(document)
