"""A cluster's CPU baseline in practice, where libvirt is asked: choosing a named model,
giving a VM the baseline for its next boot, and reading a host's CPU before it joins. The
judgements are `cpu_compat`'s, the report from the inventory `cpu_report`'s; libvirt is
reached through `hypervisor`. Workers and the command line run this; pages queue it."""

from __future__ import annotations


from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.cpu import arch_of, describe_model, model_cpu_xml
from hypervisor.guest import set_next_boot_cpu
from hypervisor.host import read_host_cpu

from .choices import ClusterCpuMode
from .cpu_compat import NO_MODEL_NAMED, named_model_refusal
from .cpu_report import ClusterCpuReport, CpuBaselineError, VmCpuRow, cluster_cpu_report, use_computed_baseline
from .models import Cluster, Host, VirtualMachine

__all__ = [
    "ClusterCpuReport", "CpuBaselineError", "VmCpuRow", "cluster_cpu_report", "read_cpu_before_joining",
    "set_cpu_baseline", "set_vm_cpu_to_baseline",
]


def set_cpu_baseline(cluster: Cluster, mode: str, model: str = "") -> str:
    """Hold the cluster's VMs to the computed baseline or to a named CPU model that libvirt
    knows and every member host offers. Returns what changed, in a sentence."""
    if mode == ClusterCpuMode.COMPUTED:
        return use_computed_baseline(cluster)
    if mode != ClusterCpuMode.NAMED:
        raise CpuBaselineError(f"Unknown CPU baseline mode {mode!r}: choose computed or named.")
    model = model.strip()
    if not model:
        raise CpuBaselineError(NO_MODEL_NAMED)
    members = list(cluster.hosts.order_by("name"))
    asked = next((host for host in members if host.is_reachable and host.cpu_xml), None)
    if asked is None:
        who = "No host of it answers" if members else "It has no hosts yet"
        raise CpuBaselineError(f"{who}, so vmotion cannot ask libvirt whether it knows {model} and which features it has. Try again when a host of {cluster.name} is connected.")
    arch = arch_of(asked.cpu_xml)
    try:
        facts = describe_model(asked.uri, arch, model, settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
    except HypervisorError as error:
        raise CpuBaselineError(f"Could not ask libvirt on {asked.name} about {model}: {error}") from error
    refusal = named_model_refusal(model, arch, facts.known_models, facts.features, [host.cpu for host in members])
    if refusal:
        raise CpuBaselineError(refusal)
    cluster.cpu_mode, cluster.cpu_named_model, cluster.cpu_named_features = ClusterCpuMode.NAMED, model, sorted(facts.features)
    cluster.save(update_fields=["cpu_mode", "cpu_named_model", "cpu_named_features"])
    return f"{cluster.name}'s CPU baseline is now {model}: VMs with it can move to every host of the cluster."


def set_vm_cpu_to_baseline(vm: VirtualMachine) -> str:
    """Define the VM with its cluster's baseline CPU from its next boot. A running VM keeps
    its CPU until it is powered off and started again; the inventory says so meanwhile."""
    cluster = vm.host.cluster if vm.host else None
    if cluster is None:
        raise CpuBaselineError(f"{vm.name} is on no cluster's host, so there is no baseline to give it.")
    baseline = cluster.cpu_baseline
    if not baseline.model or baseline.features is None:
        raise CpuBaselineError(f"{cluster.name} has no CPU baseline yet; it is computed when its hosts have been read.")
    if not vm.persistent:
        raise CpuBaselineError(f"{vm.name} is transient: it has no definition for its next boot to change.")
    cpu_xml = model_cpu_xml(baseline.model) if baseline.named else cluster.cpu_baseline_xml
    try:
        running_instance = set_next_boot_cpu(vm.host.uri, str(vm.uuid), cpu_xml, settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
    except HypervisorError as error:
        raise CpuBaselineError(f"libvirt on {vm.host.name} did not take {vm.name}'s new definition: {error}") from error
    # The inventory reads definitions, so it records the new CPU now rather than at the next sync.
    vm.cpu_mode, vm.cpu_model, vm.cpu_features = "custom", baseline.model, sorted(baseline.features)
    vm.cpu_pending_instance_id = running_instance
    vm.save(update_fields=["cpu_mode", "cpu_model", "cpu_features", "cpu_pending_instance_id"])
    if running_instance is None:
        return f"{vm.name} now has the CPU baseline {baseline.model}; it takes it when it starts."
    return f"{vm.name} has the CPU baseline {baseline.model} from its next boot: power it off and start it again (a reboot inside the guest is not enough)."


def read_cpu_before_joining(host: Host) -> None:
    """Read a host's CPU from libvirt onto the unsaved host, so its CPU can be judged before
    it joins a cluster."""
    try:
        model, xml, features = read_host_cpu(host.uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
    except HypervisorError as error:
        raise CpuBaselineError(
            f"vmotion could not read the CPU of {host.name or host.shown_uri} ({error}), so it cannot tell whether the host offers the cluster's CPU baseline. "
            "Add the host without a cluster, and choose its cluster once vmotion has read it."
        ) from error
    host.cpu_model, host.cpu_xml = host.cpu_model or model, xml
    host.cpu_features = list(features) if features is not None else None
