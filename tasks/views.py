"""Task pages. The New/Edit form is one view: every button posts to it with an ``action``.

Without JavaScript each action re-renders the whole page; with htmx the selector actions
swap only ``#preset-selector`` and "Apply" only ``#parameters-editor``, so a change of presets
never touches what the user typed in the editor. A new strategy asks the merge preview's own
view (``task_merge_preview``) for ``#merge-preview``.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails
from django_tasks_db.models import DBTaskResult

from autotuner.pages import filtered_page, template_for
from engines.plan import MAX_GRID_EXPERIMENTS
from engines.registry import is_engine
from presets.exchange import download_response, dump
from presets.forms import format_grid, preview_parameters
from presets.merging import MergeStrategy
from presets.models import ParameterPreset, PresetsNotFound
from tasks import lifecycle
from tasks import results as run_results
from tasks.filters import TaskFilter
from tasks.forms import PresetNameForm, PresetSelectionForm, TaskForm
from tasks.models import Experiment, Task
from tasks.plots import pareto_front, scatter_svg
from tasks.states import RUNNING_EXPERIMENT, TaskStatus, TransitionRefused
from tasks.timeline import task_timeline
from tasks.verdict import verdict


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails  # set by django_htmx's middleware


PLAN_ROWS_SHOWN = 50
# A plan download is built whole in one request: as long as the longest grid search, so every grid
# search downloads in full; a longer plan (a random or bayesian search's grid) is read in pages
# through the API's plan endpoint instead.
MAX_PLAN_DOWNLOAD = MAX_GRID_EXPERIMENTS
INVALID = 422
SELECTOR_ACTIONS = ("add:", "remove:", "left:", "right:", "refresh", "preview")


@login_required
@require_safe
@vary_on_headers("HX-Request")
def task_list(request: HtmxHttpRequest) -> HttpResponse:
    listing = filtered_page(request, TaskFilter, Task.objects.select_related("created_by"))
    context = {**listing, "statuses": TaskStatus.choices}
    return render(request, template_for(request, "tasks/task_list.html", "task-table"), context)


@login_required
@require_safe
def task_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("created_by"), pk=pk)
    context = {
        "task": task,
        "can_change": task.can_change(request.user),
        "applied": task.applied_presets_now(),
        "pinned": [entry for entry in task.pinned_presets() if entry["version"]],
        "summary": task.plan_summary,
        "warnings": task.engine_warnings,
        "plan_rows": list(itertools.islice(task.plan(), PLAN_ROWS_SHOWN)),
        "max_plan_download": MAX_PLAN_DOWNLOAD,
        **_run_context(request, task),
    }
    return render(request, "tasks/task_detail.html", context)


def _plan_too_long(request: HtmxHttpRequest, task: Task) -> HttpResponse | None:
    """A 400 page for a plan too long to download in one file (its pages are in the API)."""
    if task.plan_summary.runnable <= MAX_PLAN_DOWNLOAD:
        return None
    context = {"task": task, "runnable": task.plan_summary.runnable, "limit": MAX_PLAN_DOWNLOAD}
    return render(request, "tasks/plan_too_long.html", context, status=400)


@login_required
@require_safe
def task_plan_json(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task, pk=pk)
    if refusal := _plan_too_long(request, task):
        return refusal
    summary = task.plan_summary
    document = {
        "task": task.name,
        "runtime": task.runtime,
        "model": task.model,
        "combinations": summary.total,
        "runnable": summary.runnable,
        "skipped": dict(summary.skipped),
        "experiments": [
            {"number": number, "parameters": combination, "command": command}
            for number, combination, command in task.plan()
        ],
    }
    return download_response(dump(document), f"plan-{slugify(task.name) or task.pk}.json")


@login_required
@require_safe
def task_plan_shell(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task, pk=pk)
    if refusal := _plan_too_long(request, task):
        return refusal
    lines = [
        "#!/bin/sh",
        f"# The experiments of task {json.dumps(task.name)}: one engine launch per line, in plan order.",
        "# Run one at a time; each serves on port 30000 until stopped.",
        *(f"{command}  # experiment {number}" for number, _, command in task.plan()),
    ]
    response = HttpResponse("\n".join(lines) + "\n", content_type="text/x-shellscript; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="plan-{slugify(task.name) or task.pk}.sh"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def task_new(request: HtmxHttpRequest) -> HttpResponse:
    return _task_form(request, None)


@login_required
@require_http_methods(["GET", "POST"])
def task_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _changeable_task(request, pk)
    if task.is_locked:
        messages.error(request, f"“{task.name}” is {task.get_status_display().lower()}; it cannot be edited now.")
        if request.htmx:  # a selector action or a preview: the task page belongs in the window, not a fragment
            return HttpResponseClientRedirect(task.get_absolute_url())
        return redirect(task)
    return _task_form(request, task)


def _changeable_task(request: HtmxHttpRequest, pk: int) -> Task:
    task = get_object_or_404(Task, pk=pk)
    if not task.can_change(request.user):
        raise PermissionDenied("Only the task's creator or staff can change it.")
    return task


def _initial_selection(request: HtmxHttpRequest, task: Task | None) -> PresetSelectionForm:
    # Opening the edit page shows the task's own presets; a link (?presets=) or the selector
    # itself (?selector_present=1, maybe with no preset left) says otherwise.
    if request.method == "GET" and task is not None and not {"presets", "selector_present"} & request.GET.keys():
        data = QueryDict(mutable=True)
        data.setlist("presets", [str(entry["id"]) for entry in task.applied_presets])
        data["merge_strategy"] = task.merge_strategy or "union"
        data["runtime"] = task.runtime
        return PresetSelectionForm(data, post_to=request.path)
    source = request.POST if request.method == "POST" else request.GET
    return PresetSelectionForm(source, post_to=request.path)


def _task_form(request: HtmxHttpRequest, task: Task | None) -> HttpResponse:
    selection = _initial_selection(request, task)
    if request.method == "GET":
        initial: dict[str, Any] = {}
        if task is None:
            chosen = ParameterPreset.objects.filter(pk__in=selection.ids).exclude(runtime="").first()
            initial["runtime"] = request.GET.get("runtime") or (chosen.runtime if chosen else "")
            selection.engine = initial["runtime"] if is_engine(initial["runtime"]) else ""
            result, _ = selection.merged()
            if result and result.parameters:  # arriving from "Use in a new task": start from the merge
                initial["parameters"] = format_grid(result.parameters)
                selection.mark_applied()
        elif task.applied_presets:  # the editor holds the task's grid, made from its own presets
            selection.applied = (
                [entry["id"] for entry in task.applied_presets],
                MergeStrategy(task.merge_strategy or "union"),
            )
        return _render_form(request, TaskForm(initial=initial, instance=task), selection, task)

    action = request.POST.get("action", "save")
    if action.startswith(SELECTOR_ACTIONS):
        selection.apply()
        if request.htmx:
            return render(request, "tasks/task_form.html#preset-selector", selection.context())
        return _render_form(request, TaskForm(initial=request.POST.dict(), instance=task), selection, task)
    data = request.POST.copy()
    if action == "apply":
        result, _ = selection.merged()
        if result and result.parameters:
            data["parameters"] = format_grid(result.parameters)
            selection.mark_applied()
        else:
            selection.problems.append("Nothing to apply: select presets whose merge has parameters.")
        form = TaskForm(initial=data.dict(), instance=task)
        if request.htmx:
            context = {"form": form, "preview": _editor_preview(form), "applied": selection.applied}
            return render(request, "tasks/task_form.html#parameters-editor", context)
        return _render_form(request, form, selection, task)

    stored = Task.objects.get(pk=task.pk) if task else None  # the form writes onto `task` itself
    form = TaskForm(data, instance=task)
    if form.is_valid():
        try:
            saved = _save(request, form, selection, stored)
        except ValidationError as error:  # a name taken or a preset deleted since the form was checked
            form.add_error(None, error)
        else:
            messages.success(request, f"{'Saved' if task else 'Created'} task “{saved.name}”.")
            return redirect(saved)
    return _render_form(request, form, selection, task, status=INVALID)


def _save(request: HtmxHttpRequest, form: TaskForm, selection: PresetSelectionForm, stored: Task | None) -> Task:
    """The task as the form says, built from the selected presets (those that still exist) with the
    editor's grid as the user left it."""
    selection.merged()  # leaves out presets deleted since the page was drawn
    ids, strategy = selection.source()
    grid = form.cleaned_data["parameters"]
    try:
        if stored is None:
            fields = {name: value for name, value in form.cleaned_data.items() if name != "parameters"}
            return Task.objects.create_from_presets(
                presets=ids, strategy=strategy, parameters=grid, whole_grid=True, by=request.user, **fields
            )
        with transaction.atomic():
            saved = form.save(commit=False)
            if _same_source(stored, ids, strategy):
                # The presets the task was built from, untouched: keep its snapshot, even of a preset
                # deleted since; only a changed grid marks it edited.
                saved.applied_presets, saved.merge_strategy = stored.applied_presets, stored.merge_strategy
                saved.parameters_edited = stored.parameters_edited or _as_json(grid) != _as_json(stored.parameters)
            else:
                saved.use_presets(ids, strategy=strategy, parameters=grid, whole_grid=True)
            saved.save()
            return saved
    except PresetsNotFound as error:
        raise ValidationError(str(error)) from None


