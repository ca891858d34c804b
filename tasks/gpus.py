"""GPUs lent by hosts to experiments, through leases in the database.

Every GPU a host offers (``AUTOTUNER_GPU_IDS``) is a row, registered by the host's workers when they
start. A row held by an experiment is leased to it: a worker takes free rows of its own host with
``select_for_update(skip_locked=True)`` inside the transaction that claims the experiment, so two
workers of a host, or workers of ten hosts on one PostgreSQL, never lend one GPU twice (SQLite's
IMMEDIATE transactions serialise the claims instead). A lease ends when its experiment does: on
finish, cancel or crash the runner frees it; a lost worker's leases go when its experiment is
recovered, and ``release_orphans`` frees any row whose experiment no longer runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models, transaction
from django.utils import timezone

from tasks.states import RUNNING_EXPERIMENT


class GpuSlot(models.Model):
    host = models.CharField(max_length=200, help_text="The host offering the GPU (its hostname).")
    gpu = models.CharField(max_length=32, help_text="The GPU's id as CUDA_VISIBLE_DEVICES names it.")
    position = models.PositiveSmallIntegerField(help_text="Its place in AUTOTUNER_GPU_IDS: neighbours are adjacent.")
    experiment = models.ForeignKey(
        "tasks.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="gpu_slots"
    )
    leased_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(help_text="When a worker of the host last registered it.")

    class Meta:
        ordering = ["host", "position"]
        constraints = [models.UniqueConstraint(fields=["host", "gpu"], name="gpu_slot_unique_on_host")]

    def __str__(self) -> str:
        return f"{self.host} GPU {self.gpu}"


def register_host(host: str, gpu_ids: Sequence[str]) -> None:
    """Offer these GPUs of ``host`` (a worker starting); GPUs no longer offered and free are removed."""
    now = timezone.now()
    with transaction.atomic():
        for position, gpu in enumerate(gpu_ids):
            GpuSlot.objects.update_or_create(host=host, gpu=gpu, defaults={"position": position, "seen_at": now})
        GpuSlot.objects.filter(host=host, experiment__isnull=True).exclude(gpu__in=list(gpu_ids)).delete()


def choose(free: Sequence[int], total: int, needed: int) -> list[int] | None:
    """Which of the free positions (0 … total − 1) to lend to an experiment needing ``needed`` GPUs.

    A tensor-parallel group talks over the links between neighbouring GPUs, so an aligned block comes
    first (0-1, 2-3 for two; 0-3, 4-7 for four), then any run of neighbours, then whichever are free.
    None when fewer are free than needed.
    """
    if needed > len(free):
        return None
    available = set(free)
    for start in range(0, total - needed + 1, needed):
        block = list(range(start, start + needed))
        if available.issuperset(block):
            return block
    for start in range(total - needed + 1):
        run = list(range(start, start + needed))
        if available.issuperset(run):
            return run
    return sorted(available)[:needed]


def free_slots(host: str, gpu_ids: Sequence[str]) -> tuple[list[GpuSlot], int]:
    """The host's free GPUs, locked for this transaction (another worker's claim skips them), and how
    many it offers. A host no worker has registered yet (a claim outside ``manage.py worker``) is
    registered with ``gpu_ids``. Call it inside the transaction that claims an experiment."""
    offered = GpuSlot.objects.filter(host=host).count()
    if not offered:
        register_host(host, gpu_ids)
        offered = len(gpu_ids)
    free = list(GpuSlot.objects.select_for_update(skip_locked=True).filter(host=host, experiment__isnull=True))
    return free, offered


def lease(free: Sequence[GpuSlot], offered: int, experiment_id: int, needed: int) -> list[str] | None:
    """Lease ``needed`` of the ``free`` GPUs (of a host offering ``offered``) to the experiment; their
    ids, or None when fewer are free."""
    chosen = choose([slot.position for slot in free], offered, needed)
    if chosen is None:
        return None
    lent = sorted((slot for slot in free if slot.position in chosen), key=lambda slot: slot.position)
    GpuSlot.objects.filter(pk__in=[slot.pk for slot in lent]).update(
        experiment_id=experiment_id, leased_at=timezone.now()
    )
    return [slot.gpu for slot in lent]


def release(experiment_id: int) -> None:
    GpuSlot.objects.filter(experiment_id=experiment_id).update(experiment=None, leased_at=None)


def release_orphans() -> int:
    """Free every GPU whose experiment no longer runs (its worker died between the two writes)."""
    return (
        GpuSlot.objects.filter(experiment__isnull=False)
        .exclude(experiment__status__in=RUNNING_EXPERIMENT)
        .update(experiment=None, leased_at=None)
    )
