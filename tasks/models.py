from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property

from engines.catalogue import Catalogue, for_engine
from engines.checks import Finding, check_grid, same_flag, warnings
from engines.plan import (
    MAX_GRID_EXPERIMENTS,
    Plan,
    PlanSummary,
    canonical,
    command_renderer,
    gpus_needed,
    rules_for,
)
from presets.fields import GridField
from presets.merging import ConflictKind, MergeStrategy, count_combinations
from presets.models import ParameterPreset, Runtime
from presets.naming import NamedQuerySet, UniquelyNamed
from presets.validators import MAX_DESCRIPTION_LENGTH, clean_parameters
from tasks.states import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    TRANSITIONS,
    LoadMode,
    Objective,
    OptimizationStrategy,
    TaskStatus,
    TransitionRefused,
    refusal,
)
from tasks.validators import clean_concurrency_levels, clean_request_rates, plan_problems

DEFAULT_CONCURRENCY_LEVELS = [1, 8, 32]
DEFAULT_REQUEST_RATES = [1, 4, 16]
MAX_FINALISTS = 20
MAX_REPEATS = 10
# A prompt or answer longer than any model's context: the benchmark would build it in the worker's memory.
MAX_TOKENS = 1_000_000
LARGE_GRID = 500  # the preview warns above this many combinations


def default_concurrency_levels() -> list[int]:
    return list(DEFAULT_CONCURRENCY_LEVELS)


def default_request_rates() -> list[float]:
    return list(DEFAULT_REQUEST_RATES)


class TaskQuerySet(NamedQuerySet):
    def create_from_presets(
        self,
        *,
        presets: Sequence[int],
        strategy: MergeStrategy | str,
        parameters: Mapping[str, Any] | None = None,
        whole_grid: bool = False,
        by: Any,
        **fields: Any,
    ) -> Task:
        """A new task from these presets merged in order and the user's hand edits (``use_presets``),
        checked whole and saved; the New task page and the API create through this. Raises
        ValidationError, or PresetsNotFound for ids that name no preset."""
        task = Task(created_by=by if by and by.is_authenticated else None, **fields)
        task.use_presets(presets, strategy=strategy, parameters=parameters, whole_grid=whole_grid)
        task.full_clean()
        task.save()
        return task