def _same_source(stored: Task, ids: list[int], strategy: MergeStrategy) -> bool:
    """Whether the grid still comes from the task's presets (all, or those not deleted since) and strategy."""
    if not stored.applied_presets or not ids or strategy != stored.merge_strategy:
        return False
    surviving = [entry["id"] for entry in stored.applied_presets_now() if entry["preset"] is not None]
    return ids in ([entry["id"] for entry in stored.applied_presets], surviving)


def _as_json(grid: dict[str, Any]) -> str:
    return json.dumps(grid, sort_keys=True)


@login_required
@require_safe
def task_merge_preview(request: HtmxHttpRequest) -> HttpResponse:
    """The merge preview alone, for the selector's strategy radios: made from the selector's fields
    and the engine and GPUs in the query. It reads and never writes, and always answers the
    fragment, problems shown in it (a preset deleted meanwhile, an id that is not one)."""
    selection = PresetSelectionForm(request.GET, post_to=_form_url(request))
    return render(request, "tasks/task_form.html#merge-preview", selection.preview_context())


def _form_url(request: HtmxHttpRequest) -> str:
    """The task form the preview is shown in (htmx sends the page's URL), for its Apply button:
    only the New or an Edit form, never a URL a request could choose freely."""
    if request.htmx and request.htmx.current_url_abs_path:
        path = urlsplit(request.htmx.current_url_abs_path).path
        try:
            match = resolve(path)
        except Resolver404:
            match = None
        if match and match.view_name in ("tasks:new", "tasks:edit"):
            return path
    return reverse("tasks:new")


