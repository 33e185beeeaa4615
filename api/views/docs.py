"""The OpenAPI schema, and the page that shows it (Swagger UI from the installed sidecar's
static files, started by a static script: no CDN and no inline script)."""

from csp.decorators import csp_update
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer

from .base import ApiViewMixin


class SchemaView(ApiViewMixin, SpectacularAPIView):
    """Any signed-in user or token may read the schema; each operation says the role it needs.
    JSON unless YAML is asked for (?format=yaml or Accept: application/yaml), errors included."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer, OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]


# Swagger UI draws its icons as data: images; scripts and styles stay the site's own.
@csp_update({"img-src": "data:"})
def docs(request: HttpRequest) -> HttpResponse:
    """A page: the site-wide sign-in requirement applies, and "Try it out" uses the session."""
    return render(request, "api/docs.html")