class Task(UniquelyNamed):
    description = models.TextField(
        blank=True,
        max_length=MAX_DESCRIPTION_LENGTH,  # checked by validation only: see presets.models
        validators=[MaxLengthValidator(MAX_DESCRIPTION_LENGTH)],
        help_text=f"Optional; at most {MAX_DESCRIPTION_LENGTH:,} characters.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.DRAFT, db_index=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_history = models.JSONField(
        default=list, blank=True, help_text="Each status change: {status, at, note}, oldest first."
    )
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the last run began.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When the last run ended.")
    error = models.TextField(blank=True, help_text="Why the last run failed or stopped, in one sentence.")

    # The model under test
    model = models.CharField(
        max_length=500, help_text="A Hugging Face id (org/name) or a local path, at most 500 characters."
    )
    runtime = models.CharField(max_length=16, choices=Runtime.choices, db_index=True)
    engine_version = models.CharField(
        max_length=200,
        blank=True,
        help_text="Optional engine image or version tag, e.g. v0.5.23; at most 200 characters.",
    )
    # A task is checked, planned and rendered against the flags of the engine release it was made
    # for: shipping a newer catalogue (vLLM 0.34 beside 0.33) must not change an existing task.
    catalogue_version = models.CharField(
        max_length=32,
        blank=True,
        editable=False,
        help_text="The engine release whose flags the task is checked against: the newest shipped when it was made.",
    )
    gpus = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1024)],
        verbose_name="GPUs per experiment (at most)",
        # A cap, not a size: each combination takes the GPUs its engine would use (tp × pp × dp
        # replicas), and a host packs as many experiments at once as its GPUs fit.
        help_text="At most this many GPUs per experiment: a combination needing more (tp × pp × dp) is skipped.",
    )

    # The grid and where it came from: a snapshot, so editing or deleting a preset never rewrites it
    parameters = GridField(help_text="Each flag mapped to the values to try.")
    applied_presets = models.JSONField(default=list, blank=True, help_text="The presets merged, in order.")
    merge_strategy = models.CharField(
        max_length=16, choices=[(strategy.value, strategy.label) for strategy in MergeStrategy], blank=True
    )
    preset_versions = models.JSONField(
        default=dict, blank=True, help_text="The version of each applied preset when merged: {preset id: version}."
    )
    parameters_edited = models.BooleanField(
        default=False, help_text="The grid was changed by hand after the presets were applied."
    )

    # Optimisation
    optimization_strategy = models.CharField(
        max_length=16, choices=OptimizationStrategy.choices, default=OptimizationStrategy.GRID
    )
    objective = models.CharField(max_length=32, choices=Objective.choices, default=Objective.MAXIMIZE_THROUGHPUT)
    max_experiments = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_GRID_EXPERIMENTS)],
        help_text="Empty runs the whole grid (grid search only).",
    )
    seed = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="Random and bayesian search: the same seed samples the same experiments. Empty picks one.",
    )
    experiment_timeout = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(10)], help_text="Seconds one experiment may take."
    )
    skip_after_oom = models.BooleanField(
        default=True,
        verbose_name="Learn from out-of-memory failures",
        help_text="A combination that runs out of memory at a memory fraction skips the same combination "
        "with a higher fraction.",
    )

    # Trust: a baseline to compare with, and the finalists measured again
    baseline = models.BooleanField(
        default=True, help_text="Run the engine's defaults (no tuning flags) first, as experiment 0."
    )
    finalists = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(MAX_FINALISTS)],
        help_text=f"The best this many configurations are measured again (at most {MAX_FINALISTS}); 0: no repeats.",
    )
    repeats = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_REPEATS)],
        help_text=f"More measurements of each finalist, each on a fresh engine start (1 to {MAX_REPEATS}).",
    )

    # Benchmark
    load_mode = models.CharField(max_length=16, choices=LoadMode.choices, default=LoadMode.CONCURRENCY)
    concurrency_levels = models.JSONField(default=default_concurrency_levels)
    request_rates = models.JSONField(
        default=default_request_rates, help_text="Open loop: the request rates (requests/s) to measure."
    )
    input_tokens = models.PositiveIntegerField(
        default=512, validators=[MinValueValidator(1), MaxValueValidator(MAX_TOKENS)]
    )
    input_tokens_max = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_TOKENS)],
        help_text="A range: each request's prompt length is drawn up to this.",
    )
    output_tokens = models.PositiveIntegerField(
        default=256, validators=[MinValueValidator(1), MaxValueValidator(MAX_TOKENS)]
    )
    output_tokens_max = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_TOKENS)],
        help_text="A range: each request's output length is drawn up to this.",
    )
    shared_prefix = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.99)],
        help_text="The share of every prompt all requests share (a system prompt), so prefix caching matters.",
    )
    warmup_requests = models.PositiveIntegerField(
        default=4, validators=[MaxValueValidator(10_000)], help_text="Sent before each level, not counted."
    )
    early_stop = models.BooleanField(
        default=True,
        help_text="A level stops once its SLOs can no longer be met, and higher levels are then skipped.",
    )
    requests_per_level = models.PositiveIntegerField(default=100, validators=[MinValueValidator(1)])
    max_seconds_per_level = models.PositiveIntegerField(default=120, validators=[MinValueValidator(1)])

    # Service-level objectives: hard limits an experiment must meet to be chosen
    slo_ttft_p90_ms = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    slo_tpot_p90_ms = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    slo_e2e_p99_s = models.FloatField(null=True, blank=True, validators=[MinValueValidator(0.0)])
    slo_min_success_rate = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )

    objects = TaskQuerySet.as_manager()

    noun = "task"
    checked_fields = {
        "parameters": clean_parameters,
        "concurrency_levels": clean_concurrency_levels,
        "request_rates": clean_request_rates,
    }

    class Meta:
        ordering = ["-created_at", "-id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.parameters = clean_parameters(self.parameters)
        self._pin_preset_versions()
        if not self.catalogue_version or for_engine(self.runtime, self.catalogue_version) is None:
            # New, or moved to another engine: the newest release of its engine.
            newest = for_engine(self.runtime)
            self.catalogue_version = newest.version if newest else ""
        if not self._state.adding and self.pk is not None and kwargs.get("update_fields") is None:
            # An edit never writes the status: a worker may have moved it since the form was read.
            # Status changes are saved by tasks.lifecycle, with update_fields=STATUS_FIELDS.
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in self.STATUS_FIELDS
            ]
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("tasks:detail", args=[self.pk])

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.optimization_strategy != OptimizationStrategy.GRID and not self.max_experiments:
            errors["max_experiments"] = ["Required for random and bayesian search: how many experiments to run."]
        if self.objective == Objective.MAXIMIZE_GOODPUT and not any(limit is not None for limit in self.slos.values()):
            errors["objective"] = ["Goodput is the highest load meeting every SLO: set at least one SLO."]
        for low, high in (("input_tokens", "input_tokens_max"), ("output_tokens", "output_tokens_max")):
            if getattr(self, high) is not None and getattr(self, low) and getattr(self, high) < getattr(self, low):
                errors[high] = [f"The range's top must be at least {getattr(self, low)} ({low.replace('_', ' ')})."]
        try:
            grid = clean_parameters(self.parameters)
        except ValidationError:
            grid = None  # reported by clean_fields
        if grid and self.runtime:
            errors |= plan_problems(grid, self.runtime, self.catalogue, self.gpus or 1, self.optimization_strategy)
        if errors:
            raise ValidationError(errors)

    @cached_property
    def runnable_plan(self) -> Plan:
        """The runnable combinations, counted and indexed; made once per instance."""
        grid = self.parameters or {}
        return Plan(grid, rules_for(self.runtime, self.gpus or 1, grid), self._same_flag())

    @property
    def plan_summary(self) -> PlanSummary:
        """Total and runnable combinations, with why the others are skipped."""
        return self.runnable_plan.summary

    @property
    def catalogue(self) -> Catalogue | None:
        """The flags of the engine release the task was made for (the newest, before it is saved)."""
        return (for_engine(self.runtime, self.catalogue_version) if self.catalogue_version else None) or for_engine(
            self.runtime
        )

    def gpus_for(self, combination: Mapping[str, Any]) -> int:
        """The GPUs this combination's engine uses (tp × pp × dp replicas), whatever its flags' spelling."""
        return gpus_needed(self.runtime, canonical(combination, self._same_flag()))

    def _same_flag(self) -> dict[str, str]:
        return same_flag(list(self.parameters or {}), self.catalogue)

    @property
    def engine_warnings(self) -> list[Finding]:
        catalogue = self.catalogue
        return warnings(check_grid(self.parameters or {}, catalogue)) if catalogue else []

    def plan(self, start: int = 0) -> Iterator[tuple[int, dict[str, Any], str]]:
        """The runnable experiments from 0-based ``start`` on, lazily: number, flags and exact launch
        command. Starting far into a huge grid costs no more than starting at the beginning."""
        render = command_renderer(self.runtime, self.model, list(self.parameters), catalogue=self.catalogue)
        for number, combination in enumerate(self.runnable_plan.combinations(start), start + 1):
            yield number, combination, render(combination)

    @property
    def combinations(self) -> int:
        return count_combinations(self.parameters or {})

    @property
    def experiments_planned(self) -> int:
        """How many experiments the task will run: the runnable grid, capped by max_experiments."""
        runnable_count = self.plan_summary.runnable
        if self.max_experiments:
            return min(runnable_count, self.max_experiments)
        return runnable_count

    @property
    def is_locked(self) -> bool:
        """Queued and running tasks cannot be edited or deleted: a worker is reading them."""
        return self.status in ACTIVE_STATUSES

    def move_to(self, status: str, *, note: str = "") -> None:
        """Change the status, timestamped, if the lifecycle allows it; raises TransitionRefused otherwise.

        Only sets the fields: the caller saves, inside the transaction that locked the row.
        """
        if status not in TRANSITIONS.get(self.status, set()):
            raise TransitionRefused(refusal(self.status, status))
        now = timezone.now()
        self.status = status
        self.status_changed_at = now
        self.status_history = [*self.status_history, {"status": status, "at": now.isoformat(), "note": note}]
        if status == TaskStatus.QUEUED:
            self.started_at = self.finished_at = None
            self.error = ""
        elif status == TaskStatus.RUNNING:
            self.started_at = now
        elif status in FINISHED_STATUSES:
            self.finished_at = now
            self.error = note if status == TaskStatus.FAILED else ""  # a cancel is in the history, not an error

    STATUS_FIELDS = ["status", "status_changed_at", "status_history", "started_at", "finished_at", "error"]

    @property
    def can_start(self) -> bool:
        return self.status == TaskStatus.DRAFT

    @property
    def can_cancel(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def can_restart(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def can_resume(self) -> bool:
        return self.status in (TaskStatus.FAILED, TaskStatus.CANCELLED)

    @property
    def slos(self) -> dict[str, float | None]:
        return {
            "ttft_p90_ms": self.slo_ttft_p90_ms,
            "tpot_p90_ms": self.slo_tpot_p90_ms,
            "e2e_p99_s": self.slo_e2e_p99_s,
            "min_success_rate": self.slo_min_success_rate,
        }

    @property
    def grid_capped(self) -> bool:
        """A grid search told to run fewer experiments than the grid has runnable combinations."""
        return (
            self.optimization_strategy == OptimizationStrategy.GRID
            and self.max_experiments is not None
            and 0 < self.max_experiments < self.plan_summary.runnable
        )

    def can_change(self, user: Any) -> bool:
        if not user.is_authenticated:
            return False
        return user.is_staff or self.created_by_id == user.pk

    def applied_presets_now(self) -> list[dict[str, Any]]:
        """The provenance snapshot with each preset as it is today: ``preset`` is None once deleted."""
        ids = [entry["id"] for entry in self.applied_presets]
        current = ParameterPreset.objects.in_bulk(ids)
        return [{**entry, "preset": current.get(entry["id"])} for entry in self.applied_presets]

    def pinned_presets(self) -> list[dict[str, Any]]:
        """applied_presets_now with each preset's version when merged (or None) and whether it changed since."""
        entries = []
        for entry in self.applied_presets_now():
            pinned = self.preset_versions.get(str(entry["id"]))
            preset = entry["preset"]
            changed = bool(preset is not None and pinned and preset.current_version > pinned)
            entries.append({**entry, "version": pinned, "changed": changed})
        return entries

    def use_presets(
        self,
        presets: Sequence[int],
        *,
        strategy: MergeStrategy | str,
        parameters: Mapping[str, Any] | None = None,
        whole_grid: bool = False,
    ) -> None:
        """Merge the presets in order (for this engine) into the grid and record where it came from.
        ``parameters``, the user's edits, go over the merge flag by flag, or are the grid as left in
        the page's editor (``whole_grid``). No presets: the grid is ``parameters``, no provenance."""
        ids = list(presets)
        if not ids:
            self.parameters, self.applied_presets, self.merge_strategy = dict(parameters or {}), [], ""
            self.preset_versions, self.parameters_edited = {}, False
            return
        result, snapshot = ParameterPreset.objects.merge(ids, strategy=strategy, runtime=self.runtime)
        if wrong_engine := [conflict.reason for conflict in result.conflicts if conflict.kind == ConflictKind.ENGINES]:
            raise ValidationError({"runtime": wrong_engine})
        if parameters is None:
            grid = dict(result.parameters)
        elif whole_grid:
            grid = dict(parameters)
        else:
            grid = {**result.parameters, **parameters}
        self.parameters = grid
        self.applied_presets, self.merge_strategy, self.preset_versions = snapshot, MergeStrategy(strategy).value, {}
        self.parameters_edited = json.dumps(grid, sort_keys=True) != json.dumps(result.parameters, sort_keys=True)

    def _pin_preset_versions(self) -> None:
        # Each applied preset keeps the version it had when merged: a later edit of it never changes
        # what this task says it was built from. Presets merged since the last save get their current one.
        ids = [entry["id"] for entry in self.applied_presets]
        pins = {str(pk): self.preset_versions[str(pk)] for pk in ids if str(pk) in self.preset_versions}
        missing = [pk for pk in ids if str(pk) not in pins]
        if missing:
            current = ParameterPreset.objects.filter(pk__in=missing).values_list("pk", "current_version")
            pins.update({str(pk): version for pk, version in current})
        self.preset_versions = pins

    @transaction.atomic
    def duplicate(self, *, by: Any) -> Task:
        copy = Task.objects.get(pk=self.pk)
        copy.pk = None
        copy.name = Task.objects.free_name(self.name, suffix="copy")
        copy.status = TaskStatus.DRAFT  # a copy has not run: none of the original's run is carried over
        copy.status_changed_at = copy.started_at = copy.finished_at = None
        copy.status_history, copy.error = [], ""
        copy.created_by = by if by and by.is_authenticated else None
        copy.save()
        return copy

    def save_grid_as_preset(self, *, by: Any) -> ParameterPreset:
        return user_preset(
            name=ParameterPreset.objects.free_name(self.name, suffix="grid"),
            description=f"The parameter grid of task “{self.name}”.",
            runtime=self.runtime,
            parameters=self.parameters,
            metadata={"source_task": self.pk},
            by=by,
        )


# Experiments and GPU slots are models of this app, written beside it (models.py stays readable).
from tasks.experiments import HOST_COMMAND_LINE, Experiment, user_preset  # noqa: E402
from tasks.gpus import GpuSlot  # noqa: E402

__all__ = ["HOST_COMMAND_LINE", "Experiment", "GpuSlot", "Task", "user_preset"]
