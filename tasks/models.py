from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.urls import reverse
from django.utils.functional import cached_property

from engines.catalogue import for_engine
from engines.checks import Finding, check_for_runtime, merge_for_engine, same_flag
from engines.plan import MAX_GRID_EXPERIMENTS, PlanSummary, command_renderer, rules_for, runnable, summarize
from presets.fields import GridField
from presets.merging import MergeStrategy, count_combinations
from presets.models import ParameterPreset, Runtime
from presets.naming import NamedQuerySet, UniquelyNamed
from presets.validators import clean_parameters

DEFAULT_CONCURRENCY_LEVELS = [1, 8, 32]
MAX_CONCURRENCY_LEVELS = 20
LARGE_GRID = 500  # the preview warns above this many combinations


def default_concurrency_levels() -> list[int]:
    return list(DEFAULT_CONCURRENCY_LEVELS)


class TaskStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class OptimizationStrategy(models.TextChoices):
    GRID = "grid", "Grid: every combination"
    RANDOM = "random", "Random sample"
    BAYESIAN = "bayesian", "Bayesian (TPE)"


class Objective(models.TextChoices):
    MAXIMIZE_THROUGHPUT = "maximize_throughput", "Maximise throughput"
    MINIMIZE_LATENCY = "minimize_latency", "Minimise end-to-end latency"
    MINIMIZE_TTFT = "minimize_ttft", "Minimise time to first token"
    MINIMIZE_TPOT = "minimize_tpot", "Minimise time per output token"


class TaskQuerySet(NamedQuerySet):
    pass


def merge_presets(preset_ids: Sequence[int], strategy: str, runtime: str = "") -> tuple[Any, list[dict[str, Any]]]:
    """Merge the presets with these ids in this order; returns the result and the provenance snapshot.

    With a runtime, flags that are one flag for that engine (aliases) merge as one. Raises
    ValidationError naming missing or repeated ids.
    """
    ids = list(preset_ids)
    repeated = sorted({preset_id for preset_id in ids if ids.count(preset_id) > 1})
    if repeated:
        raise ValidationError(f"Preset {', '.join(map(str, repeated))} is selected more than once.")
    found = ParameterPreset.objects.merge_inputs(ids)
    missing = [preset_id for preset_id in ids if preset_id not in found]
    if missing:
        raise ValidationError(f"No preset with id {', '.join(map(str, missing))}.")
    result = merge_for_engine([found[preset_id] for preset_id in ids], strategy, for_engine(runtime))
    snapshot = [{"id": preset_id, "name": found[preset_id].name} for preset_id in ids]
    return result, snapshot


