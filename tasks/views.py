from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@login_required
@require_safe
def task_list(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks/task_list.html")


@login_required
@require_safe
def task_new(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks/task_new.html")
