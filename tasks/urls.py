from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from tasks import views
from tasks.api import TaskViewSet

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("new/", views.task_new, name="new"),
    path("preview/", views.task_merge_preview, name="preview"),
    path("<int:pk>/", views.task_detail, name="detail"),
    path("<int:pk>/edit/", views.task_edit, name="edit"),
    path("<int:pk>/duplicate/", views.task_duplicate, name="duplicate"),
    path("<int:pk>/delete/", views.task_delete, name="delete"),
    path("<int:pk>/save-grid/", views.task_save_grid, name="save-grid"),
    path("<int:pk>/plan.json", views.task_plan_json, name="plan-json"),
    path("<int:pk>/plan.sh", views.task_plan_shell, name="plan-sh"),
    re_path(r"^(?P<pk>[0-9]+)/(?P<action>start|cancel|restart|resume)/$", views.task_run_action, name="run-action"),
    path("<int:pk>/progress/", views.task_progress, name="progress"),
    path("<int:pk>/results/", views.task_results, name="results"),
    re_path(r"^(?P<pk>[0-9]+)/results\.(?P<kind>csv|json)$", views.task_results_download, name="results-download"),
    path("<int:pk>/experiments/<int:number>/save-preset/", views.experiment_save_preset, name="save-experiment"),
]

api_router = SimpleRouter()
api_router.trailing_slash = "/?"  # with or without the slash, as for presets
api_router.register("tasks", TaskViewSet, basename="task")
