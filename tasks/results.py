"""What a run produced, in the shapes the page, the API and the downloads share: the experiment
records, the verdict (``tasks.verdict``: the winner, its median, spread and gain over the
baseline), the Pareto front and live progress."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import prefetch_related_objects
from django.utils import timezone

from tasks.models import Experiment, Task
from tasks.plots import Point, pareto_front
from tasks.states import FINISHED_EXPERIMENT, RUNNING_EXPERIMENT, ExperimentStatus
from tasks.verdict import Configuration, Verdict, higher_is_better, verdict

# Sort keys the experiments table and the API accept: name -> (field, label). Missing values sort last.
SORTS = {
    "number": "Number",
    "score": "Score",
    "throughput": "Throughput",
    "latency": "Latency",
}


def sort_experiments(task: Task, experiments: Sequence[Experiment], key: str) -> list[Experiment]:
    """Best first for score, fastest first for throughput and latency; unknown keys sort by number."""
    if key not in SORTS or key == "number":
        return sorted(experiments, key=lambda experiment: experiment.number)
    descending = key == "throughput" or (key == "score" and higher_is_better(task))

    def order(experiment: Experiment) -> tuple[bool, float, int]:
        value = getattr(experiment, key)
        if value is None:
            return (True, 0.0, experiment.number)
        return (False, -value if descending else value, experiment.number)

    return sorted(experiments, key=order)


def plot_points(experiments: Sequence[Experiment]) -> list[Point]:
    return [
        Point(
            number=experiment.number,
            latency_s=experiment.latency,
            throughput=experiment.throughput,
            meets_slo=experiment.meets_slo,
            url=f"#experiment-{experiment.number}",
        )
        for experiment in experiments
        if experiment.status == ExperimentStatus.SUCCEEDED
        and experiment.latency is not None
        and experiment.throughput is not None
    ]


def record(experiment: Experiment, *, user: Any, with_levels: bool = True) -> dict[str, Any]:
    """One experiment as the API and the JSON download give it to ``user``."""
    row = {
        "number": experiment.number,
        "role": experiment.role,
        "repeat_of": _repeated_number(experiment),
        "status": experiment.status,
        "parameters": experiment.parameters,
        "gpus": experiment.gpus,
        "host": experiment.host,
        "gpu_ids": experiment.gpu_ids,
        "command": experiment.command,  # the engine's own, on the port it ran on (no host launcher)
        "deploy_command": experiment.deploy_command,  # the engine's own launcher on the plan's port
        "score": experiment.score,
        "scored_level": experiment.scored_level,
        "throughput_tokens_per_s": experiment.throughput,
        "latency_p50_s": experiment.latency,
        "slo_violation": experiment.slo_violation or None,
        "error": experiment.error or None,
        "step": experiment.step or None,
        "started_at": experiment.started_at.isoformat() if experiment.started_at else None,
        "finished_at": experiment.finished_at.isoformat() if experiment.finished_at else None,
        "duration_s": experiment.duration_s,
    }
    if with_levels:
        row["levels"] = experiment.levels
        row["log_tail"] = experiment.log_for(user)
    return row


def _repeated_number(experiment: Experiment) -> int | None:
    # The number, not the row id: what the page, the API and the downloads call an experiment.
    return experiment.repeat_of.number if experiment.repeat_of_id and experiment.repeat_of else None


def results(task: Task, experiments: Sequence[Experiment], *, user: Any) -> dict[str, Any]:
    prefetch_related_objects(list(experiments), "repeat_of")  # one query for every repeat's original
    judged = verdict(task, experiments)
    best = judged.winner.experiment if judged.winner else None
    front = pareto_front(plot_points(experiments))
    return {
        "task": task.pk,
        "status": task.status,
        "objective": task.objective,
        "higher_is_better": higher_is_better(task),
        "slos": {name: limit for name, limit in task.slos.items() if limit is not None},
        "best": record(best, user=user, with_levels=True) if best else None,
        "verdict": verdict_record(judged),
        "baseline": record(judged.baseline, user=user, with_levels=True) if judged.baseline else None,
        "pareto_front": [point.number for point in front],
        "experiments": [record(experiment, user=user, with_levels=True) for experiment in experiments],
    }


def verdict_record(judged: Verdict) -> dict[str, Any]:
    """The verdict as the API and the JSON download give it: numbers name experiments."""
    return {
        "winner": judged.winner.number if judged.winner else None,
        "runner_up": judged.runner_up.number if judged.runner_up else None,
        "tied": judged.tied,
        "repeated": judged.repeated,
        "waiting_repeats": judged.waiting,
        "summary": judged.summary,
        "unit": judged.unit,
        "configurations": [_configuration_record(configuration) for configuration in judged.configurations],
    }


def _configuration_record(configuration: Configuration) -> dict[str, Any]:
    return {
        "number": configuration.number,
        "repeats": [repeat.number for repeat in configuration.repeats],
        "measurements": list(configuration.measurements),
        "median": configuration.median,
        "spread": configuration.spread,
        "gain_over_baseline": configuration.gain,
        "finished": configuration.finished,
    }


def results_json(task: Task, experiments: Sequence[Experiment], *, user: Any) -> str:
    return json.dumps(results(task, experiments, user=user), ensure_ascii=False, indent=2)


def results_csv(task: Task, experiments: Sequence[Experiment]) -> str:
    """One row per experiment: its role and outcome, its configuration's median, spread and gain over the
    baseline (on the search experiment a configuration is named after), the scored level's figures,
    then one column per flag."""
    flags: list[str] = list(task.parameters or {})
    for experiment in experiments:
        flags += [flag for flag in experiment.parameters if flag not in flags]
    prefetch_related_objects(list(experiments), "repeat_of")
    configurations = {
        configuration.number: configuration for configuration in verdict(task, experiments).configurations
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "number",
            "role",
            "repeat_of",
            "status",
            "score",
            "median",
            "spread",
            "gain_over_baseline",
            "scored_level",
            "throughput_tokens_per_s",
            "latency_p50_s",
            "ttft_p90_ms",
            "tpot_p90_ms",
            "e2e_p99_s",
            "success_rate",
            "slo_violation",
            "error",
            *flags,
        ]
    )
    for experiment in experiments:
        level: dict[str, Any] = next(
            (lv for lv in experiment.levels if lv.get("concurrency") == experiment.scored_level), {}
        )
        configuration = configurations.get(experiment.number)
        writer.writerow(
            [
                experiment.number,
                experiment.role,
                _cell(_repeated_number(experiment)),
                experiment.status,
                _cell(experiment.score),
                _cell(configuration.median if configuration else None),
                _cell(configuration.spread if configuration else None),
                _cell(configuration.gain if configuration else None),
                _cell(experiment.scored_level),
                _cell(experiment.throughput),
                _cell(experiment.latency),
                _cell((level.get("ttft_ms") or {}).get("p90")),
                _cell((level.get("tpot_ms") or {}).get("p90")),
                _cell((level.get("e2e_s") or {}).get("p99")),
                _cell(level.get("success_rate")),
                _text_cell(experiment.slo_violation),
                _text_cell(experiment.error),
                *[_flag_cell(experiment.parameters, flag) for flag in flags],
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _flag_cell(parameters: dict[str, Any], flag: str) -> str:
    if flag not in parameters:
        return ""
    value = parameters[flag]
    return _text_cell(value) if isinstance(value, str) else json.dumps(value)


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Digits only: Python's float() also reads "-inf" and "-1_000", which a spreadsheet would not.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _text_cell(text: str) -> str:
    """Text from users or engines, made inert for spreadsheets: a leading quote before a would-be
    formula, as OWASP advises. A number written as text ("-1", "+0.5") stays as it is."""
    if text.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    running: list[Experiment]
    elapsed_s: float | None
    remaining_s: float | None  # an estimate from the finished experiments' mean duration

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def current_number(self) -> int:
        """The number shown as "experiment 7 of 12": the running one, else the next to run."""
        if self.running:
            return min(experiment.number for experiment in self.running)
        return min(self.done + 1, self.total)


def progress(task: Task, experiments: Sequence[Experiment]) -> Progress:
    finished = [experiment for experiment in experiments if experiment.status in FINISHED_EXPERIMENT]
    total = max(task.experiments_planned, len(experiments))
    # Succeeded, failed, or skipped (it will never run); a cancelled experiment did not finish.
    done = len(finished) + sum(1 for experiment in experiments if experiment.status == ExperimentStatus.SKIPPED)
    running = [experiment for experiment in experiments if experiment.status in RUNNING_EXPERIMENT]
    elapsed = None
    if task.started_at:
        end = task.finished_at if task.finished_at and not task.is_locked else timezone.now()
        elapsed = max((end - task.started_at).total_seconds(), 0.0)
    durations = [experiment.duration_s for experiment in finished if experiment.duration_s is not None]
    remaining = None
    if durations and task.is_locked:
        # Experiments run side by side on a host's GPUs: the rest take their mean over as many lanes.
        lanes = max(len(running), 1)
        remaining = sum(durations) / len(durations) * max(total - done, 0) / lanes
    return Progress(done=done, total=total, running=running, elapsed_s=elapsed, remaining_s=remaining)
