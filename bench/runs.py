"""One migration's record: a row of the table, a run in the results JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.config import UNCAPPED


@dataclass
class Run:
    cap_mib_s: int | None
    rate_mb_s: int
    repeat: int
    tool: str  # "virsh", "engine pre-copy", "engine post-copy"
    guest: str
    source: str
    destination: str
    started_at: str = ""
    converged: bool = False
    outcome: str = ""  # what happened, in a few words
    total_ms: int | None = None  # libvirt's job time (time_elapsed)
    wall_ms: int | None = None  # virsh: the command; engine: task submitted -> finished
    downtime_ms: int | None = None
    bytes: int | None = None  # data processed
    iterations: int | None = None
    submit_to_migrate_ms: int | None = None  # engine: task submitted -> libvirt's migrate call
    # engine: CPU its worker (the job's process) and scheduler used, submission to end; on a
    # machine whose cores the copy and the guests fill, what the control plane took from them
    control_plane_cpu_ms: int | None = None
    predicted_total_ms: int | None = None
    predicted_downtime_ms: int | None = None
    prediction: str = ""
    task: int | None = None
    error: str = ""
    memory_in_use_bytes: int | None = None
    guest_dirty_rate_mb_s: float | None = None  # what the guest achieved just before, by its heartbeats
    client_gap_ms: float | None = None
    client_intact: bool | None = None
    client_reconnects: int | None = None
    client_error: str | None = None
    serial_gap_ms: float | None = None
    guest_kept_running: bool | None = None  # None: the serial log was not watched
    guest_heartbeats: int | None = None  # seen during the run; the guest checks its working set all along
    guest_mismatches: int | None = None
    code: str = ""  # the engine's source hash (control_plane.code_fingerprint) when the migration started
    code_changed_during: bool = False
    loadavg_1m: float | None = None
    foreign_qemu: int | None = None  # other QEMU processes on the machine (other labs) at the start
    foreign_qemu_after: int | None = None  # and at the end
    libvirt_stats: dict = field(default_factory=dict)
    engine_json: dict = field(default_factory=dict)
    timeline: str = ""

    @property
    def contended(self) -> bool:
        """Other labs' guests shared the two CPUs during this migration."""
        return bool(self.foreign_qemu or self.foreign_qemu_after)

    @property
    def mib_moved(self) -> float | None:
        return None if self.bytes is None else self.bytes / 2**20


def placement_verdict(tool_succeeded: bool, on_source: bool, on_destination: bool) -> tuple[bool, str]:
    """Whether a migration converged, and the outcome in a few words, as virsh asked on both
    hosts finds the guest: running on the destination and gone from the source, and the tool
    (virsh's exit status, the engine's task) saying it succeeded. Neither the tool alone nor
    virsh alone is enough: a tool that claims success for a guest still on the source has
    not migrated it, and a guest that arrived behind a failure report is a tool's error."""
    if on_destination and not on_source:
        return tool_succeeded, "converged" if tool_succeeded else "reported failed, but running on the destination alone"
    where = "on both hosts" if on_source and on_destination else ("still on the source" if on_source else "running on neither host")
    return False, (f"reported succeeded, but {where}" if tool_succeeded else f"failed, {where}")


def cell_name(run: Run) -> str:
    cap = "uncapped" if run.cap_mib_s is UNCAPPED else f"{run.cap_mib_s}"
    return f"{cap}/{run.rate_mb_s}" + (f"#{run.repeat}" if run.repeat > 1 else "") + (" [contended]" if run.contended else "")


def describe(run: Run) -> str:
    """One progress line for a finished run."""
    parts = [run.outcome or "?"]
    if run.total_ms is not None:
        parts.append(f"{run.total_ms / 1000:.1f} s")
    if run.downtime_ms is not None:
        parts.append(f"downtime {run.downtime_ms} ms")
    if run.mib_moved is not None:
        parts.append(f"{run.mib_moved:.0f} MiB")
    if run.iterations is not None:
        parts.append(f"{run.iterations} iterations")
    parts.append(f"client gap {run.client_gap_ms:.0f} ms" if run.client_gap_ms is not None else f"client: {run.client_error}")
    if run.control_plane_cpu_ms is not None:
        parts.append(f"control plane CPU {run.control_plane_cpu_ms} ms")
    if run.guest_kept_running is False or run.guest_mismatches:
        parts.append(f"GUEST kept_running={run.guest_kept_running} mismatches={run.guest_mismatches}")
    if run.error and not run.converged:
        parts.append(run.error.splitlines()[0][:200])
    return ", ".join(parts)
