"""The tasks REST API under /api/tasks/: same authentication, error shape and slash rule as presets.

Input is validated by TaskForm, the same form the pages use, so a rule lives in one place.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, TextField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError, invalid
from presets.fields import GridField
from presets.merging import MergeStrategy
from presets.models import ParameterPreset
from presets.serializers import ErrorSerializer
from presets.validators import InvalidParameters, Problem, describe_type, normalize_parameters, parse_id
from tasks import lifecycle
from tasks import results as run_results
from tasks.filters import TaskFilter
from tasks.forms import TaskForm
from tasks.models import ExperimentStatus, Task, TransitionRefused, merge_presets

FORM_FIELDS = TaskForm._meta.fields
PLAN_PAGE_SIZE = 100
MAX_PLAN_PAGE_SIZE = 1000
READ_ONLY = ["id", "status", "applied_presets", "parameters_edited", "combinations", "runnable", "skipped", "warnings"]
RUN_FIELDS = ["preset_versions", "status_changed_at", "status_history", "started_at", "finished_at", "error"]
RUN_ACTIONS = {
    "start": lifecycle.start,
    "cancel": lifecycle.cancel,
    "restart": lifecycle.restart,
    "resume": lifecycle.resume,
}


class TaskSerializer(serializers.ModelSerializer):
    """The task's shape, for the schema; validation is TaskForm's."""

    combinations = serializers.IntegerField(read_only=True)
    runnable = serializers.IntegerField(read_only=True, help_text="Combinations the engine constraints let run.")
    skipped = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text="Why the others are skipped, with how many."
    )
    warnings = serializers.ListField(child=serializers.DictField(), read_only=True)
    parameters = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField()), required=False, help_text="The grid to explore."
    )
    concurrency_levels = serializers.ListField(child=serializers.IntegerField(), required=False)
    merge_strategy = serializers.ChoiceField(
        choices=[strategy.value for strategy in MergeStrategy],
        allow_null=True,
        required=False,
        help_text="How `presets` are merged (default union); null when the grid was typed by hand.",
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True)
    presets = serializers.ListField(
        child=serializers.IntegerField(), write_only=True, required=False, help_text="Preset ids, merged in order."
    )
    error = serializers.CharField(
        read_only=True, allow_null=True, help_text="Why the last run failed or stopped, in one sentence."
    )

    class Meta:
        model = Task
        fields = [
            *READ_ONLY,
            *FORM_FIELDS,
            "presets",
            "merge_strategy",
            "created_by",
            "created_at",
            "updated_at",
            *RUN_FIELDS,
        ]
        read_only_fields = [*READ_ONLY, "created_at", "updated_at", *RUN_FIELDS]


ERRORS = {code: OpenApiResponse(ErrorSerializer) for code in (400, 401, 403, 404, 409)}


def represent(task: Task) -> dict[str, Any]:
    data = {field: getattr(task, field) for field in ("id", *FORM_FIELDS)}
    data.update(
        status=task.status,
        applied_presets=task.applied_presets,
        preset_versions=task.preset_versions,
        merge_strategy=task.merge_strategy or None,
        parameters_edited=task.parameters_edited,
        combinations=task.combinations,
        runnable=task.plan_summary.runnable,
        skipped=task.plan_summary.skipped,
        warnings=[finding.as_dict() for finding in task.engine_warnings],
        created_by=task.created_by.username if task.created_by else None,
        created_at=task.created_at,
        updated_at=task.updated_at,
        seed=task.seed,
        status_changed_at=task.status_changed_at,
        status_history=task.status_history,
        started_at=task.started_at,
        finished_at=task.finished_at,
        error=task.error or None,
    )
    return data


def _page_number(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    value = parse_id(raw)
    if value is None or value > maximum:
        raise invalid([Problem(name, f"expected a whole number from 1 up to {maximum:,}, got {raw[:20]!r}")])
    return value


def _form_data(task: Task | None, payload: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """TaskForm's data: the payload over the stored task (PATCH) or over the defaults (POST, PUT)."""
    if partial and task is not None:
        data = {field: getattr(task, field) for field in FORM_FIELDS}
    else:
        blank = TaskForm()
        data = {field: blank[field].initial for field in FORM_FIELDS}
    data.update({field: payload[field] for field in FORM_FIELDS if field in payload})
    return {field: value for field, value in data.items() if value is not None}


