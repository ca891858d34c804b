from __future__ import annotations

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from tasks.forms import TaskForm
from tasks.models import Task


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
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
