"""Pages that belong to no single app: the dashboard and the user's account."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe
from rest_framework.authtoken.models import Token

from presets.views import dashboard_context
from tasks.models import Task


@login_required
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    context = {**dashboard_context(), "tasks": Task.objects.count()}
    return render(request, "dashboard.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The user's API token: create (shown in full once), or revoke."""
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        Token.objects.filter(user=request.user).delete()
        if action == "create":
            new_key = Token.objects.create(user=request.user).key
            messages.success(request, "Created a new API token. Copy it now: it is shown only this once.")
        else:
            messages.success(request, "Revoked your API token; requests using it are now refused.")
            return redirect("account")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "accounts/account.html", {"token": token, "new_key": new_key})
