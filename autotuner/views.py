"""The dashboard: the one page that belongs to no single app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from presets.views import dashboard_context
from tasks.gpus import GpuSlot
from tasks.models import Task


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    # Each host's GPUs, in the order it offers them, and the task and experiment on each now.
    slots = GpuSlot.objects.select_related("experiment__task").only(
        "host", "gpu", "position", "leased_at", "experiment__number", "experiment__task__name"
    )
    context = {**dashboard_context(), "tasks": Task.objects.count(), "gpu_slots": slots}
    return render(request, "dashboard.html", context)
