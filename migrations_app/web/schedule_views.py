"""Schedules in the browser: the list with next and last runs, a new schedule, one schedule's
runs, enable, disable and delete."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.roles import Role, has_role, role_required

from migrations_app import services
from migrations_app.automation import schedules
from migrations_app.errors import MigrationRequestError, RoleRefused
from migrations_app.models import Schedule
from migrations_app.web.schedule_forms import ScheduleForm


@role_required(Role.VIEWER)
def schedule_list(request: HttpRequest) -> HttpResponse:
    items = Schedule.objects.select_related("created_by").order_by("-enabled", "next_run_at", "name")
    return render(request, "migrations_app/schedule_list.html", {"schedules": items})


@role_required(Role.OPERATOR)
def schedule_new(request: HttpRequest) -> HttpResponse:
    form = ScheduleForm(request.POST or None, initial=request.GET or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = schedules.create(form.schedule(request.user))
        except MigrationRequestError as error:
            form.add_error(None, str(error))
        else:
            messages.info(request, f"Schedule “{created.name}” created; it runs {created.when().describe()}.")
            return redirect(created)
    return render(request, "migrations_app/schedule_new.html", {"form": form}, status=400 if form.errors else 200)


@role_required(Role.OPERATOR)
def schedule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Schedule, pk=pk)
    try:
        schedules.check_may_change(item, request.user)
    except RoleRefused as refusal:
        raise PermissionDenied(str(refusal)) from None
    form = ScheduleForm(request.POST or None, initial=ScheduleForm.initial_of(item))
    if request.method == "POST" and form.is_valid():
        try:
            schedules.update(form.schedule(request.user, Schedule.objects.get(pk=item.pk)), request.user)
        except MigrationRequestError as error:
            form.add_error(None, str(error))
        else:
            messages.info(request, f"Schedule “{item.name}” saved.")
            return redirect(item)
    return render(request, "migrations_app/schedule_new.html", {"form": form, "schedule": item}, status=400 if form.errors else 200)


@role_required(Role.VIEWER)
def schedule_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Schedule.objects.select_related("created_by"), pk=pk)
    runs = item.runs.select_related("batch", "evacuation")[:50]
    may_change = has_role(request.user, schedules.role_for(item.action))  # the buttons only for who may use them
    context = {"schedule": item, "runs": runs, "may_change": may_change, "post_copy_warnings": services.schedule_post_copy_warnings(item)}
    return render(request, "migrations_app/schedule_detail.html", context)


@require_POST
@role_required(Role.OPERATOR)
def schedule_enable(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_enabled(request, pk, True)


@require_POST
@role_required(Role.OPERATOR)
def schedule_disable(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_enabled(request, pk, False)


def _set_enabled(request: HttpRequest, pk: int, enabled: bool) -> HttpResponse:
    item = get_object_or_404(Schedule, pk=pk)
    try:
        schedules.set_enabled(item, enabled, request.user)
    except RoleRefused as refusal:
        raise PermissionDenied(str(refusal)) from None
    messages.info(request, f"Schedule “{item.name}” {'enabled' if enabled else 'disabled'}.")
    return redirect(item)


@require_POST
@role_required(Role.OPERATOR)
def schedule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Schedule, pk=pk)
    try:
        messages.info(request, schedules.delete(item, request.user))
    except RoleRefused as refusal:
        raise PermissionDenied(str(refusal)) from None
    return redirect("schedule-list")
