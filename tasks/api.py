"""The tasks REST API under /api/tasks/: same authentication, error shape and slash rule as presets.

TaskSerializer validates and renders; the model checks a task whole and creates it from presets
(``Task.objects.create_from_presets``), as the pages do.
"""

from __future__ import annotations

import itertools
from typing import Any

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response

from autotuner.http import ApiError, error_responses
from autotuner.pagination import PAGINATION_HEADERS, HeaderPagination, page_headers
from engines.registry import engine_names
from presets.validators import parse_id
from tasks import lifecycle
from tasks import results as run_results
from tasks.filters import TaskFilter
from tasks.models import Task
from tasks.serializers import WHOLE_TASK_RULES, TaskSerializer
from tasks.states import ExperimentRole, ExperimentStatus, TaskStatus, TransitionRefused

PLAN_PAGE_SIZE = 100
MAX_PLAN_PAGE_SIZE = 1000
MAX_PLAN_PAGE = 10**9
RUN_ACTIONS = {
    "start": lifecycle.start,
    "cancel": lifecycle.cancel,
    "restart": lifecycle.restart,
    "resume": lifecycle.resume,
}


def _one_of(values: Any) -> dict[str, Any]:
    return {"invalid_choice": f"expected one of {', '.join(values)}, got '{{input}}'"}


class QueryValue(serializers.Field):
    """A query parameter as sent: empty is a wrong value (DRF would read it as absent), and so is a
    parameter given twice (DRF would take the last); the schema says one value of its type."""

    def get_value(self, dictionary: Any) -> Any:
        values = dictionary.getlist(self.field_name)
        if not values:
            return empty
        return values[0] if len(values) == 1 else values


class QueryIntegerField(QueryValue, serializers.IntegerField):
    pass


class PlanQuerySerializer(serializers.Serializer):
    page = QueryIntegerField(min_value=1, max_value=MAX_PLAN_PAGE, default=1, help_text="1-based page number.")
    page_size = QueryIntegerField(
        min_value=1,
        max_value=MAX_PLAN_PAGE_SIZE,
        default=PLAN_PAGE_SIZE,
        help_text=f"Default {PLAN_PAGE_SIZE}, at most {MAX_PLAN_PAGE_SIZE}.",
    )


class QueryChoiceField(QueryValue, serializers.ChoiceField):
    pass


class ExperimentsQuerySerializer(serializers.Serializer):
    sort = QueryChoiceField(
        choices=list(run_results.SORTS),
        default="number",
        error_messages=_one_of(run_results.SORTS),
        help_text="Default number; score sorts best first.",
    )
    status = QueryChoiceField(
        choices=ExperimentStatus.values, required=False, error_messages=_one_of(ExperimentStatus.values)
    )


