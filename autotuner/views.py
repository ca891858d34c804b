"""The dashboard: the one page that belongs to no single app."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from presets.views import dashboard_context
from tasks.models import Task


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {**dashboard_context(), "tasks": Task.objects.count()}
    return render(request, "dashboard.html", context)
