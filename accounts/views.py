"""The user's account page: API tokens made, listed and revoked."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts.forms import ApiTokenForm
from accounts.models import ApiToken


@login_required
@never_cache  # it shows a new token's key once: no browser or proxy may keep a copy
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The user's API tokens: the list, and a form making a new one, whose key is shown in full
    in this response only (only its hash is stored)."""
    new_key = None
    form = ApiTokenForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        token, new_key = ApiToken.objects.create_token(user=request.user, name=form.cleaned_data["name"])
        messages.success(request, f"Created the token “{token.name}”. Copy it now: it is shown only this once.")
        form = ApiTokenForm(user=request.user)
    context = {"tokens": ApiToken.objects.of(request.user), "form": form, "new_key": new_key}
    return render(request, "accounts/account.html", context, status=422 if form.errors else 200)


@login_required
@require_POST
def revoke_token(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.of(request.user), pk=pk)
    token.delete()
    messages.success(request, f"Revoked the token “{token.name}”; requests using it are now refused.")
    return redirect("account")
