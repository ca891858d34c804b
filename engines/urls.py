from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from engines import views
from engines.views import EngineViewSet

app_name = "engines"

urlpatterns = [
    path("", views.engine_flags, name="flags"),
    path("<str:runtime>/changes/", views.engine_changes, name="changes"),
]

api_router = SimpleRouter()
api_router.trailing_slash = "/?"
api_router.register("engines", EngineViewSet, basename="engine")