def _render_form(
    request: HtmxHttpRequest, form: TaskForm, selection: PresetSelectionForm, task: Task | None, status: int = 200
) -> HttpResponse:
    typed = form["runtime"].value()
    selection.engine = selection.engine or (typed if is_engine(typed) else "")
    context = {
        **selection.context(),
        "form": form,
        "task": task,
        "preview": _editor_preview(form),
    }
    return render(request, "tasks/task_form.html", context, status=status)


def _editor_preview(form: TaskForm) -> dict[str, Any] | None:
    """The live check of the editor's grid; None before anything is in it or sent (nothing to
    find wrong yet: the page shows a hint, not an error)."""
    text = form["parameters"].value()
    if not form.is_bound and not (text or "").strip():
        return None
    return preview_parameters(text, form["runtime"].value() or "")


@login_required
@require_POST
def task_duplicate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    copy = get_object_or_404(Task, pk=pk).duplicate(by=request.user)
    messages.success(request, f"Created “{copy.name}”, a draft copy.")
    return redirect(copy)


@login_required
@require_http_methods(["GET", "POST"])
def task_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = _changeable_task(request, pk)
    if task.is_locked:
        messages.error(request, f"“{task.name}” is {task.get_status_display().lower()}; cancel it before deleting.")
        return redirect(task)
    if request.method == "POST":
        name = task.name
        task.delete()
        messages.success(request, f"Deleted task “{name}”.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("tasks:list"))
        return redirect("tasks:list")
    return render(request, "tasks/task_confirm_delete.html", {"task": task})


@login_required
@require_POST
def task_save_grid(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    preset = get_object_or_404(Task, pk=pk).save_grid_as_preset(by=request.user)
    messages.success(request, f"Saved the grid as the preset “{preset.name}”.")
    return redirect(preset)


# Running a task

RUN_ACTIONS = {
    "start": (lifecycle.start, "Started “{name}”: {count} experiment(s) queued for the workers."),
    "cancel": (lifecycle.cancel, "Cancelled “{name}”; a running engine stops within seconds."),
    "restart": (lifecycle.restart, "Restarted “{name}” from a clean slate."),
    "resume": (lifecycle.resume, "Resumed “{name}”: finished experiments are kept."),
}
EXPERIMENT_ROWS_SHOWN = 500  # the downloads and the API hold them all
STALE_QUEUE_SECONDS = 30  # a job waiting longer than this suggests no worker is running


@login_required
@require_http_methods(["GET", "POST"])
def task_run_action(request: HtmxHttpRequest, pk: int, action: str) -> HttpResponse:
    """Start, cancel, restart or resume. Restart asks first: a plain GET shows a confirmation page
    (htmx asks with hx-confirm and posts directly)."""
    task = get_object_or_404(Task, pk=pk)
    if not task.can_change(request.user):
        raise PermissionDenied("Only the task's creator or staff can run or stop it.")
    if request.method == "GET":
        if action != "restart":
            return redirect(task)
        if not task.can_restart:
            messages.error(request, lifecycle.restart_refusal(task))
            return redirect(task)
        return render(request, "tasks/task_confirm_restart.html", {"task": task})
    operation, done = RUN_ACTIONS[action]
    try:
        task = operation(task)
    except TransitionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, done.format(name=task.name, count=task.experiments_planned))
    if request.htmx:
        return HttpResponseClientRedirect(task.get_absolute_url())
    return redirect(task)


def _run_context(request: HtmxHttpRequest, task: Task) -> dict[str, Any]:
    """What the run panel shows: progress, the experiments table (sorted as asked) and the results."""
    # Polled every second while running: the engines' logs and per-level figures are read only for
    # the rows shown, never for the whole (possibly long) run.
    experiments = list(task.experiments.defer("log_tail", "levels"))
    sort = request.GET.get("sort", "number")
    if sort not in run_results.SORTS:
        sort = "number"
    judged = verdict(task, experiments)
    best = judged.winner.experiment if judged.winner else None
    points = run_results.plot_points(experiments)
    rows = run_results.sort_experiments(task, experiments, sort)[:EXPERIMENT_ROWS_SHOWN]
    tails = dict(Experiment.objects.filter(pk__in=[row.pk for row in rows]).values_list("pk", "log_tail"))
    by_pk = {experiment.pk: experiment for experiment in experiments}
    for row in rows:
        row.log_tail = tails.get(row.pk, "")
        row.log_tail = row.log_for(request.user)  # the host's launcher line for staff only
        if row.repeat_of_id in by_pk:  # "Repeat of #N" from the experiments loaded, not a query per row
            row.repeat_of = by_pk[row.repeat_of_id]
    return {
        "task": task,
        "can_change": task.can_change(request.user),
        "experiments": rows,
        "experiment_count": len(experiments),
        "sort": sort,
        "sorts": run_results.SORTS,
        "progress": run_results.progress(task, experiments),
        "best": best,
        "verdict": judged,
        "save_preset_form": _save_preset_form(best) if best else None,
        "front": {point.number for point in pareto_front(points)},
        "plot": scatter_svg(points, best=best.number if best else None) if points else "",
        "timeline": task_timeline(experiments, now=timezone.now()),
        "waiting_for_worker": task.status == TaskStatus.QUEUED and _queue_is_stale(),
    }


def _save_preset_form(best: Experiment) -> PresetNameForm:
    """The results card's "Save as preset" name, the suggestion filled in; ids of its own per experiment."""
    return PresetNameForm(initial={"name": best.suggested_preset_name()}, auto_id=f"id_preset_%s_{best.number}")


def _queue_is_stale() -> bool:
    cutoff = timezone.now() - timedelta(seconds=STALE_QUEUE_SECONDS)
    return DBTaskResult.objects.ready().filter(enqueued_at__lt=cutoff).exists()


@login_required
@require_safe
def task_progress(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run panel alone, polled by the task page while the task is queued or running."""
    task = get_object_or_404(Task, pk=pk)
    # The heading's status badge rides along out of band: it never says "Queued" beside a running panel.
    response = render(request, "tasks/_run.html", {**_run_context(request, task), "status_out_of_band": True})
    if request.htmx and request.GET.get("live") and not task.is_locked and not _still_stopping(task):
        # The run just ended: reload the page once, so its header, actions and plan are current too.
        response["HX-Refresh"] = "true"
    return response


def _still_stopping(task: Task) -> bool:
    return task.experiments.filter(status__in=RUNNING_EXPERIMENT).exists()


@login_required
@require_safe
def task_results(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(Task.objects.select_related("created_by"), pk=pk)
    return render(request, "tasks/task_results.html", _run_context(request, task))


@login_required
@require_safe
def task_results_download(request: HtmxHttpRequest, pk: int, kind: str) -> HttpResponse:
    task = get_object_or_404(Task, pk=pk)
    experiments = list(task.experiments.all())
    name = f"results-{slugify(task.name) or task.pk}"
    if kind == "csv":
        response = HttpResponse(run_results.results_csv(task, experiments), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    return download_response(run_results.results_json(task, experiments, user=request.user).encode(), f"{name}.json")


@login_required
@require_http_methods(["GET", "POST"])
def experiment_save_preset(request: HtmxHttpRequest, pk: int, number: int) -> HttpResponse:
    """Save an experiment's configuration as a preset, under the name the user gives (the results
    card sends it; this page asks for it again when it is taken or missing)."""
    # Through the task's own id: a lookup on the foreign key column lets an id past 64 bits reach the
    # database driver, which raises instead of finding nothing.
    experiment = get_object_or_404(Experiment.objects.select_related("task"), task__pk=pk, number=number)
    if request.method == "GET":
        form = PresetNameForm(initial={"name": experiment.suggested_preset_name()})
    else:
        form = PresetNameForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    preset = experiment.save_as_preset(by=request.user, name=form.cleaned_data["name"])
            except IntegrityError:  # taken between the check and the save
                form.add_error("name", f"A preset named “{form.cleaned_data['name']}” already exists.")
            else:
                messages.success(request, f"Saved experiment {number}'s configuration as the preset “{preset.name}”.")
                return redirect(preset)
    context = {"form": form, "experiment": experiment, "task": experiment.task}
    return render(request, "tasks/experiment_save_preset.html", context, status=INVALID if form.errors else 200)
