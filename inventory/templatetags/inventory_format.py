from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def percent(value) -> str:
    """A utilisation figure, or a dash until two samples make one."""
    if value is None:
        return "—"
    return f"{value:.0f}%"


@register.filter
def ago(moment) -> str:
    """How long ago, at the resolution a 10-second sync makes meaningful."""
    if moment is None:
        return "never"
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@register.filter
def mib(byte_count) -> str:
    """Bytes in MiB, as migration figures are quoted (libvirt's bandwidth is in MiB/s)."""
    if byte_count is None:
        return "—"
    return f"{byte_count / 1024**2:,.0f} MiB"
