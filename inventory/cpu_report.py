"""A cluster's CPU baseline as the inventory holds it: every VM judged against it, and going
back to the baseline computed from the hosts. Nothing here asks libvirt, so pages run it."""

from __future__ import annotations

from dataclasses import dataclass

from .choices import ClusterCpuMode
from .cpu_compat import Baseline, Fit, VmVerdict, hosts_identical, judge_vm
from .models import Cluster, Host, VirtualMachine


class CpuBaselineError(Exception):
    """Refused, and nothing changed; the message says why and what to do."""


@dataclass(frozen=True)
class VmCpuRow:
    vm: VirtualMachine
    verdict: VmVerdict


@dataclass(frozen=True)
class ClusterCpuReport:
    cluster: Cluster
    baseline: Baseline
    hosts: list[Host]
    hosts_identical: bool
    vms: list[VmCpuRow]  # the VMs that do not fit within the baseline, those above it first
    fitting: int  # how many VMs do

    def with_fit(self, fit: Fit) -> list[VmCpuRow]:
        return [row for row in self.vms if row.verdict.fit == fit]

    @property
    def exceeding(self) -> list[VmCpuRow]:
        return self.with_fit(Fit.EXCEEDS)

    @property
    def restart_pending(self) -> list[VmCpuRow]:
        return self.with_fit(Fit.RESTART_PENDING)

    @property
    def unknown(self) -> list[VmCpuRow]:
        return self.with_fit(Fit.UNKNOWN)


def cluster_cpu_report(cluster: Cluster) -> ClusterCpuReport:
    """Every VM of the cluster judged against its baseline, from the inventory alone. Each VM
    is judged from its CPU's columns; only those that do not fit are read whole, to be listed."""
    hosts = list(cluster.hosts.order_by("name"))
    host_cpus = [host.cpu for host in hosts]
    baseline = cluster.cpu_baseline
    judged, fitting = {}, 0
    for pk, *cpu in VirtualMachine.objects.filter(host__cluster=cluster).order_by().values_list("pk", *VirtualMachine.CPU_FIELDS):
        verdict = judge_vm(VirtualMachine.cpu_of(*cpu), baseline, host_cpus)
        if verdict.fit == Fit.FITS:
            fitting += 1
        else:
            judged[pk] = verdict
    listed = VirtualMachine.objects.filter(pk__in=judged).select_related("host").order_by("name", "pk") if judged else []
    rows = [VmCpuRow(vm, judged[vm.pk]) for vm in listed]
    order = {Fit.EXCEEDS: 0, Fit.UNKNOWN: 1, Fit.RESTART_PENDING: 2}
    rows.sort(key=lambda row: order[row.verdict.fit])
    return ClusterCpuReport(cluster, baseline, hosts, hosts_identical(host_cpus), rows, fitting)


def use_computed_baseline(cluster: Cluster) -> str:
    """Hold the cluster's VMs to the baseline computed from its hosts. Returns what changed."""
    cluster.cpu_mode, cluster.cpu_named_model, cluster.cpu_named_features = ClusterCpuMode.COMPUTED, "", None
    cluster.save(update_fields=["cpu_mode", "cpu_named_model", "cpu_named_features"])
    return f"{cluster.name}'s CPU baseline is now computed from its hosts: {cluster.cpu_baseline_model or 'not computed yet'}."
