"""The Presets pages. Each works without JavaScript; htmx swaps fragments where it helps."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from autotuner.http import parse_json
from autotuner.pages import filtered_page, template_for
from presets.exchange import (
    MAX_IMPORT_SIZE,
    download_response,
    dump,
    export_bundle,
    parse_document,
    preset_download,
)
from presets.filters import PresetFilter
from presets.forms import ImportForm, PresetForm, preview_parameters
from presets.merging import grid_summary
from presets.models import (
    SUGGESTED_CATEGORIES,
    SYSTEM_READ_ONLY,
    NameTaken,
    ParameterPreset,
    ReadOnlyPreset,
)
from presets.validators import Problem

INVALID = 422  # a form sent back with its errors; htmx is configured to swap it like a 200


def _editable_preset(request: HttpRequest, pk: int) -> ParameterPreset:
    preset = get_object_or_404(ParameterPreset, pk=pk)
    if preset.is_system:
        raise PermissionDenied(SYSTEM_READ_ONLY)
    if not preset.can_change(request.user):
        raise PermissionDenied("Only the preset's creator or staff can change it.")
    return preset


@login_required
@require_safe
@vary_on_headers("HX-Request")
def preset_list(request: HttpRequest) -> HttpResponse:
    listing = filtered_page(request, PresetFilter, ParameterPreset.objects.select_related("created_by"))
    context = {
        **listing,
        "rows": [
            (preset, grid_summary(preset.parameters), preset.can_change(request.user)) for preset in listing["page"]
        ],
        "categories": sorted(
            set(SUGGESTED_CATEGORIES)
            | set(ParameterPreset.objects.exclude(category="").order_by().values_list("category", flat=True).distinct())
        ),
    }
    return render(request, template_for(request, "presets/preset_list.html", "preset-table"), context)


@login_required
@require_safe
def preset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    preset = get_object_or_404(ParameterPreset.objects.select_related("created_by"), pk=pk)
    context = {
        "preset": preset,
        "can_change": preset.can_change(request.user),
        "metadata_json": json.dumps(preset.metadata, indent=2, ensure_ascii=False),
        "warnings": preset.engine_warnings,
    }
    return render(request, "presets/preset_detail.html", context)


def _form_page(
    request: HttpRequest, form: PresetForm, preset: ParameterPreset | None, status: int = 200
) -> HttpResponse:
    context = {
        "form": form,
        "preset": preset,
        # The name as stored: a refused form has already copied the typed name onto the instance.
        "stored_name": ParameterPreset.objects.filter(pk=preset.pk).values_list("name", flat=True).first()
        if preset
        else "",
        "categories": SUGGESTED_CATEGORIES,
        "preview": preview_parameters(form["parameters"].value(), form["runtime"].value() or ""),
    }
    return render(request, "presets/preset_form.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def preset_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = PresetForm(request.POST)
        if form.is_valid():
            preset = form.save(commit=False)
            preset.created_by = request.user
            preset.save(by=request.user, note=form.cleaned_data.get("change_note", ""))
            messages.success(request, f"Created preset “{preset.name}”.")
            return redirect(preset)
        return _form_page(request, form, None, INVALID)
    initial = {"parameters": '{\n  "tp-size": [1, 2]\n}', "metadata": "{}"}
    return _form_page(request, PresetForm(initial=initial), None)


@login_required
@require_http_methods(["GET", "POST"])
def preset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    if request.method == "POST":
        with transaction.atomic():
            preset = _editable_preset(request, pk)
            form = PresetForm(request.POST, instance=preset)
            if form.is_valid():
                form.save(commit=False).save(by=request.user, note=form.cleaned_data.get("change_note", ""))
                messages.success(request, f"Saved preset “{preset.name}”.")
                return redirect(preset)
        return _form_page(request, form, preset, INVALID)
    preset = _editable_preset(request, pk)
    return _form_page(request, PresetForm(instance=preset), preset)


@login_required
@require_POST
def parameters_preview(request: HttpRequest) -> HttpResponse:
    """The live check of the parameters editor: always 200, problems shown inline."""
    return render(
        request,
        "presets/preset_form.html#parameters-preview",
        {"preview": preview_parameters(request.POST.get("parameters", ""), request.POST.get("runtime", ""))},
    )


@login_required
@require_POST
def preset_duplicate(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        copy = get_object_or_404(ParameterPreset, pk=pk).duplicate(by=request.user)
    messages.success(request, f"Created “{copy.name}”, your own copy to edit.")
    return redirect(copy)


@login_required
@require_http_methods(["GET", "POST"])
def preset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    preset = _editable_preset(request, pk)
    if request.method == "POST":
        name = preset.name
        preset.trash(by=request.user)
        messages.success(request, f"Deleted preset “{name}”.")  # the confirmation said where it goes
        if request.htmx:
            return HttpResponseClientRedirect(reverse("presets:list"))
        return redirect("presets:list")
    return render(request, "presets/preset_confirm_delete.html", {"preset": preset})


@login_required
@require_safe
def preset_export(request: HttpRequest, pk: int) -> HttpResponse:
    preset = get_object_or_404(ParameterPreset, pk=pk)
    return preset_download(preset)


@login_required
@require_safe
def preset_export_shown(request: HttpRequest) -> HttpResponse:
    filterset = PresetFilter(request.GET, queryset=ParameterPreset.objects.all())
    presets = filterset.qs if filterset.is_valid() else ParameterPreset.objects.none()
    return download_response(dump(export_bundle(presets)), "presets.json")


@login_required
@require_http_methods(["GET", "POST"])
def preset_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            contents, problems = parse_document(parse_json(upload.read()))
        except Exception as error:
            problems = [Problem("", str(getattr(error, "detail", error)))]
        if not problems:
            try:
                with transaction.atomic():
                    imported = ParameterPreset.objects.import_contents(
                        contents, on_conflict=form.cleaned_data["on_conflict"], by=request.user
                    )
            except NameTaken as error:
                names = ", ".join(f"“{preset.name}”" for _, preset in error.clashes)
                form.add_error(
                    None,
                    f"Already taken: {names}. Nothing was imported; choose “rename” or “replace” to go on.",
                )
            except (ReadOnlyPreset, PermissionDenied) as error:
                form.add_error(None, f"{error} Nothing was imported.")
            else:
                names = ", ".join(f"“{preset.name}”" for preset in imported)
                count = len(imported)
                messages.success(request, f"Imported {count} preset{'s' if count != 1 else ''}: {names}.")
                return redirect("presets:list")
    status = INVALID if request.method == "POST" else 200
    context = {"form": form, "problems": problems, "max_size": MAX_IMPORT_SIZE}
    return render(request, "presets/preset_import.html", context, status=status)


def dashboard_context() -> dict[str, Any]:
    return {
        "system_presets": ParameterPreset.objects.system().count(),
        "user_presets": ParameterPreset.objects.user_made().count(),
        "recent_presets": ParameterPreset.objects.order_by("-updated_at")[:8],
    }
