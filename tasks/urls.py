from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from tasks import views
from tasks.api import TaskViewSet

app_name = "tasks"

urlpatterns = [
    path("", views.task_list, name="list"),
    path("new/", views.task_new, name="new"),
    path("<int:pk>/", views.task_detail, name="detail"),
    path("<int:pk>/edit/", views.task_edit, name="edit"),
    path("<int:pk>/duplicate/", views.task_duplicate, name="duplicate"),
    path("<int:pk>/delete/", views.task_delete, name="delete"),
    path("<int:pk>/save-grid/", views.task_save_grid, name="save-grid"),
    path("<int:pk>/plan.json", views.task_plan_json, name="plan-json"),
    path("<int:pk>/plan.sh", views.task_plan_shell, name="plan-sh"),
]

api_router = SimpleRouter()
api_router.trailing_slash = "/?"  # with or without the slash, as for presets
api_router.register("tasks", TaskViewSet, basename="task")
