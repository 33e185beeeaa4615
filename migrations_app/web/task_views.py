from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.htmx import render_page_or_partial
from core.pagination import page_of
from core.roles import Role, role_required

from inventory.models import VirtualMachine

from migrations_app import services
from migrations_app.web import queries
from migrations_app.web.chart import progress_chart
from migrations_app.audit.trail import BadCursor, audit_page, parse_cursor
from migrations_app.web.filtersets import AuditFilterForm, TaskFilterForm
from migrations_app.models import MigrationBatch
from migrations_app.web.wizard import Wizard
from migrations_app.convergence.progress import disk_copy_progress, progress_of

@role_required(Role.VIEWER)
def task_list(request: HttpRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET or None)
    page = page_of(request, form.filter(queries.task_rows().order_by("-created_at", "-pk")))
    return render_page_or_partial(request, "migrations_app/task_list.html", "migrations_app/_task_table.html", {"form": form, "page": page})


@role_required(Role.VIEWER)
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(queries.tasks(), pk=pk)
    context = {**_progress_context(task), "events": task.events.select_related("actor"), "disk_moves": task.disk_moves.all()}
    return render(request, "migrations_app/task_detail.html", context)


@role_required(Role.VIEWER)
def task_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The live progress fragment the task page polls. Once the task has ended, a polling page
    reloads itself whole, so its timeline and buttons show the end too."""
    task = get_object_or_404(queries.tasks(), pk=pk)
    response = render(request, "migrations_app/_task_progress.html", _progress_context(task))
    if getattr(request, "htmx", False) and task.is_final:
        response["HX-Refresh"] = "true"
    return response


@role_required(Role.VIEWER)
def migrations_now(request: HttpRequest) -> HttpResponse:
    """The dashboard's panel, and a host page's: migrations running now with their bars, and
    recent failures (to or from the host given as ?host=)."""
    host_id = int(request.GET["host"]) if request.GET.get("host", "").isdigit() else None
    context = {"running": queries.running_migrations(host_id), "failures": queries.recent_failures(host_id)}
    return render(request, "migrations_app/_migrations_now.html", context)


def _progress_context(task) -> dict:
    samples = task.sample_figures()
    last = samples[-1] if samples else None
    if task.storage_only:
        return {"task": task, "progress": disk_copy_progress(task.state, last), "chart": None, "outcome": task.outcome()}
    return {
        "task": task,
        "progress": progress_of(task.state, task.max_downtime_ms, last),
        "chart": progress_chart(samples),
        "outcome": task.outcome(),
    }


@require_POST
@role_required(Role.OPERATOR)
def task_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _operator_action(request, pk, services.cancel_task)


@require_POST
@role_required(Role.OPERATOR)
def task_force_complete(request: HttpRequest, pk: int) -> HttpResponse:
    return _operator_action(request, pk, services.force_complete)


def _operator_action(request: HttpRequest, pk: int, action) -> HttpResponse:
    task = get_object_or_404(queries.tasks(), pk=pk)
    try:
        messages.info(request, action(task, actor=request.user))
    except services.MigrationRequestError as error:
        messages.error(request, str(error))
    return redirect(task)


@role_required(Role.OPERATOR)
def migrate_vm(request: HttpRequest, pk: int) -> HttpResponse:
    """A VM page's "Migrate…": the wizard with that VM chosen."""
    vm = get_object_or_404(VirtualMachine, pk=pk)
    return redirect(f"{reverse('migration-wizard')}?vm={vm.pk}")


@role_required(Role.OPERATOR)
def migration_wizard(request: HttpRequest) -> HttpResponse:
    """Choose VMs -> destinations ranked by the assistant -> options -> confirm with the
    forecast -> submit. The steps are GETs; only the submit, a POST, changes anything."""
    data = request.POST if request.method == "POST" else request.GET
    wizard = Wizard(data)
    if wizard.step == "vms" and not wizard.error:
        messages.info(request, "Tick the VMs to move, then choose “Migrate selected…”.")
        return redirect("vm-list")
    submit_error = ""
    if request.method == "POST" and wizard.step == "confirm" and data.get("when") == "at":
        try:
            return redirect(wizard.as_schedule(request.user))
        except services.MigrationRequestError as error:
            submit_error = str(error)
    elif request.method == "POST" and wizard.step == "confirm":
        try:
            batch, tasks = services.submit_batch(
                wizard.moves(), wizard.options(), requested_by=request.user, without_refused="without_refused" in data
            )
        except services.MigrationRequestError as error:
            submit_error = str(error)
        else:
            return redirect(batch or tasks[0])
    review = wizard.review() if wizard.step == "confirm" else []
    refused = [row for row in review if row.refusal]
    context = {"wizard": wizard, "review": review, "refused": refused, "movable": len(review) - len(refused), "submit_error": submit_error}
    return render(request, "migrations_app/wizard.html", context, status=400 if submit_error else 200)


@role_required(Role.VIEWER)
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(MigrationBatch.objects.select_related("requested_by"), pk=pk)
    return render(request, "migrations_app/batch_detail.html", {"batch": batch, **_batch_context(batch)})


@role_required(Role.VIEWER)
def batch_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The batch page's fragment, polled until every task has ended."""
    batch = get_object_or_404(MigrationBatch, pk=pk)
    return render(request, "migrations_app/_batch_progress.html", {"batch": batch, **_batch_context(batch)})


def _batch_context(batch: MigrationBatch) -> dict:
    items = queries.batch_tasks(batch)
    return {"items": items, "all_final": all(item.task.is_final for item in items)}


@role_required(Role.ADMINISTRATOR)
def audit_log(request: HttpRequest) -> HttpResponse:
    """Pages by cursor (`after`), never by number: an old `page=` link shows the newest entries."""
    form = AuditFilterForm(request.GET or None)
    try:
        after = parse_cursor(request.GET["after"]) if request.GET.get("after") else None
    except BadCursor as refusal:
        return render(request, "migrations_app/audit.html", {"form": form, "entries": [], "error": str(refusal)}, status=400)
    entries, next_cursor = audit_page(form.filters(), after)
    return render(request, "migrations_app/audit.html", {"form": form, "entries": entries, "after": after, "next_cursor": next_cursor})
