"""Learning from out-of-memory failures (``Task.skip_after_oom``, on by default).

An engine's memory fraction (SGLang's ``mem-fraction-static``, vLLM's ``gpu-memory-utilization``)
is the share of each GPU's memory it takes for weights and the KV cache; what is left holds the
activations. A higher fraction gives the KV cache more and leaves less for activations, so when a
combination runs out of memory at fraction m, the same combination (every other flag equal) at a
fraction of m or more runs out too: it is skipped, with the failed experiment named as the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from engines.checks import same_flag
from engines.plan import canonical
from tasks.experiments import Experiment
from tasks.models import Task
from tasks.states import ExperimentRole, ExperimentStatus

MEMORY_FLAGS = {"sglang": "mem-fraction-static", "vllm": "gpu-memory-utilization"}
# PyTorch's "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate …", and engines' own wording.
_OUT_OF_MEMORY = re.compile(r"out of memory|OutOfMemoryError", re.IGNORECASE)


def memory_flag(runtime: str) -> str | None:
    """The engine's memory-fraction flag, by its canonical name; None for an engine without one."""
    return MEMORY_FLAGS.get(runtime)


def is_out_of_memory(experiment: Experiment) -> bool:
    """A failed experiment whose error or engine log shows the engine ran out of GPU memory."""
    if experiment.status != ExperimentStatus.FAILED:
        return False
    return bool(_OUT_OF_MEMORY.search(experiment.error) or _OUT_OF_MEMORY.search(experiment.log_tail))


def out_of_memory(task: Task, experiments: Sequence[Experiment]) -> list[Experiment]:
    """The experiments a task learns from: those that ran out of memory, when it learns at all."""
    if not task.skip_after_oom:
        return []
    return [experiment for experiment in experiments if is_out_of_memory(experiment)]


def oom_skip_reason(task: Task, combination: Mapping[str, Any], ooms: Sequence[Experiment]) -> str | None:
    """Why ``combination`` is skipped: an experiment in ``ooms`` ran out of memory with the same other
    flags at a memory fraction no higher than this one's; None when none did."""
    flag = memory_flag(task.runtime)
    if flag is None or not ooms:
        return None
    aliases = same_flag(list(task.parameters or {}), task.catalogue)
    wanted, fraction = _split(canonical(combination, aliases), flag)
    if fraction is None:
        return None
    for experiment in ooms:
        others, failed_at = _split(canonical(experiment.parameters, aliases), flag)
        # A higher fraction leaves less memory for activations than the one that already ran out.
        if failed_at is not None and failed_at <= fraction and others == wanted:
            room = "leaves less room" if fraction > failed_at else "is the same"
            return f"experiment {experiment.number} ran out of memory at {flag} {failed_at}; {fraction} {room}"
    return None


def _split(combination: Mapping[str, Any], flag: str) -> tuple[str, float | None]:
    """The combination's other flags (as one comparable string) and its memory fraction."""
    fraction = combination.get(flag)
    others = json.dumps({name: value for name, value in combination.items() if name != flag}, sort_keys=True)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        return others, None
    return others, fraction


def prune_after_oom(experiment: Experiment) -> int:
    """When ``experiment`` ran out of memory and its task learns from that, skip the task's pending
    search experiments it rules out (status SKIPPED, the reason in ``error``); how many were skipped."""
    task = experiment.task
    if not task.skip_after_oom or not is_out_of_memory(experiment):
        return 0
    skipped = 0
    with transaction.atomic():
        # A row a worker is claiming this instant is left to it: it is running, not pending.
        pending = Experiment.objects.select_for_update(skip_locked=True).filter(
            task=task, status=ExperimentStatus.PENDING, role=ExperimentRole.SEARCH
        )
        for candidate in pending:
            reason = oom_skip_reason(task, candidate.parameters, [experiment])
            if reason:
                skipped += Experiment.objects.filter(pk=candidate.pk, status=ExperimentStatus.PENDING).update(
                    status=ExperimentStatus.SKIPPED, error=reason, step="", finished_at=timezone.now()
                )
    return skipped
