"""A domain's state in our own words, mapped once from libvirt's codes."""

from __future__ import annotations

from enum import StrEnum

import libvirt


class DomainPower(StrEnum):
    """What the inventory shows as a VM's power state."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting_down"
    SHUT_OFF = "shut_off"
    CRASHED = "crashed"
    SUSPENDED = "suspended"
    UNKNOWN = "unknown"


class DomainState(StrEnum):
    """Where a VM stands on one host, for deciding what became of a migration."""

    # The guest runs here.
    RUNNING = "running"
    # Defined and started here but paused (not for a migration): it still lives here.
    PAUSED = "paused"
    # A migration is under way: a migration job is active, or the guest is paused for the
    # switch-over or for post-copy. Where it will end up is not known yet.
    MIGRATING = "migrating"
    # A post-copy migration broke and libvirt says so (paused or running "post-copy failed"):
    # this copy is part of a guest split between two hosts, whole only if libvirt resumes the
    # migration (VIR_MIGRATE_POSTCOPY_RESUME).
    POST_COPY_FAILED = "post-copy failed"
    # Defined here but not running (shut off, crashed): a leftover definition.
    STOPPED = "stopped"
    # Not defined on this host at all.
    ABSENT = "absent"
    # The host did not answer, so nothing is known.
    UNREACHABLE = "unreachable"

    @property
    def runs_here(self) -> bool:
        return self in (DomainState.RUNNING, DomainState.PAUSED)


_POWER = {
    libvirt.VIR_DOMAIN_RUNNING: DomainPower.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainPower.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainPower.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainPower.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainPower.SHUT_OFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainPower.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainPower.SUSPENDED,
}

_PAUSED_FOR_MIGRATION = (libvirt.VIR_DOMAIN_PAUSED_MIGRATION, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY)
# A post-copy migration whose stream broke leaves the source paused and the destination
# running or paused "post-copy failed": the destination has the guest's CPU state, the
# source the pages it has not sent yet. Neither copy is the guest until libvirt resumes the
# migration (VIR_MIGRATE_POSTCOPY_RESUME).
_POST_COPY_FAILED = {
    libvirt.VIR_DOMAIN_PAUSED: libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED,
    libvirt.VIR_DOMAIN_RUNNING: libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED,
}
_ACTIVE_JOBS = (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED)
_MIGRATION_OPERATIONS = (libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN, libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)


def power_of(state: int) -> DomainPower:
    return _POWER.get(state, DomainPower.UNKNOWN)


def is_incoming_copy(state: int, reason: int, persistent: bool) -> bool:
    """A transient domain paused for an incoming migration: the VM still runs on its source."""
    return not persistent and state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION


def is_post_copy(state: int, reason: int) -> bool:
    """The source pauses with this reason once the guest runs on the destination."""
    return state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY


def is_post_copy_failed(state: int, reason: int) -> bool:
    """libvirt marks both ends of a broken post-copy migration so, once it knows."""
    return state in _POST_COPY_FAILED and reason == _POST_COPY_FAILED[state]


def job_is_active(stats: dict) -> bool:
    return stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) in _ACTIVE_JOBS


def domain_state_of(state: int, reason: int, job_stats: dict) -> DomainState:
    if is_post_copy_failed(state, reason):
        return DomainState.POST_COPY_FAILED
    if state == libvirt.VIR_DOMAIN_PAUSED and reason in _PAUSED_FOR_MIGRATION:
        return DomainState.MIGRATING
    if job_is_active(job_stats) and job_stats.get("operation", libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT) in _MIGRATION_OPERATIONS:
        return DomainState.MIGRATING
    power = power_of(state)
    if power in (DomainPower.RUNNING, DomainPower.SHUTTING_DOWN):
        return DomainState.RUNNING
    if power in (DomainPower.PAUSED, DomainPower.SUSPENDED):
        return DomainState.PAUSED
    return DomainState.STOPPED
