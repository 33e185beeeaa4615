"""A host marked degraded: failing, or about to, so its VMs had better leave it (DRS's
proactive HA "quarantine", oVirt's "non-operational"). An administrator marks it, on its page
or with the CLI, or a health rule of its cluster does; it stays degraded until an
administrator or the CLI restores it, never by itself. Changes go through save(), so the
audit trail records each with who made it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import Host, HostHealthSample

MAX_REASON_LENGTH = 500
BY_CLI = "vmotion CLI"
HEALTH_RULE = "health rule"


class DegradationError(ValueError):
    """A request to mark or restore a host that cannot be done; nothing was changed."""


def by_administrator(user) -> str:
    return f"administrator {user.get_username()}"


def by_health_rule(rule: str) -> str:
    return f"{HEALTH_RULE} '{rule}'"


def describe(host: Host) -> str:
    """Why the host is degraded, in one sentence: "health rule 'memory pressure' fired on
    kvm2: free memory 3% < 5% for 10 min", or "kvm2 was marked degraded by administrator
    alice: fan failing"."""
    if host.degraded_by.startswith(HEALTH_RULE):
        return f"{host.degraded_by} fired on {host.name}: {host.degraded_reason}"
    return f"{host.name} was marked degraded by {host.degraded_by}: {host.degraded_reason}"


def mark_degraded(host: Host, reason: str, by: str) -> Host:
    """Mark the host degraded for `reason`; `by` says who or what (see the by_* helpers)."""
    reason = reason.strip()
    if not reason:
        raise DegradationError(f"Say why {host.name} is degraded: the reason is empty.")
    if len(reason) > MAX_REASON_LENGTH:
        raise DegradationError(f"The reason is {len(reason)} characters long; at most {MAX_REASON_LENGTH} fit.")
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if host.is_degraded:
            raise DegradationError(f"{host.name} is already degraded, since {host.degraded_since:%Y-%m-%d %H:%M %Z} ({host.degraded_by}: {host.degraded_reason}).")
        host.degraded_reason, host.degraded_by, host.degraded_since = reason, by, timezone.now()
        host.save(update_fields=["degraded_reason", "degraded_by", "degraded_since"])
    return host


def restore(host: Host) -> str:
    """Clear the mark. The health history starts afresh, so that the reads which marked the
    host do not mark it again before it has been read anew."""
    with transaction.atomic():
        host = Host.objects.select_for_update().get(pk=host.pk)
        if not host.is_degraded:
            raise DegradationError(f"{host.name} is not degraded.")
        host.degraded_reason, host.degraded_by, host.degraded_since = "", "", None
        host.save(update_fields=["degraded_reason", "degraded_by", "degraded_since"])
        HostHealthSample.objects.filter(host=host).delete()
    return f"{host.name} is restored: no longer degraded."
