"""A failing host in the browser: an administrator marks it degraded, or restores it, from the
host's page. A cluster's proactive policy and its failing hosts are on the cluster's pages
(`migrations_app.web.cluster`)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from core.roles import Role, role_required
from inventory import degradation
from inventory.models import Host


@require_POST
@role_required(Role.ADMINISTRATOR)
def host_degrade(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    try:
        degradation.mark_degraded(host, request.POST.get("reason", ""), degradation.by_administrator(request.user))
        messages.info(request, f"{host.name} is marked degraded.")
    except degradation.DegradationError as error:
        messages.error(request, str(error))
    return redirect(host)


@require_POST
@role_required(Role.ADMINISTRATOR)
def host_restore(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    try:
        messages.info(request, degradation.restore(host))
    except degradation.DegradationError as error:
        messages.error(request, str(error))
    return redirect(host)
