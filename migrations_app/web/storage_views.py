"""A VM page's "Move disks…": its disks to other datastores of its host, live."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from core.roles import Role, role_required
from inventory.models import VirtualMachine

from migrations_app import services
from migrations_app.web.storage_forms import StorageMoveForm


@role_required(Role.OPERATOR)
def move_storage(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: each disk with the host's datastores to choose from. POST: the storage-only move
    submitted (the checks refuse it, nothing changed, with the reason on the form)."""
    vm = get_object_or_404(VirtualMachine.objects.select_related("host"), pk=pk)
    form = StorageMoveForm(vm, request.POST if request.method == "POST" else None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            task = services.submit_storage_move(vm, form.choice(), form.options(), requested_by=request.user)
        except services.MigrationRequestError as refused:
            error = str(refused)
        else:
            return redirect(task)
    status = 400 if request.method == "POST" else 200
    return render(request, "migrations_app/move_storage.html", {"vm": vm, "form": form, "error": error}, status=status)
