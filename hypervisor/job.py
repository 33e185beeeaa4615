"""libvirt's statistics of a migration job, mapped once to the type the policy reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class JobSample:
    """One reading of a migration job, as plain numbers: bytes, bytes/s and ms."""

    elapsed_ms: int  # since the migration job started
    data_total: int
    data_processed: int
    data_remaining: int
    memory_dirty_rate: int  # bytes/s the guest dirties (libvirt counts pages/s)
    memory_iteration: int  # pre-copy pass number
    memory_bps: int  # current transfer rate (0 until the first pass ends)
    auto_converge_throttle: int  # % the vCPUs are throttled (0 = none)
    post_copy: bool  # the guest already runs on the destination
    post_copy_failed: bool = False  # the post-copy stream broke: libvirt paused the migration
    downtime_ms: int | None = None  # the final pause, in the statistics of a completed job
    active: bool = True  # False when the domain has no migration job (any more)
    # The disks copied with the memory (all zero when every disk is on shared storage).
    disk_total: int = 0
    disk_processed: int = 0
    disk_remaining: int = 0

    @classmethod
    def from_stats(cls, stats: Mapping, *, active: bool, post_copy: bool, post_copy_failed: bool = False) -> "JobSample":
        page_size = stats.get("memory_page_size", 4096) or 4096
        return cls(
            elapsed_ms=stats.get("time_elapsed", 0),
            data_total=stats.get("data_total", 0),
            data_processed=stats.get("data_processed", 0),
            data_remaining=stats.get("data_remaining", 0),
            memory_dirty_rate=stats.get("memory_dirty_rate", 0) * page_size,
            memory_iteration=stats.get("memory_iteration", 0),
            memory_bps=stats.get("memory_bps", 0),
            auto_converge_throttle=stats.get("auto_converge_throttle", 0),
            post_copy=post_copy,
            post_copy_failed=post_copy_failed,
            downtime_ms=stats.get("downtime"),
            active=active,
            disk_total=stats.get("disk_total", 0),
            disk_processed=stats.get("disk_processed", 0),
            disk_remaining=stats.get("disk_remaining", 0),
        )
