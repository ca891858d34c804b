"""The Presets pages. Each works without JavaScript; htmx swaps fragments where it helps."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from autotuner.http import parse_json
from autotuner.pages import HtmxHttpRequest, filtered_page, template_for
from presets.diff import diff_contents
from presets.exchange import (
    MAX_IMPORT_SIZE,
    download_response,
    dump,
    export_bundle,
    import_contents,
    parse_document,
    preset_download,
)
from presets.filters import PresetFilter
from presets.forms import ImportForm, PresetForm, preview_parameters, printable
from presets.merging import count_combinations, grid_summary
from presets.models import (
    SUGGESTED_CATEGORIES,
    SYSTEM_READ_ONLY,
    TRASH_DAYS,
    NameInUse,
    NameTaken,
    ParameterPreset,
    ReadOnlyPreset,
    Runtime,
    import_engine_problems,
)
from presets.validators import MAX_NAME_LENGTH, Problem, listed, name_problems

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
def preset_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
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
    return preset_download(preset, history=request.GET.get("history") == "true")


@login_required
@require_safe
def preset_export_shown(request: HttpRequest) -> HttpResponse:
    filterset = PresetFilter(request.GET, queryset=ParameterPreset.objects.all())
    presets = filterset.qs if filterset.is_valid() else ParameterPreset.objects.none()
    return download_response(dump(export_bundle(presets, history=request.GET.get("history") == "true")), "presets.json")


@login_required
@require_http_methods(["GET", "POST"])
def preset_import(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES) if request.method == "POST" else ImportForm()
    problems: list[Problem] = []
    if request.method == "POST" and form.is_valid():
        try:
            document = parse_json(form.cleaned_data["content"])
            contents, problems = parse_document(document)
            problems += import_engine_problems(document, contents)
        except Exception as error:
            problems = [Problem("", str(getattr(error, "detail", error)))]
        problems = [Problem(printable(problem.path), printable(problem.message)) for problem in listed(problems)]
        if not problems:
            try:
                with transaction.atomic():
                    imported = import_contents(contents, on_conflict=form.cleaned_data["on_conflict"], by=request.user)
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
        form.keep_document()
    status = INVALID if request.method == "POST" else 200
    context = {"form": form, "problems": problems, "max_size": MAX_IMPORT_SIZE}
    return render(request, "presets/preset_import.html", context, status=status)


def dashboard_context() -> dict[str, Any]:
    return {
        "system_presets": ParameterPreset.objects.system().count(),
        "user_presets": ParameterPreset.objects.user_made().count(),
        "recent_presets": ParameterPreset.objects.order_by("-updated_at")[:8],
    }


# History: every version of a preset, the difference between two, restoring one


def _version_problem(raw: str, versions: list[int]) -> str:
    """Why ``raw`` names no version of a preset with ``versions`` (newest first)."""
    has = (
        f"it has versions {versions[-1]} to {versions[0]}"
        if len(versions) > 1
        else f"it has only version {versions[0]}"
    )
    if raw.isascii() and raw.isdigit():
        return f"This preset has no version {raw}; {has}."
    return f"“{raw}” is not a version number; {has}."


def _chosen_version(request: HttpRequest, key: str, versions: list[int]) -> tuple[int | None, str]:
    """The version a ``from``/``to`` query parameter names (None when not given), or what is wrong with it."""
    raw = request.GET.get(key, "").strip()
    if not raw:
        return None, ""
    # Digits only: int() would also take "1_0", " 3" or "٣", and refuses thousands of digits.
    if raw.isascii() and raw.isdigit() and len(raw) <= 10 and int(raw) in versions:
        return int(raw), ""
    return None, _version_problem(raw[:40], versions)


FIELD_LABELS = {
    "name": "Name",
    "description": "Description",
    "category": "Category",
    "runtime": "Runtime",
    "metadata": "Metadata",
}


def _field_shown(field: str, value: Any) -> str:
    if field == "metadata":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if field == "runtime":
        return Runtime(value).label if value in Runtime.values else value or "any engine"
    return value


def _comparison(request: HttpRequest, preset: ParameterPreset, versions: list[int]) -> dict[str, Any]:
    """What the diff area shows for the ``from`` and ``to`` asked for: the two versions and their
    difference, or why there is none. Defaults: the latest version against the one before it."""
    if not versions:
        return {"problems": [], "info": "This preset has no recorded versions yet."}
    new_number, new_problem = _chosen_version(request, "to", versions)
    old_number, old_problem = _chosen_version(request, "from", versions)
    new_number = new_number if new_number is not None else versions[0]
    if old_number is None and new_number - 1 in versions:
        old_number = new_number - 1
    # What the form's selects show: the versions asked for, or the defaults in place of a bad one.
    comparison: dict[str, Any] = {
        "problems": [problem for problem in (old_problem, new_problem) if problem],
        "chosen": {"from": old_number if old_number is not None else new_number, "to": new_number},
    }
    if comparison["problems"]:
        return comparison
    if old_number is None:
        comparison["info"] = f"Version {new_number} is the first version: there is nothing before it to compare."
        return comparison
    chosen = comparison["chosen"]
    revisions = {
        revision.version: revision for revision in preset.revisions.filter(version__in=chosen.values()).order_by()
    }
    old, new = revisions[chosen["from"]], revisions[chosen["to"]]
    diff = diff_contents(old.content, new.content)
    comparison.update(
        old=old,
        new=new,
        diff=diff,
        fields=[
            {
                "label": FIELD_LABELS.get(change.field, change.field),
                "old": _field_shown(change.field, change.old),
                "new": _field_shown(change.field, change.new),
                "is_json": change.field == "metadata",
            }
            for change in diff.fields_changed
        ],
    )
    return comparison


@login_required
@require_safe
@vary_on_headers("HX-Request")
def preset_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every version, newest first, and the difference between two of them (``?from=1&to=3``).
    The compare form swaps only the diff area with htmx; without JavaScript it loads the page."""
    preset = get_object_or_404(ParameterPreset, pk=pk)
    revisions = list(preset.revisions.select_related("created_by").defer("content").order_by("-version"))
    versions = [revision.version for revision in revisions]
    context = {
        "preset": preset,
        # Each version with the one before it, for its "compare with previous" link.
        "rows": list(zip(revisions, [*versions[1:], None], strict=True)),
        "revisions": revisions,
        "comparison": _comparison(request, preset, versions),
    }
    return render(request, template_for(request, "presets/history.html", "diff"), context)


