from django import template

register = template.Library()


@register.filter
def percent(value) -> str:
    """A utilisation figure, or a dash until two samples make one."""
    if value is None:
        return "—"
    return f"{value:.0f}%"
