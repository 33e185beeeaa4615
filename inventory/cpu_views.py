"""A cluster's CPU baseline in the browser: the mode, the VMs above it, and the fix that gives
a VM the baseline for its next boot. The section is a partial the cluster page includes.
What needs libvirt (a named model, a VM's new definition) an inventory worker does, and the
page waits a few seconds for its answer."""

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from core.roles import Role, role_required

from . import cpu_report, enqueue
from .choices import ClusterCpuMode
from .forms import ClusterCpuForm
from .models import Cluster, VirtualMachine


@dataclass(frozen=True)
class CpuSection:
    """What `_cluster_cpu.html` shows: the report and the form that sets the mode."""

    report: cpu_report.ClusterCpuReport
    form: ClusterCpuForm


def cpu_section(cluster: Cluster, form: ClusterCpuForm | None = None) -> CpuSection:
    """The context the cluster page passes to the partial as `cpu`."""
    initial = {"mode": cluster.cpu_mode, "model": cluster.cpu_named_model}
    return CpuSection(cpu_report.cluster_cpu_report(cluster), form or ClusterCpuForm(initial=initial))


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
    if form.is_valid() and form.cleaned_data["mode"] == ClusterCpuMode.COMPUTED:
        messages.info(request, cpu_report.use_computed_baseline(cluster))
        return _back(request, "cluster-cpu", pk=pk)
    if form.is_valid():
        model = form.cleaned_data["model"].strip()
        answer = enqueue.ask(enqueue.SET_NAMED_CPU_BASELINE, cluster.pk, model, key=f"{cluster.pk}:{model}", wait_seconds=enqueue.ACTION_WAIT_SECONDS, again=True)
        if answer.done and answer.value["ok"]:
            messages.info(request, answer.value["message"])
            return _back(request, "cluster-cpu", pk=pk)
        form.add_error("model", answer.value["message"] if answer.done else _unanswered(f"whether libvirt knows {model}", answer))
    cluster.refresh_from_db()  # the page shows the baseline still in effect
    return render(request, "inventory/cluster_cpu.html", {"cluster": cluster, "cpu": cpu_section(cluster, form)}, status=400)


@require_POST
@role_required(Role.OPERATOR)
def vm_cpu_baseline(request: HttpRequest, pk: int) -> HttpResponse:
    vm = get_object_or_404(VirtualMachine.objects.select_related("host__cluster"), pk=pk)
    answer = enqueue.ask(enqueue.SET_VM_CPU_TO_BASELINE, vm.pk, key=str(vm.pk), wait_seconds=enqueue.ACTION_WAIT_SECONDS, again=True)
    if answer.done:
        (messages.info if answer.value["ok"] else messages.error)(request, answer.value["message"])
    else:
        messages.error(request, _unanswered(f"whether libvirt took {vm.name}'s new definition", answer))
    cluster = vm.host.cluster if vm.host else None
    return _back(request, "cluster-cpu", pk=cluster.pk) if cluster else redirect(vm)


def _unanswered(what: str, answer: enqueue.Answer) -> str:
    if answer.why_not == enqueue.NO_WORKER:
        return f"Nothing changed: {answer.why_not}, and only the inventory workers reach libvirt to tell {what}."
    return f"Not known yet: {answer.why_not}, so this page cannot tell {what}. The change is queued: reload the page in a few seconds to see it."


def _back(request: HttpRequest, default: str, **kwargs) -> HttpResponse:
    """To the page the form was on (the cluster page or this section's own), else `default`."""
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(wanted)
    return redirect(default, **kwargs)
