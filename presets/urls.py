from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from presets import views
from presets.api import PresetViewSet

app_name = "presets"

urlpatterns = [
    path("", views.preset_list, name="list"),
    path("new/", views.preset_create, name="create"),
    path("import/", views.preset_import, name="import"),
    path("export/", views.preset_export_shown, name="export-shown"),
    path("preview/", views.parameters_preview, name="preview"),
    path("trash/", views.preset_trash, name="trash"),
    path("trash/<int:pk>/restore/", views.preset_untrash, name="untrash"),
    path("<int:pk>/", views.preset_detail, name="detail"),
    path("<int:pk>/edit/", views.preset_edit, name="edit"),
    path("<int:pk>/duplicate/", views.preset_duplicate, name="duplicate"),
    path("<int:pk>/delete/", views.preset_delete, name="delete"),
    path("<int:pk>/export/", views.preset_export, name="export"),
    path("<int:pk>/history/", views.preset_history, name="history"),
    path("<int:pk>/history/<int:version>/", views.preset_version, name="version"),
    path("<int:pk>/history/<int:version>/restore/", views.preset_restore_version, name="restore-version"),
]

# Every API path answers with and without its trailing slash, with no redirect: the original
# React client calls /api/presets/ but /api/presets/3 and /api/presets/merge.
api_router = SimpleRouter()
api_router.trailing_slash = "/?"
api_router.register("presets", PresetViewSet, basename="preset")