def _query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    query = serializer_class(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


class ExperimentRecordSerializer(serializers.Serializer):
    """One experiment with its outcome (``tasks.results.record``)."""

    number = serializers.IntegerField(help_text="0 is the baseline, the engine's defaults.")
    role = serializers.ChoiceField(choices=ExperimentRole.values)
    repeat_of = serializers.IntegerField(
        allow_null=True, help_text="The number of the experiment a repeat measures again."
    )
    status = serializers.ChoiceField(choices=ExperimentStatus.values)
    parameters = serializers.DictField(help_text="Each flag and the one value this experiment uses.")
    gpus = serializers.IntegerField(help_text="GPUs its engine uses: tp × pp × dp replicas.")
    host = serializers.CharField(allow_blank=True, help_text="The host whose GPUs ran it.")
    gpu_ids = serializers.ListField(child=serializers.CharField(), help_text="The GPU ids it was lent.")
    command = serializers.CharField(help_text="The engine's own launch command, on the port the worker used.")
    deploy_command = serializers.CharField(help_text="The engine's own launcher on the plan's port.")
    score = serializers.FloatField(allow_null=True)
    scored_level = serializers.FloatField(
        allow_null=True, help_text="The load scored: a concurrency or a request rate."
    )
    throughput_tokens_per_s = serializers.FloatField(allow_null=True)
    latency_p50_s = serializers.FloatField(allow_null=True)
    slo_violation = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    step = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_s = serializers.FloatField(allow_null=True)
    levels = serializers.ListField(child=serializers.DictField(), help_text="The benchmark at each level.")
    log_tail = serializers.CharField(
        allow_blank=True, help_text="The engine's last log lines; for staff, first the command this host ran."
    )


PLAN = inline_serializer(
    "Plan",
    {
        "combinations": serializers.IntegerField(),
        "runnable": serializers.IntegerField(),
        "skipped": serializers.DictField(child=serializers.IntegerField()),
        "page": serializers.IntegerField(),
        "experiments": inline_serializer(
            "PlannedExperiment",
            {
                "number": serializers.IntegerField(),
                "parameters": serializers.DictField(help_text="Each flag and its one value."),
                "command": serializers.CharField(help_text="The engine's launch command."),
            },
            many=True,
        ),
    },
)
RESULTS = inline_serializer(
    "Results",
    {
        "task": serializers.IntegerField(),
        "status": serializers.CharField(),
        "objective": serializers.CharField(),
        "higher_is_better": serializers.BooleanField(),
        "slos": serializers.DictField(child=serializers.FloatField()),
        "best": ExperimentRecordSerializer(allow_null=True),
        "baseline": ExperimentRecordSerializer(allow_null=True),
        "verdict": inline_serializer(
            "Verdict",
            {
                "winner": serializers.IntegerField(allow_null=True),
                "runner_up": serializers.IntegerField(allow_null=True),
                "tied": serializers.BooleanField(help_text="The best two are within each other's spread."),
                "repeated": serializers.BooleanField(),
                "waiting_repeats": serializers.IntegerField(help_text="Finalists' repeats not finished yet."),
                "summary": serializers.CharField(),
                "unit": serializers.CharField(),
                "configurations": inline_serializer(
                    "Configuration",
                    {
                        "number": serializers.IntegerField(),
                        "repeats": serializers.ListField(child=serializers.IntegerField()),
                        "measurements": serializers.ListField(child=serializers.FloatField()),
                        "median": serializers.FloatField(allow_null=True),
                        "spread": serializers.FloatField(allow_null=True),
                        "gain_over_baseline": serializers.FloatField(allow_null=True),
                        "finished": serializers.BooleanField(),
                    },
                    many=True,
                ),
            },
        ),
        "pareto_front": serializers.ListField(child=serializers.IntegerField()),
        "experiments": ExperimentRecordSerializer(many=True),
    },
)
RUN_RESPONSES = error_responses(403, 404, 409)


@extend_schema_view(
    list=extend_schema(
        summary="List tasks, newest first",
        parameters=[
            # An empty value is no filter (the list page's form sends one for "any").
            OpenApiParameter("status", str, enum=["", *TaskStatus.values], description="Tasks in this status."),
            OpenApiParameter("runtime", str, enum=["", *engine_names()], description="Tasks for this engine."),
            OpenApiParameter(
                "search",
                {"type": "string", "maxLength": 200, "pattern": r"^[^\u0000]*$"},
                description="Tasks whose name, model or description holds this text, in any case.",
            ),
            *PAGINATION_HEADERS,
        ],
        responses={200: TaskSerializer(many=True), **error_responses(400)},
    ),
    retrieve=extend_schema(summary="Get one task", responses={200: TaskSerializer, **error_responses(404)}),
    create=extend_schema(
        summary="Create a task from a grid, from presets (merged in order), or both",
        description="`parameters` given with `presets` replace the merged flags they name." + WHOLE_TASK_RULES,
        responses={201: TaskSerializer, **error_responses(400, 404, 409, 413, 415)},
    ),
    update=extend_schema(
        summary="Replace a task",
        description="Fields not sent are set back to their defaults." + WHOLE_TASK_RULES,
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409, 413, 415)},
    ),
    partial_update=extend_schema(
        summary="Change some fields of a task",
        description=WHOLE_TASK_RULES.strip(),
        responses={200: TaskSerializer, **error_responses(400, 403, 404, 409, 413, 415)},
    ),
    destroy=extend_schema(summary="Delete a task", responses={204: None, **error_responses(403, 404, 409)}),
)
class TaskViewSet(viewsets.ModelViewSet):
    queryset = Task.objects.select_related("created_by")
    serializer_class = TaskSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = TaskFilter
    pagination_class = HeaderPagination
    lookup_value_regex = "[^/]+"
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

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

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        task = self.get_object()
        self._changeable(task)
        serializer = self.get_serializer(task, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(serializer.data)

    def perform_destroy(self, instance: Task) -> None:
        self._changeable(instance)
        instance.delete()

    @extend_schema(
        summary="The experiments the task plans: each runnable combination and its launch command, paginated",
        parameters=[PlanQuerySerializer, *PAGINATION_HEADERS],
        responses={200: PLAN, **error_responses(400, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def plan(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        query = _query(PlanQuerySerializer, request)
        page, page_size = query["page"], query["page_size"]
        summary = task.plan_summary
        start = (page - 1) * page_size
        rows = [
            {"number": number, "parameters": combination, "command": command}
            for number, combination, command in itertools.islice(task.plan(start), page_size)
        ]
        headers = page_headers(request, page=page, size=page_size, total=summary.runnable)
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
        answer = status.HTTP_200_OK if name == "cancel" else status.HTTP_202_ACCEPTED
        return Response(self.get_serializer(task).data, status=answer)

    @extend_schema(
        summary="Start a draft task: plan its experiments and queue them for the workers",
        request=None,
        responses={202: TaskSerializer, **RUN_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._run_action("start")

    @extend_schema(
        summary="Cancel a queued or running task; a running engine is stopped within seconds",
        request=None,
        responses={200: TaskSerializer, **RUN_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._run_action("cancel")

    @extend_schema(
        summary="Run a finished task again from a clean slate (its experiments are deleted)",
        request=None,
        responses={202: TaskSerializer, **RUN_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def restart(self, request: Request, pk: str) -> Response:
        return self._run_action("restart")

    @extend_schema(
        summary="Continue a cancelled or failed task without repeating finished experiments",
        request=None,
        responses={202: TaskSerializer, **RUN_RESPONSES},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._run_action("resume")

    @extend_schema(
        summary="The task's experiments with their outcome: a list",
        parameters=[ExperimentsQuerySerializer],
        responses={200: ExperimentRecordSerializer(many=True), **error_responses(400, 404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def experiments(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        query = _query(ExperimentsQuerySerializer, request)
        experiments = task.experiments.select_related("repeat_of")
        if query.get("status"):
            experiments = experiments.filter(status=query["status"])
        rows = run_results.sort_experiments(task, list(experiments), query["sort"])
        return Response([run_results.record(experiment, user=request.user) for experiment in rows])

    @extend_schema(
        summary="The run's results: the best configuration, the Pareto front and every experiment",
        responses={200: RESULTS, **error_responses(404)},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def results(self, request: Request, pk: str) -> Response:
        task = self.get_object()
        experiments = list(task.experiments.select_related("repeat_of"))
        return Response(run_results.results(task, experiments, user=request.user))
