"""An experiment: one combination of a task's grid (or the engine's defaults, or a finalist measured
again), its engine launched on GPUs lent by a host, benchmarked and scored."""

from __future__ import annotations

from typing import Any

from django.db import models

from engines.plan import launch_command
from presets.fields import GridField
from presets.models import ParameterPreset
from tasks.states import RUNNING_EXPERIMENT, ExperimentRole, ExperimentStatus

# How an experiment's log begins when this host ran its engine through a launcher
# (settings.ENGINE_LAUNCHERS): that command names server paths, so only staff read the line.
HOST_COMMAND_LINE = "Started on this host as: "


class Experiment(models.Model):
    """One combination of the grid: its engine launched, benchmarked and scored."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="experiments")
    number = models.PositiveIntegerField(
        help_text="1, 2, 3 … within the task, in the order they were planned; 0 is the baseline."
    )
    role = models.CharField(max_length=16, choices=ExperimentRole.choices, default=ExperimentRole.SEARCH)
    repeat_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="repeats",
        help_text="The search experiment this one measures again, on a fresh engine start.",
    )
    parameters = GridField(help_text="Each flag mapped to the one value this experiment uses (in grid order).")
    command = models.TextField(
        blank=True,
        help_text="The engine's own launch command, on the port it ran on (a host launcher's is in the log: staff).",
    )
    status = models.CharField(
        max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.PENDING, db_index=True
    )
    step = models.CharField(max_length=100, blank=True, help_text="What the runner is doing now.")
    levels = models.JSONField(default=list, blank=True, help_text="The benchmark's result at each concurrency level.")
    score = models.FloatField(null=True, blank=True, help_text="The objective at the best level meeting every SLO.")
    scored_level = models.FloatField(
        null=True, blank=True, help_text="The load scored: a concurrency, or a request rate (requests/s)."
    )
    throughput = models.FloatField(null=True, blank=True, help_text="Output tokens/s at the scored level.")
    latency = models.FloatField(null=True, blank=True, help_text="End-to-end latency p50 (s) at the scored level.")
    slo_violation = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    log_tail = models.TextField(blank=True, help_text="The engine's last 200 log lines.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker running it.")
    gpus = models.PositiveSmallIntegerField(
        default=1, help_text="GPUs its engine uses: tp × pp × dp replicas, by the engine's own rule."
    )
    host = models.CharField(max_length=200, blank=True, help_text="The host whose GPUs ran it.")
    gpu_ids = models.JSONField(default=list, blank=True, help_text="The GPU ids it was lent (CUDA_VISIBLE_DEVICES).")
    serving_at = models.DateTimeField(null=True, blank=True, help_text="When its engine answered its health check.")
    engine_pid = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "number"]
        constraints = [models.UniqueConstraint(fields=["task", "number"], name="experiment_number_unique_in_task")]
        indexes = [models.Index(fields=["task", "status"], name="experiment_task_status")]

    def __str__(self) -> str:
        return f"{self.task_id} #{self.number}"

    @property
    def is_running(self) -> bool:
        return self.status in RUNNING_EXPERIMENT

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def meets_slo(self) -> bool:
        return self.status == ExperimentStatus.SUCCEEDED and self.score is not None and not self.slo_violation

    def log_for(self, user: Any) -> str:
        """The engine's log as ``user`` may read it: the host's launcher line for staff only."""
        if user.is_staff or not self.log_tail.startswith(HOST_COMMAND_LINE):
            return self.log_tail
        return self.log_tail.partition("\n")[2]

    @property
    def deploy_command(self) -> str:
        """The command to start this configuration for real: the engine's own launcher on the plan's
        port, where ``command`` is what the worker ran (on a free port, maybe through a launcher)."""
        return launch_command(self.task.runtime, self.task.model, self.parameters, catalogue=self.task.catalogue)

    def suggested_preset_name(self) -> str:
        """What "Save as preset" offers to call it: the first free "<task> #<number> (config)"."""
        return ParameterPreset.objects.free_name(f"{self.task.name} #{self.number}", suffix="config")

    def save_as_preset(self, *, by: Any, name: str | None = None) -> ParameterPreset:
        """A user preset with exactly this experiment's values, linked back to its task; named as
        the user chose (checked by the form), else as suggested."""
        return user_preset(
            name=name or self.suggested_preset_name(),
            description=f"The configuration of experiment {self.number} of task “{self.task.name}”.",
            runtime=self.task.runtime,
            parameters={flag: [value] for flag, value in self.parameters.items()},
            metadata={"source_task": self.task_id, "source_experiment": self.number, "score": self.score},
            by=by,
        )


def user_preset(*, by: Any, **fields: Any) -> ParameterPreset:
    preset = ParameterPreset(category="custom", created_by=by if by and by.is_authenticated else None, **fields)
    preset.save()
    return preset
