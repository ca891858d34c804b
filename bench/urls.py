"""The app's URLs plus the presets API issue's baseline: a bare Django JSON view doing one ORM
query. Benchmark-only (bench/settings.py); the app never serves it."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from presets.models import ParameterPreset


def bare_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"preset": ParameterPreset.objects.values("id", "name").order_by("id").first()})


urlpatterns = [path("bench/bare", bare_view), path("", include("autotuner.urls"))]
