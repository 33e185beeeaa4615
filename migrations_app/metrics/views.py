"""/metrics, for Prometheus, which has no login session: with a bearer token when
METRICS_TOKEN is set; without one, open only when METRICS_PUBLIC says so on purpose (or DEBUG
is on), since it names every host and every VM on the move."""

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from migrations_app.metrics.collector import scrape_registry


@login_not_required
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    if not _token_accepted(request):
        why = (
            "/metrics needs the header Authorization: Bearer <the METRICS_TOKEN setting>.\n" if settings.METRICS_TOKEN else
            "/metrics is closed: set METRICS_TOKEN and scrape with Authorization: Bearer <it>, or set METRICS_PUBLIC=1 to open it to anyone who reaches the web server.\n"
        )
        return HttpResponse(
            why,
            status=401, content_type="text/plain; charset=utf-8", headers={"WWW-Authenticate": 'Bearer realm="vmotion metrics"'},
        )
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(scrape_registry()), content_type=content_type)


def _token_accepted(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    if not expected:
        return settings.METRICS_PUBLIC
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())
