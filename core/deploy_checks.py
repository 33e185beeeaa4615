"""What `manage.py check --deploy` adds to Django's own: warnings about settings that open
more than a production deployment should."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def metrics_closed(app_configs, **kwargs) -> list[Warning]:
    if settings.METRICS_TOKEN or not settings.METRICS_PUBLIC:
        return []
    return [Warning(
        "/metrics is open to anyone who reaches the web server: it names every host and every VM on the move.",
        hint="Set METRICS_TOKEN and give it to Prometheus (docs/reference/metrics.md); METRICS_PUBLIC=1 opens /metrics on purpose.",
        id="vmotion.W001",
    )]
