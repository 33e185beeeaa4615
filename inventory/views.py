from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.htmx import render_page_or_partial
from core.roles import Role, role_required

from core.pagination import page_of

from . import enqueue, health_history, queries
from .filtersets import HostFilterForm, VmFilterForm
from .load import host_load
from .models import Host, VirtualMachine


@role_required(Role.VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    form = HostFilterForm(request.GET or None)
    page = page_of(request, form.filter(queries.hosts_for_dashboard()))
    page.object_list = queries.with_vm_counts(page.object_list)
    context = {
        "form": form,
        "page": page,
        "clusters": queries.cluster_summaries(),
        "totals": queries.inventory_totals(),
    }
    return render_page_or_partial(request, "inventory/dashboard.html", "inventory/_dashboard_hosts.html", context)


@role_required(Role.VIEWER)
def host_detail(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(queries.hosts_with_vms(), pk=pk)
    context = {
        "host": host, "load": host_load(host.cpu_count, host.memory_total_bytes, host.vms.all()),
        "mounts": queries.mounts_of(host), "networks": host.network_attachments.select_related("network"),
        "health": health_history.summary(host),
    }
    return render_page_or_partial(request, "inventory/host_detail.html", "inventory/_host_summary.html", context)


@require_POST
@role_required(Role.OPERATOR)
def host_sync(request: HttpRequest, pk: int) -> HttpResponse:
    host = get_object_or_404(Host, pk=pk)
    enqueue.enqueue_host_sync(host)
    messages.info(request, f"Reading {host.name} from libvirt now.")
    return redirect(host)


@role_required(Role.VIEWER)
def vm_list(request: HttpRequest) -> HttpResponse:
    form = VmFilterForm(request.GET or None)
    page = page_of(request, form.filter(VirtualMachine.objects.select_related("host").order_by("name", "pk")))
    return render_page_or_partial(request, "inventory/vm_list.html", "inventory/_vm_table.html", {"form": form, "page": page})


@role_required(Role.VIEWER)
def vm_detail(request: HttpRequest, pk: int) -> HttpResponse:
    vm = get_object_or_404(queries.vm_with_devices(), pk=pk)
    return render(request, "inventory/vm_detail.html", {"vm": vm})
