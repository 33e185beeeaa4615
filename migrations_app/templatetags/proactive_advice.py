"""The host page (an inventory template) asks here what the proactive policy did or advises
about a degraded host, so that the inventory needs no import of migrations."""

from django import template

from migrations_app.automation import proactive

register = template.Library()


@register.simple_tag
def proactive_advice(host) -> str:
    return proactive.advice_for(host) if host.is_degraded else ""
