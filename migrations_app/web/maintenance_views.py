"""Maintenance mode in the browser: the plan, entering, the evacuation followed live, abort and exit."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.roles import Role, role_required
from inventory.models import Host

from migrations_app.automation import maintenance
from migrations_app.web import queries
from migrations_app.choices import EvacuationState
from migrations_app.errors import MigrationRequestError
from migrations_app.models import Evacuation


@role_required(Role.ADMINISTRATOR)
def maintenance_plan(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the plan, with each move's forecast; nothing moves. POST: enter."""
    host = get_object_or_404(Host, pk=pk)
    if request.method == "POST":
        predicted = request.POST.get("predicted_total_ms", "")
        try:
            evacuation = maintenance.enter(host, requested_by=request.user, predicted_total_ms=int(predicted) if predicted.isdigit() else None)
        except MigrationRequestError as error:
            messages.error(request, str(error))
            return redirect(host)
        return redirect(evacuation)
    return render(request, "migrations_app/maintenance_plan.html", {"host": host, "plan": maintenance.plan(host)})


@role_required(Role.VIEWER)
def evacuation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    evacuation = get_object_or_404(Evacuation.objects.select_related("host", "batch", "requested_by"), pk=pk)
    return render(request, "migrations_app/evacuation_detail.html", _context(evacuation))


@role_required(Role.VIEWER)
def evacuation_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The evacuation page's fragment, polled until the evacuation and its moves have ended."""
    evacuation = get_object_or_404(Evacuation.objects.select_related("host", "batch"), pk=pk)
    return render(request, "migrations_app/_evacuation_progress.html", _context(evacuation))


def _context(evacuation: Evacuation) -> dict:
    items = queries.batch_tasks(evacuation.batch)
    ended = evacuation.state != EvacuationState.RUNNING and all(item.task.is_final for item in items)
    return {"evacuation": evacuation, "batch": evacuation.batch, "items": items, "ended": ended}


@require_POST
@role_required(Role.ADMINISTRATOR)
def evacuation_abort(request: HttpRequest, pk: int) -> HttpResponse:
    evacuation = get_object_or_404(Evacuation.objects.select_related("host", "batch"), pk=pk)
    try:
        messages.info(request, maintenance.abort(evacuation, actor=request.user))
    except MigrationRequestError as error:
        messages.error(request, str(error))
    return redirect(evacuation)


@require_POST
@role_required(Role.ADMINISTRATOR)
def maintenance_exit(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    try:
        messages.info(request, maintenance.exit_maintenance(host, actor=request.user))
    except MigrationRequestError as error:
        messages.error(request, str(error))
    return redirect(host)
