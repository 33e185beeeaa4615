"""A cluster's CPU baseline in the browser: the mode, the VMs above it, and the fix that gives
a VM the baseline for its next boot. The section is a partial the cluster page includes."""

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.roles import Role, role_required

from . import cpu_baseline
from .forms import ClusterCpuForm
from .models import Cluster, VirtualMachine


@dataclass(frozen=True)
class CpuSection:
    """What `_cluster_cpu.html` shows: the report and the form that sets the mode."""

    report: cpu_baseline.ClusterCpuReport
    form: ClusterCpuForm


def cpu_section(cluster: Cluster, form: ClusterCpuForm | None = None) -> CpuSection:
    """The context the cluster page passes to the partial as `cpu`."""
    initial = {"mode": cluster.cpu_mode, "model": cluster.cpu_named_model}
    return CpuSection(cpu_baseline.cluster_cpu_report(cluster), form or ClusterCpuForm(initial=initial))


@require_GET
@role_required(Role.VIEWER)
def cluster_cpu(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    return render(request, "inventory/cluster_cpu.html", {"cluster": cluster, "cpu": cpu_section(cluster)})


@require_POST
@role_required(Role.ADMINISTRATOR)
def cluster_cpu_mode(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = get_object_or_404(Cluster, pk=pk)
    form = ClusterCpuForm(request.POST)
    if form.is_valid():
        try:
            messages.info(request, cpu_baseline.set_cpu_baseline(cluster, form.cleaned_data["mode"], form.cleaned_data["model"]))
            return _back(request, "cluster-cpu", pk=pk)
        except cpu_baseline.CpuBaselineError as error:
            form.add_error("model", str(error))
    cluster.refresh_from_db()  # the page shows the baseline still in effect
    return render(request, "inventory/cluster_cpu.html", {"cluster": cluster, "cpu": cpu_section(cluster, form)}, status=400)


@require_POST
@role_required(Role.OPERATOR)
def vm_cpu_baseline(request: HttpRequest, pk: int) -> HttpResponse:
    vm = get_object_or_404(VirtualMachine.objects.select_related("host__cluster"), pk=pk)
    try:
        messages.info(request, cpu_baseline.set_vm_cpu_to_baseline(vm))
    except cpu_baseline.CpuBaselineError as error:
        messages.error(request, str(error))
    cluster = vm.host.cluster if vm.host else None
    return _back(request, "cluster-cpu", pk=cluster.pk) if cluster else redirect(vm)


def _back(request: HttpRequest, default: str, **kwargs) -> HttpResponse:
    """To the page the form was on (the cluster page or this section's own), else `default`."""
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(wanted)
    return redirect(default, **kwargs)