class Task(UniquelyNamed):
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.DRAFT, db_index=True)

    # The model under test
    model = models.CharField(max_length=500, help_text="A Hugging Face id (org/name) or a local path.")
    runtime = models.CharField(max_length=16, choices=Runtime.choices, db_index=True)
    engine_version = models.CharField(
        max_length=200, blank=True, help_text="Optional engine image or version tag, e.g. v0.5.23."
    )
    gpus = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(1024)],
        help_text="GPUs available to one experiment.",
    )

    # The grid and where it came from: a snapshot, so editing or deleting a preset never rewrites it
    parameters = GridField(help_text="Each flag mapped to the values to try.")
    applied_presets = models.JSONField(default=list, blank=True, help_text="The presets merged, in order.")
    merge_strategy = models.CharField(
        max_length=16, choices=[(strategy.value, strategy.label) for strategy in MergeStrategy], blank=True
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
        validators=[MinValueValidator(1)],
        help_text="Empty runs the whole grid (grid search only).",
    )
    experiment_timeout = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(10)], help_text="Seconds one experiment may take."
    )

    # Benchmark
    concurrency_levels = models.JSONField(default=default_concurrency_levels)
    input_tokens = models.PositiveIntegerField(default=512, validators=[MinValueValidator(1)])
    output_tokens = models.PositiveIntegerField(default=256, validators=[MinValueValidator(1)])
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
        "concurrency_levels": lambda value: clean_concurrency_levels(value),
    }

    class Meta:
        ordering = ["-created_at", "-id"]

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.parameters = clean_parameters(self.parameters)
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse("tasks:detail", args=[self.pk])

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.optimization_strategy != OptimizationStrategy.GRID and not self.max_experiments:
            errors["max_experiments"] = ["Required for random and bayesian search: how many experiments to run."]
        try:
            grid = clean_parameters(self.parameters)
        except ValidationError:
            grid = None  # reported by clean_fields
        if grid and self.runtime:
            found = [finding for finding in check_for_runtime(grid, self.runtime) if finding.level == "error"]
            if found:
                errors["parameters"] = [str(finding) for finding in found]
            else:
                aliases = same_flag(list(grid), for_engine(self.runtime))
                summary = summarize(grid, rules_for(self.runtime, self.gpus or 1), aliases)
                # A grid none of whose combinations can run is saved all the same (the plan says
                # why, and more GPUs fix it); only an oversized grid search is refused.
                if self.optimization_strategy == OptimizationStrategy.GRID and summary.runnable > MAX_GRID_EXPERIMENTS:
                    errors["optimization_strategy"] = [
                        f"The grid has {summary.runnable:,} runnable combinations; a grid search runs at most "
                        f"{MAX_GRID_EXPERIMENTS:,}. Choose random or bayesian search with a max experiments cap."
                    ]
        if errors:
            raise ValidationError(errors)

    @cached_property
    def plan_summary(self) -> PlanSummary:
        """Total and runnable combinations, with why the others are skipped (read once per instance:
        list pages and the API ask for it several times; a saved edit is read back fresh)."""
        return summarize(self.parameters or {}, rules_for(self.runtime, self.gpus or 1), self._same_flag())

    def _same_flag(self) -> dict[str, str]:
        return same_flag(list(self.parameters or {}), for_engine(self.runtime))

    @property
    def engine_warnings(self) -> list[Finding]:
        return [
            finding for finding in check_for_runtime(self.parameters or {}, self.runtime) if finding.level == "warning"
        ]

    def plan(self) -> Iterator[tuple[int, dict[str, Any], str]]:
        """Every runnable experiment, lazily: its number, flags and exact launch command."""
        rules = rules_for(self.runtime, self.gpus or 1)
        render = command_renderer(self.runtime, self.model, list(self.parameters), catalogue=for_engine(self.runtime))
        for number, combination in enumerate(runnable(self.parameters, rules, self._same_flag()), 1):
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
        return self.status in (TaskStatus.QUEUED, TaskStatus.RUNNING)

    def can_change(self, user: Any) -> bool:
        if not user.is_authenticated:
            return False
        return user.is_staff or self.created_by_id == user.pk

    def applied_presets_now(self) -> list[dict[str, Any]]:
        """The provenance snapshot with each preset as it is today: ``preset`` is None once deleted."""
        ids = [entry["id"] for entry in self.applied_presets]
        current = ParameterPreset.objects.in_bulk(ids)
        return [{**entry, "preset": current.get(entry["id"])} for entry in self.applied_presets]

    @transaction.atomic
    def duplicate(self, *, by: Any) -> Task:
        copy = Task.objects.get(pk=self.pk)
        copy.pk = None
        copy.name = Task.objects.free_name(self.name, suffix="copy")
        copy.status = TaskStatus.DRAFT
        copy.created_by = by if by and by.is_authenticated else None
        copy.save()
        return copy

    def save_grid_as_preset(self, *, by: Any) -> ParameterPreset:
        preset = ParameterPreset(
            name=ParameterPreset.objects.free_name(self.name, suffix="grid"),
            description=f"The parameter grid of task “{self.name}”.",
            category="custom",
            runtime=self.runtime,
            parameters=self.parameters,
            metadata={"source_task": self.pk},
            created_by=by if by and by.is_authenticated else None,
        )
        preset.save()
        return preset


def clean_concurrency_levels(value: Any) -> list[int]:
    """A list of 1 to 20 distinct positive integers (a comma-separated string is accepted too)."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        try:
            value = [int(part) for part in parts]
        except ValueError:
            raise ValidationError("Give whole numbers separated by commas, e.g. 1, 8, 32.") from None
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one concurrency level, e.g. 1, 8, 32.")
    if len(value) > MAX_CONCURRENCY_LEVELS:
        raise ValidationError(f"At most {MAX_CONCURRENCY_LEVELS} concurrency levels.")
    problems = [
        f"[{index}]: {level!r} is not a whole number from 1 to 100000"
        for index, level in enumerate(value)
        if type(level) is not int or not 1 <= level <= 100_000
    ]
    if problems:
        raise ValidationError(problems)
    return sorted(set(value))
