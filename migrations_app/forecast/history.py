"""What past migrations teach a forecast, read from the job samples the engine kept: how much of
a guest's resident memory its first pass sends, and how fast a copy between two hosts goes.

A first pass walks all of the guest's RAM: it sends every page in use and skips the zero ones,
so its rate is per guest size and CPU-bound on a fast link. Later passes send only dirtied
pages and, uncapped, run several times faster. The two rates are learned apart."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Case, OuterRef, Q, Subquery, Value, When

from inventory.models import Host, VirtualMachine

from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask, ProgressSample
from migrations_app.convergence.policy import MIB
from migrations_app.convergence.prediction import SETUP_MS

# Less than this resent after the first pass is mostly device state and round trips: no rate.
MIN_RESENT_BYTES = 16 * MIB
# How many recent migrations are searched: near a pair of hosts for the two rates, and per VM.
RECENT_MIGRATIONS = 20


@dataclass(frozen=True)
class LinkRates:
    """Bytes per second a migration between two hosts moves, in its first pass and after it."""

    first_pass_bytes_s: int
    resend_bytes_s: int

    def capped(self, bandwidth_mib_s: int | None) -> LinkRates:
        if not bandwidth_mib_s:
            return self
        cap = bandwidth_mib_s * MIB
        return LinkRates(min(self.first_pass_bytes_s, cap), min(self.resend_bytes_s, cap))


@dataclass(frozen=True)
class _Passes:
    """One finished migration, split at the end of its first pass."""

    first_pass_bytes: int
    first_pass_ms: int
    resent_bytes: int
    resent_ms: int

    @property
    def first_pass_rate(self) -> int | None:
        return round(self.first_pass_bytes * 1000 / self.first_pass_ms) if self.first_pass_bytes and self.first_pass_ms > 0 else None

    @property
    def resend_rate(self) -> int | None:
        if self.resent_bytes < MIN_RESENT_BYTES or self.resent_ms <= 0:
            return None
        return round(self.resent_bytes * 1000 / self.resent_ms)


def _with_first_pass(tasks):
    """Tasks annotated with the first sample after their first pass: QEMU counts a pass as it
    syncs the dirty bitmap, so the sample where the count reaches 2 closes the first pass (the
    engine samples at the moment libvirt reports a pass's end)."""
    after_first = ProgressSample.objects.filter(task=OuterRef("pk"), iteration__gte=2).order_by("elapsed_ms")
    return tasks.filter(state=TaskState.SUCCEEDED, bytes_transferred__gt=0, total_ms__gt=0).annotate(
        first_pass_end_ms=Subquery(after_first.values("elapsed_ms")[:1]),
        first_pass_bytes=Subquery(after_first.values("data_processed")[:1]),
    ).filter(first_pass_bytes__gt=0)


def _passes(task: MigrationTask) -> _Passes:
    return _Passes(
        first_pass_bytes=task.first_pass_bytes,
        first_pass_ms=task.first_pass_end_ms - SETUP_MS,
        resent_bytes=task.bytes_transferred - task.first_pass_bytes,
        resent_ms=task.total_ms - task.first_pass_end_ms,
    )


def expected_link_rates(source: Host, destination: Host, bandwidth_mib_s: int | None) -> LinkRates:
    """The rates a copy between these hosts should reach, no more than the cap: what the last
    uncapped migrations between them, else the other way, else from or to either of them,
    achieved in each part (one end's network and CPU set the pace); the assumed link speed
    where none did. A resend rate not yet seen is taken to be the first pass's."""
    ends = (source.pk, destination.pk)
    nearness = Case(
        When(source=source, destination=destination, then=Value(0)),
        When(source=destination, destination=source, then=Value(1)),
        default=Value(2),
    )
    recent = _with_first_pass(
        MigrationTask.objects.filter(Q(source__in=ends) | Q(destination__in=ends), bandwidth_mib_s__isnull=True)
    ).annotate(nearness=nearness).order_by("nearness", "-finished_at")[:RECENT_MIGRATIONS]
    recent = list(recent)
    passes = [_passes(task) for task in recent]
    first = next((p.first_pass_rate for p in passes if p.first_pass_rate), None)
    if first is None:
        first = settings.MIGRATION_ASSUMED_BANDWIDTH_MIB_S * MIB if not bandwidth_mib_s else bandwidth_mib_s * MIB
    resend = _resend_rate(passes, [task.nearness for task in recent]) or first
    return LinkRates(first, max(resend, first)).capped(bandwidth_mib_s)


def _resend_rate(passes: list[_Passes], nearness: list[int]) -> int | None:
    """The resend rate of the migration that resent the most, among the nearest ones that
    resent enough: a few short passes spend much of their time on bitmap syncs and round
    trips, so a migration that resent little understates what a guest that keeps the link
    busy with resends gets (and those are the guests whose forecast depends on it)."""
    with_rate = [(near, -p.resent_bytes, p.resend_rate) for p, near in zip(passes, nearness) if p.resend_rate]
    return min(with_rate)[2] if with_rate else None


@dataclass(frozen=True)
class FirstPassHint:
    """What past migrations say of how much of a guest's resident set its first pass sends:
    the resident set also holds QEMU's own memory (its heap, the emulator's code cache)."""

    sent_bytes: int | None = None  # this VM's last first pass...
    resident_then: int = 0  # ...and its resident set then
    qemu_own_bytes: int = 0  # else: resident less first pass, of the last VM moved from its host

    @property
    def of_this_vm(self) -> bool:
        return self.sent_bytes is not None

    def first_pass_bytes(self, resident_now: int) -> int:
        """The VM's last first pass plus what its resident set grew by since; else the resident
        set less QEMU's own memory as seen on its host (at least a quarter of it)."""
        if self.sent_bytes is not None:
            return min(self.sent_bytes + max(resident_now - self.resident_then, 0), resident_now)
        return max(resident_now - self.qemu_own_bytes, resident_now // 4)


def first_pass_hints(vms: list[VirtualMachine]) -> dict[int, FirstPassHint]:
    """By VM id, for the VMs that it or its host's past migrations say anything of. One query."""
    hosts = {vm.host_id for vm in vms}
    recent = (
        _with_first_pass(MigrationTask.objects.filter(Q(vm__in=vms) | Q(source__in=hosts), resident_bytes__isnull=False))
        .order_by("-finished_at")
        .values_list("vm_id", "source_id", "first_pass_bytes", "resident_bytes")[: RECENT_MIGRATIONS * max(len(vms), 1)]
    )
    own: dict[int, FirstPassHint] = {}
    on_host: dict[int, FirstPassHint] = {}
    for vm_id, source_id, sent, resident in recent:
        own.setdefault(vm_id, FirstPassHint(sent_bytes=sent, resident_then=resident))
        on_host.setdefault(source_id, FirstPassHint(qemu_own_bytes=max(resident - sent, 0)))
    hints = {vm.pk: own.get(vm.pk) or on_host.get(vm.host_id) for vm in vms}
    return {pk: hint for pk, hint in hints.items() if hint}