@extend_schema_view(
    list=extend_schema(summary="List tasks", responses={200: TaskSerializer(many=True), 401: ERRORS[401]}),
    retrieve=extend_schema(summary="Get one task", responses={200: TaskSerializer, **ERRORS}),
    create=extend_schema(
        summary="Create a task from a grid, from presets (merged in order), or both",
        request=TaskSerializer,
        responses={201: TaskSerializer, **ERRORS},
    ),
    update=extend_schema(summary="Replace a task", request=TaskSerializer, responses={200: TaskSerializer, **ERRORS}),
    partial_update=extend_schema(
        summary="Change some fields of a task", request=TaskSerializer, responses={200: TaskSerializer, **ERRORS}
    ),
    destroy=extend_schema(summary="Delete a task", responses={204: None, **ERRORS}),
)
class TaskViewSet(viewsets.GenericViewSet):
    queryset = Task.objects.select_related("created_by")
    serializer_class = TaskSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFilter
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Task:
        raw = self.kwargs["pk"]
        pk = parse_id(raw)
        task = self.get_queryset().filter(pk=pk).first() if pk else None
        if task is None:
            raise ApiError(status.HTTP_404_NOT_FOUND, f"Task {raw[:40]} not found")
        return task

    def _changeable(self, task: Task) -> None:
        if not task.can_change(self.request.user):
            raise ApiError(status.HTTP_403_FORBIDDEN, "Only the task's creator or staff can change it.")
        if task.is_locked:
            raise ApiError(status.HTTP_409_CONFLICT, f"The task is {task.status}; it cannot be changed until it stops.")

    def list(self, request: Request) -> Response:
        tasks = self.filter_queryset(self.get_queryset())[:1000]
        return Response([represent(task) for task in tasks])

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(represent(self.get_object()))

    def create(self, request: Request) -> Response:
        task = self._save(None, request.data, partial=False)
        return Response(represent(task), status=status.HTTP_201_CREATED)

    def update(self, request: Request, pk: str) -> Response:
        return Response(represent(self._save(self.get_object(), request.data, partial=False)))

    def partial_update(self, request: Request, pk: str) -> Response:
        return Response(represent(self._save(self.get_object(), request.data, partial=True)))

    @extend_schema(
        summary="The experiments the task plans: each runnable combination and its launch command, paginated",
        parameters=[
            OpenApiParameter("page", int, description="1-based page number."),
            OpenApiParameter("page_size", int, description=f"Default {PLAN_PAGE_SIZE}, at most {MAX_PLAN_PAGE_SIZE}."),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def plan(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        page = _page_number(request, "page", 1, 10**9)
        page_size = _page_number(request, "page_size", PLAN_PAGE_SIZE, MAX_PLAN_PAGE_SIZE)
        summary = task.plan_summary
        start = (page - 1) * page_size
        rows = [
            {"number": number, "parameters": combination, "command": command}
            for number, combination, command in itertools.islice(task.plan(), start, start + page_size)
        ]
        headers = {"X-Total-Count": str(summary.runnable)}
        if start + page_size < summary.runnable:
            query = request.query_params.copy()
            query["page"] = str(page + 1)
            headers["Link"] = f'<{request.build_absolute_uri(f"{request.path}?{query.urlencode()}")}>; rel="next"'
        body = {
            "combinations": summary.total,
            "runnable": summary.runnable,
            "skipped": summary.skipped,
            "page": page,
            "experiments": rows,
        }
        return Response(body, headers=headers)

    def _run_action(self, name: str) -> Response:
        task = self.get_object()
        if not task.can_change(self.request.user):
            raise ApiError(status.HTTP_403_FORBIDDEN, "Only the task's creator or staff can run or stop it.")
        try:
            task = RUN_ACTIONS[name](task)
        except TransitionRefused as refusal:
            raise ApiError(status.HTTP_409_CONFLICT, str(refusal)) from None
        task = self.get_queryset().get(pk=task.pk)
        return Response(represent(task), status=status.HTTP_200_OK if name == "cancel" else status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Start a draft task: plan its experiments and queue them for the workers",
        request=None,
        responses={202: TaskSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._run_action("start")

    @extend_schema(
        summary="Cancel a queued or running task; a running engine is stopped within seconds",
        request=None,
        responses={200: TaskSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._run_action("cancel")

    @extend_schema(
        summary="Run a finished task again from a clean slate (its experiments are deleted)",
        request=None,
        responses={202: TaskSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        return self._run_action("restart")

    @extend_schema(
        summary="Continue a cancelled or failed task without repeating finished experiments",
        request=None,
        responses={202: TaskSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._run_action("resume")

    @extend_schema(
        summary="The task's experiments with their outcome",
        parameters=[
            OpenApiParameter(
                "sort", str, enum=[*run_results.SORTS], description="Default number; score sorts best first."
            ),
            OpenApiParameter("status", str, enum=ExperimentStatus.values),
        ],
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def experiments(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        sort = request.query_params.get("sort", "number")
        wanted = request.query_params.get("status")
        problems = []
        if sort not in run_results.SORTS:
            problems.append(Problem("sort", f"expected one of {', '.join(run_results.SORTS)}, got {sort[:40]!r}"))
        if wanted is not None and wanted not in ExperimentStatus.values:
            problems.append(
                Problem("status", f"expected one of {', '.join(ExperimentStatus.values)}, got {wanted[:40]!r}")
            )
        if problems:
            raise invalid(problems)
        experiments = task.experiments.all()
        if wanted:
            experiments = experiments.filter(status=wanted)
        rows = run_results.sort_experiments(task, list(experiments), sort)
        return Response([run_results.record(experiment) for experiment in rows])

    @extend_schema(
        summary="The run's results: the best configuration, the Pareto front and every experiment",
        responses={200: OpenApiTypes.OBJECT, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def results(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        return Response(run_results.results(task, list(task.experiments.all())))

    def destroy(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        self._changeable(task)
        task.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _save(self, task: Task | None, payload: Any, *, partial: bool) -> Task:
        if not isinstance(payload, dict):
            raise invalid([Problem("", "expected a JSON object describing the task")])
        if task is not None:
            self._changeable(task)
        problems: list[Problem] = []
        merged, snapshot, strategy = _merge_from_payload(payload, problems)
        if merged is not None:
            overrides: dict[str, Any] = {}
            if payload.get("parameters") is not None:
                try:
                    overrides = normalize_parameters(payload["parameters"])
                except InvalidParameters as error:
                    problems += [problem.under("parameters") for problem in error.problems]
            payload = {**payload, "parameters": {**merged.parameters, **overrides}}
        problems += _type_problems(payload, merged is None)
        if problems:
            raise invalid(problems)

        form = TaskForm(_form_data(task, payload, partial=partial), instance=task)
        if not form.is_valid():
            raise invalid(_form_problems(form))
        with transaction.atomic():
            saved = form.save(commit=False)
            if merged is not None:
                saved.use_merge(snapshot, strategy)
                saved.parameters_edited = json.dumps(saved.parameters, sort_keys=True) != json.dumps(
                    merged.parameters, sort_keys=True
                )
            elif "parameters" in payload and not partial:
                saved.applied_presets, saved.merge_strategy, saved.parameters_edited = [], "", False
            elif "parameters" in payload and saved.applied_presets:
                saved.parameters_edited = True
            if task is None:
                saved.created_by = self.request.user
            saved.save()
        return saved


def _merge_from_payload(payload: dict[str, Any], problems: list[Problem]) -> tuple[Any, list[dict], str]:
    """Merge ``presets`` (ids, in order) by ``merge_strategy`` when the payload names them."""
    ids = payload.get("presets")
    if ids is None:
        return None, [], ""
    if not isinstance(ids, list) or not ids:
        problems.append(Problem("presets", "expected a non-empty list of preset ids, in merge order"))
        return None, [], ""
    bad = [index for index, preset_id in enumerate(ids) if type(preset_id) is not int or not 0 < preset_id < 2**63]
    if bad:
        problems += [
            Problem(f"presets[{index}]", f"expected a preset id, got {json.dumps(ids[index])[:40]}") for index in bad
        ]
        return None, [], ""
    try:
        strategy = MergeStrategy(payload.get("merge_strategy") or MergeStrategy.UNION)
    except ValueError:
        problems.append(
            Problem("merge_strategy", "expected one of " + ", ".join(strategy.value for strategy in MergeStrategy))
        )
        return None, [], ""
    existing = set(ParameterPreset.objects.filter(pk__in=ids).values_list("pk", flat=True))
    first_at: dict[int, int] = {}
    for index, preset_id in enumerate(ids):
        if preset_id in first_at:
            problems.append(
                Problem(f"presets[{index}]", f"preset {preset_id} is repeated (first at index {first_at[preset_id]})")
            )
        elif preset_id not in existing:
            problems.append(Problem(f"presets[{index}]", f"no preset with id {preset_id}"))
        first_at.setdefault(preset_id, index)
    if problems:
        return None, [], ""
    try:
        runtime = payload.get("runtime") or ""
        result, snapshot = merge_presets(ids, strategy, runtime if isinstance(runtime, str) else "")
    except ValidationError as error:
        problems += [Problem("presets", message) for message in error.messages]
        return None, [], ""
    return result, snapshot, strategy.value


_TEXT_FIELDS = [
    field.name
    for field in Task._meta.fields
    if isinstance(field, CharField | TextField) and not isinstance(field, GridField)
]


def _type_problems(payload: dict[str, Any], check_parameters: bool) -> list[Problem]:
    """What the form would accept by coercion but JSON should not: a list where text is expected,
    and the parameters' problems with their full paths (``parameters.tp-size[1]``)."""
    problems = [
        Problem(field, f"expected a string, got {describe_type(payload[field])}")
        for field in _TEXT_FIELDS
        if field in FORM_FIELDS and payload.get(field) is not None and not isinstance(payload[field], str)
    ]
    if check_parameters and payload.get("parameters") is not None:
        try:
            normalize_parameters(payload["parameters"])
        except InvalidParameters as error:
            problems += [problem.under("parameters") for problem in error.problems]
    return problems


def _form_problems(form: TaskForm) -> list[Problem]:
    problems = []
    for field, errors in form.errors.items():
        for message in errors:
            problems.append(Problem("" if field == "__all__" else field, message))
    return problems
