"""The OpenAPI schema, and the page that shows it (Swagger UI from the installed sidecar's
static files, started by a static script: no CDN and no inline script)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from .base import ApiViewMixin


class SchemaView(ApiViewMixin, SpectacularAPIView):
    """Any signed-in user or token may read the schema; each operation says the role it needs."""

    permission_classes = [IsAuthenticated]


def docs(request: HttpRequest) -> HttpResponse:
    """A page: the site-wide sign-in requirement applies, and "Try it out" uses the session."""
    return render(request, "api/docs.html")