@login_required
@require_safe
def preset_version(request: HttpRequest, pk: int, version: int) -> HttpResponse:
    preset = get_object_or_404(ParameterPreset, pk=pk)
    revision = get_object_or_404(preset.revisions.select_related("created_by"), version=version)
    content = revision.content
    runtime = content.get("runtime", "")
    is_current = revision.version == preset.current_version
    context = {
        "preset": preset,
        "revision": revision,
        "content": content,
        "runtime_label": _field_shown("runtime", runtime),
        "combinations": count_combinations(revision.parameters),
        "metadata_json": json.dumps(content.get("metadata") or {}, indent=2, ensure_ascii=False),
        "is_current": is_current,
        "can_restore": not is_current and preset.can_change(request.user),
    }
    return render(request, "presets/version.html", context)


@login_required
@require_POST
def preset_restore_version(request: HttpRequest, pk: int, version: int) -> HttpResponse:
    with transaction.atomic():
        preset = _editable_preset(request, pk)
        if not preset.revisions.filter(version=version).exists():
            raise Http404("No such version.")
        if version == preset.current_version:
            messages.info(request, f"Version {version} is already the current version; nothing was restored.")
            return redirect("presets:history", preset.pk)
        try:
            with transaction.atomic():  # a savepoint: a name taken meanwhile fails only this
                restored = preset.restore_version(version, by=request.user)
        except (NameInUse, IntegrityError) as error:
            name = error.name if isinstance(error, NameInUse) else ""
            messages.error(
                request,
                f"Version {version} was not restored: another preset is named “{name}” now. "
                "Rename that preset first, then restore again."
                if name
                else f"Version {version} was not restored: its name was taken meanwhile.",
            )
            return redirect("presets:version", preset.pk, version)
    messages.success(request, f"Restored version {version} of “{preset.name}” as version {restored.version}.")
    return redirect("presets:history", preset.pk)


# The trash: deleted presets, restorable for TRASH_DAYS days


def _trash_page(
    request: HttpRequest, *, refused: ParameterPreset | None = None, name: str = "", error: str = ""
) -> HttpResponse:
    """The trash page; ``refused`` is the preset a restore was refused for, shown with a form asking
    for another name (``name`` as typed) and ``error``."""
    trashed = (
        ParameterPreset.everything.filter(deleted_at__isnull=False)
        .select_related("deleted_by", "created_by")
        .order_by("-deleted_at", "-pk")
    )
    if not request.user.is_staff:
        trashed = trashed.filter(created_by_id=request.user.pk)
    context = {
        "trashed": trashed,
        "refused": refused,
        "refused_name": name,
        "refused_error": error,
        "trash_days": TRASH_DAYS,
        "max_name_length": MAX_NAME_LENGTH,
    }
    return render(request, "presets/trash.html", context, status=INVALID if refused else 200)


@login_required
@require_safe
def preset_trash(request: HttpRequest) -> HttpResponse:
    return _trash_page(request)


@login_required
@require_POST
def preset_untrash(request: HttpRequest, pk: int) -> HttpResponse:
    """Bring a preset back from the trash, under a new name (the ``name`` field) if its old one was taken."""
    with transaction.atomic():
        preset = get_object_or_404(ParameterPreset.everything.filter(deleted_at__isnull=False), pk=pk)
        if not preset.can_change(request.user):
            raise PermissionDenied("Only the preset's creator or staff can restore it.")
        name: str | None = None
        if "name" in request.POST:
            typed = request.POST["name"]
            name, problems = name_problems(typed)
            if problems:
                error = str(problems[0])
                return _trash_page(request, refused=preset, name=typed, error=error[:1].upper() + error[1:] + ".")
        try:
            with transaction.atomic():  # a savepoint: a name taken meanwhile fails only this
                preset.untrash(by=request.user, name=name)
        except (NameInUse, IntegrityError) as error:
            wanted = error.name if isinstance(error, NameInUse) else (name or preset.name)
            preset.refresh_from_db()
            return _trash_page(
                request,
                refused=preset,
                name=ParameterPreset.objects.free_name(wanted, suffix="restored"),  # a suggestion that is free
                error=f"Another preset is named “{wanted}” now; choose a new name.",
            )
    messages.success(request, f"Restored “{preset.name}” from the trash.")
    return redirect(preset)
