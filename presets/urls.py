from __future__ import annotations

from rest_framework.routers import SimpleRouter

from presets.api import PresetViewSet

# Every path answers with and without its trailing slash, with no redirect: the original
# React client calls /api/presets/ but /api/presets/3 and /api/presets/merge.
api_router = SimpleRouter()
api_router.trailing_slash = "/?"
api_router.register("presets", PresetViewSet, basename="preset")
