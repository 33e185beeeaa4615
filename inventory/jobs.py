"""RQ entry points for inventory work: what an inventory worker runs, through libvirt.

Only workers import this module (the web server queues these jobs by name, through
`enqueue`). Each job is safe to run twice. RQ stores each queued job's dotted path: a job
renamed or moved strands the jobs already queued under the old name.
"""

import logging
from dataclasses import asdict

from django.conf import settings

from hypervisor import HypervisorError
from hypervisor.host import read_host_cpu

from . import cpu_baseline, measure, sync
from .choices import ClusterCpuMode
from .enqueue import QUEUE, enqueue_host_sync, enqueue_sync_all, job_id  # noqa: F401  their home before `enqueue`
from .models import Cluster, Host, VirtualMachine

log = logging.getLogger(__name__)


def sync_host_job(host_id: int) -> dict:
    host = Host.objects.select_related("cluster").get(pk=host_id)
    outcome = sync.sync_host(host, start_measurements=True)
    if host.cluster is not None:
        sync.refresh_cluster_baseline(host.cluster)  # a no-op unless the members' CPUs changed
    return asdict(outcome)


def measure_guests_job(vm_ids: list[int]) -> int:
    """Sample the dirty rate of these running guests now, for forecasts that found none recent."""
    return measure.measure_guests(vm_ids)


def read_host_cpu_job(uri: str) -> dict:
    """A host's CPU, read before it joins a cluster: its model, libvirt's XML and features,
    or why it could not be read."""
    try:
        model, xml, features = read_host_cpu(uri, settings.LIBVIRT_CALL_TIMEOUT_SECONDS)
    except HypervisorError as error:
        return {"error": str(error)}
    return {"model": model, "xml": xml, "features": list(features) if features is not None else None}


def set_named_cpu_baseline_job(cluster_id: int, model: str) -> dict:
    """Hold a cluster to a CPU model libvirt knows and every member offers."""
    try:
        return {"ok": True, "message": cpu_baseline.set_cpu_baseline(Cluster.objects.get(pk=cluster_id), ClusterCpuMode.NAMED, model)}
    except cpu_baseline.CpuBaselineError as error:
        return {"ok": False, "message": str(error)}


def set_vm_cpu_to_baseline_job(vm_id: int) -> dict:
    """Give a VM its cluster's baseline CPU from its next boot."""
    try:
        vm = VirtualMachine.objects.select_related("host__cluster").get(pk=vm_id)
        return {"ok": True, "message": cpu_baseline.set_vm_cpu_to_baseline(vm)}
    except cpu_baseline.CpuBaselineError as error:
        return {"ok": False, "message": str(error)}
