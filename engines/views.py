"""The engines' flag catalogues, to browse: /engines/ (one version at a time), /engines/<engine>/changes/
(what changed between two versions) and /api/engines/."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

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
from engines.catalogue import versions as versions_of
from engines.versions import ChangedFlag, Differences, compare
from presets.validators import Problem

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
    # vLLM 0.34's extensible KV cache and cache-aware admission.
    "enable-extensible-kv-cache",
    "cache-aware-admission-window",
    "cache-aware-admission-threshold",
    "max-num-inflight-kv-loads",
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


def newest_first(engine: str) -> list[str]:
    return versions_of(engine)[::-1]


def not_shipped(engine: str, version: str) -> str:
    return f"{engine} {version[:40]!r} is not shipped; shipped: {', '.join(newest_first(engine))}"


def default_version(engine: str) -> str:
    """The version new presets and tasks of an engine are checked against."""
    catalogue = for_engine(engine)
    return catalogue.version if catalogue else ""


def pinned(engine: str, version: str) -> str:
    """The version as a link's ``version`` parameter: empty for the default, so links to the
    default catalogue stay ``?runtime=<engine>`` and follow it when a new version ships."""
    return "" if version == default_version(engine) else version


def version_choices(shown: Catalogue, search: str) -> list[dict[str, Any]]:
    """Each engine with its shipped versions, for the links that choose one; a link keeps the search."""
    found = []
    for engine in engines():
        links = []
        for version in newest_first(engine):
            query = {"runtime": engine, "version": pinned(engine, version), "search": search}
            links.append(
                {
                    "version": version,
                    "default": version == default_version(engine),
                    "current": (engine, version) == (shown.engine, shown.version),
                    "query": urlencode({key: value for key, value in query.items() if value}),
                }
            )
        found.append({"engine": engine, "label": registry.engine(engine).label, "versions": links})
    return found


@login_required
@require_safe
@vary_on_headers("HX-Request")
def engine_flags(request: HttpRequest) -> HttpResponse:
    available = engines()
    runtime = request.GET.get("runtime") or (available[0] if available else "")
    if runtime not in available:
        raise Http404(f"No catalogue for {runtime!r}")
    version = request.GET.get("version") or default_version(runtime)
    catalogue = for_engine(runtime, version)
    problem = ""
    if catalogue is None:  # the page answers 404 and says so, above the default version's flags
        problem = f"{not_shipped(runtime, version)}."
        version = default_version(runtime)
        catalogue = for_engine(runtime, version)
        assert catalogue is not None  # the default is shipped
    search = request.GET.get("search", "")[:MAX_SEARCH]
    flags = matching(catalogue, search)
    context: dict[str, Any] = {
        "choices": version_choices(catalogue, search),
        "catalogue": catalogue,
        "runtime": runtime,
        "default_version": default_version(runtime),
        "pinned_version": pinned(runtime, version),
        "problem": problem,
        "search": search,
        "flags": flags,
        "tuning": [flag for flag in flags if is_tuning(flag)],
        "other": [flag for flag in flags if not is_tuning(flag)],
    }
    template = template_for(request, "engines/engine_flags.html", "flag-table")
    return render(request, template, context, status=404 if problem else 200)


@dataclass(frozen=True)
class ChangeGroup:
    key: str
    title: str
    added: list[Flag] = field(default_factory=list)
    removed: list[Flag] = field(default_factory=list)
    changed: list[ChangedFlag] = field(default_factory=list)


def tuning_first(differences: Differences) -> list[ChangeGroup]:
    """The differences in two groups, the tuning flags' and the others'; a renamed flag is a tuning
    flag when either name is."""
    tuning, other = ChangeGroup("tuning", "Tuning flags"), ChangeGroup("other", "Other flags")
    for flag in differences.added:
        (tuning if is_tuning(flag) else other).added.append(flag)
    for flag in differences.removed:
        (tuning if is_tuning(flag) else other).removed.append(flag)
    for item in differences.changed:
        (tuning if is_tuning(item.old) or is_tuning(item.new) else other).changed.append(item)
    return [tuning, other]


@login_required
@require_safe
def engine_changes(request: HttpRequest, runtime: str) -> HttpResponse:
    """What changed in an engine's flags from one shipped version to another; by default from the
    version before the newest to the newest. An unknown version is a 404 page naming the shipped ones."""
    shipped = newest_first(runtime) if runtime in engines() else []
    if not shipped:
        raise Http404(f"No catalogue for {runtime[:40]!r}")
    chosen = {
        "from": request.GET.get("from") or shipped[min(1, len(shipped) - 1)],
        "to": request.GET.get("to") or shipped[0],
    }
    old, new = for_engine(runtime, chosen["from"]), for_engine(runtime, chosen["to"])
    problems = [
        Problem(side, not_shipped(runtime, chosen[side]))
        for side, found in (("from", old), ("to", new))
        if found is None
    ]
    context: dict[str, Any] = {
        "runtime": runtime,
        "label": registry.engine(runtime).label,
        "shipped": shipped,
        "chosen": chosen,
        "problems": problems,
    }
    if old is None or new is None:
        return render(request, "engines/engine_changes.html", context, status=404)
    differences = compare(old, new)
    context.update(
        differences=differences,
        groups=tuning_first(differences),
        from_pin=pinned(runtime, old.version),
        to_pin=pinned(runtime, new.version),
    )
    return render(request, "engines/engine_changes.html", context)


class EngineViewSet(viewsets.ViewSet):
    lookup_field = "runtime"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        summary="The engines whose flags are known, with every catalogue version shipped",
        operation_id="engines_list",
        responses={
            200: inline_serializer(
                "EngineSummary",
                {
                    "runtime": serializers.ChoiceField(choices=registry.choices()),
                    "version": serializers.CharField(
                        help_text="The version new presets and tasks are checked against (the default)."
                    ),
                    "flags": serializers.IntegerField(help_text="How many flags the default version knows."),
                    "versions": inline_serializer(
                        "EngineVersion",
                        {
                            "version": serializers.CharField(),
                            "flags": serializers.IntegerField(help_text="How many flags this version knows."),
                            "default": serializers.BooleanField(),
                        },
                        many=True,
                        help_text="Every version shipped, newest first.",
                    ),
                },
                many=True,
            ),
            **error_responses(),
        },
    )
    def list(self, request: Request) -> Response:
        found = []
        for engine in engines():
            default = default_version(engine)
            counts = {
                version: len(shipped.flags)
                for version in newest_first(engine)
                if (shipped := for_engine(engine, version))
            }
            found.append(
                {
                    "runtime": engine,
                    "version": default,
                    "flags": counts[default],
                    "versions": [
                        {"version": version, "flags": count, "default": version == default}
                        for version, count in counts.items()
                    ],
                }
            )
        return Response(found)

    @extend_schema(
        summary="One engine's flags: name, aliases, kind, choices, bounds, default, help",
        operation_id="engines_flags",
        parameters=[
            OpenApiParameter("search", str, description="Part of a flag's name, alias or help."),
            OpenApiParameter("version", str, description="A version shipped (see the list); the default if absent."),
        ],
        responses={
            200: OpenApiTypes.OBJECT,
            **error_responses(404, why={404: "No catalogue for that engine, or not that version."}),
        },
    )
    def retrieve(self, request: Request, runtime: str) -> Response:
        if runtime not in engines():
            raise ApiError(status.HTTP_404_NOT_FOUND, f"No engine {runtime[:40]!r}; known: {', '.join(engines())}")
        version = request.query_params.get("version") or default_version(runtime)
        catalogue = for_engine(runtime, version)
        if catalogue is None:
            message = not_shipped(runtime, version)
            raise ApiError(status.HTTP_404_NOT_FOUND, message, [Problem("version", message)])
        flags = matching(catalogue, request.query_params.get("search", "")[:MAX_SEARCH])
        document = catalogue.as_document()
        document["flags"] = [flag.as_dict() for flag in flags]
        return Response(document)
