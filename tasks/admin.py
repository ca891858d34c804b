from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from tasks.forms import TaskForm
from tasks.models import Experiment, Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    form = TaskForm  # the same validation as the task pages
    list_display = ["name", "model", "runtime", "status", "combinations", "created_by", "created_at"]
    list_filter = ["status", "runtime", "optimization_strategy"]
    search_fields = ["name", "model", "description"]
    readonly_fields = [
        "applied_presets",
        "merge_strategy",
        "parameters_edited",
        "created_by",
        "created_at",
        "updated_at",
        "status_changed_at",
        "started_at",
        "finished_at",
        "error",
    ]

    @admin.display(description="combinations")
    def combinations(self, task: Task) -> int:
        return task.combinations

    def has_change_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        if obj is not None and obj.is_locked:
            return False  # queued or running: shown read-only, as on the task pages
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        if obj is not None and obj.is_locked:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Task, form: forms.ModelForm, change: bool) -> None:
        if not change and request.user.is_authenticated:  # always, in the admin
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Read-only: experiments are written by the workers alone."""

    list_display = ["task", "number", "status", "score", "throughput", "latency", "worker", "finished_at"]
    list_filter = ["status"]
    search_fields = ["task__name", "error"]
    list_select_related = ["task"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Experiment | None = None) -> bool:
        return False
