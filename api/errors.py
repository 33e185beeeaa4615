"""Every refusal as JSON: {"message", "checks", "errors"} (and "task" with a 409).

400: bad input, or a request the service layer refuses (with the failing checks);
401: no token or session; 403: the role is too low; 404: no such object or page;
409: the VM already has an active migration, or the object's state does not allow the request
now (cancelling a task that has ended)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status, views
from rest_framework.response import Response

from migrations_app.errors import ActiveMigrationExists, MigrationRequestError, RoleRefused, StateConflict

from .serializers.errors import error_body

API_PATH = "/api/"


def exception_handler(exc, context):
    if isinstance(exc, ActiveMigrationExists):
        return Response({**error_body(str(exc)), "task": exc.task.pk if exc.task else None}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, StateConflict):
        return Response(error_body(str(exc)), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, RoleRefused):
        return Response(error_body(str(exc)), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, MigrationRequestError):
        return Response(error_body(str(exc), report=exc.report), status=status.HTTP_400_BAD_REQUEST)
    response = views.exception_handler(exc, context)
    if response is None:
        return None  # an error of ours: the 500 handler answers
    if isinstance(exc, exceptions.ValidationError):
        errors = _by_field(exc.detail)
        response.data = error_body("Bad input: " + "; ".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items()), errors=errors)
    else:
        response.data = error_body(str(response.data.get("detail", exc)) if isinstance(response.data, dict) else str(exc))
    return response


def _by_field(detail, path: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"field.sub.0": ["why", ...]}."""
    if isinstance(detail, dict):
        flat = {}
        for key, value in detail.items():
            name = "input" if key == "non_field_errors" and not path else key
            flat.update(_by_field(value, f"{path}.{name}" if path else name))
        return flat
    if isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_by_field(item, f"{path}.{index}" if path else str(index)))
        return flat
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {path or "input": messages}


def not_found(request: HttpRequest, exception=None):
    """The site's 404: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith(API_PATH):
        return JsonResponse(error_body(f"Nothing at {request.path}: see /api/schema/ for the endpoints."), status=404)
    return defaults.page_not_found(request, exception)


@csrf_exempt
@login_not_required
def unknown_api_path(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Every URL under /api/ that no endpoint takes, by any method. Routed, not left to
    handler404, which Django's debug page replaces while DEBUG is on (an HTML 404 for an id
    that is not a number), and which no CSRF check or slash redirect comes before."""
    if not request.path.endswith("/") and _is_endpoint(request.path + "/"):
        return JsonResponse(error_body(f"Nothing at {request.path}: the endpoint is {request.path}/ (with the slash)."), status=404)
    return not_found(request)


def _is_endpoint(path: str) -> bool:
    try:
        return resolve(path).func is not unknown_api_path
    except Resolver404:
        return False


def server_error(request: HttpRequest):
    if request.path.startswith(API_PATH):
        return JsonResponse(error_body("vmotion failed to answer this request; its log has the details."), status=500)
    return defaults.server_error(request)
