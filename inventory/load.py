"""A host's load: the demand of the VMs running on it against its capacity. The lab's hosts
share one kernel, so host-wide counters are alike there; what differs between hosts, here
and in a real cluster, is their VMs' demand, which is what balancing evens out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .choices import ACTIVE_POWER_STATES


@dataclass(frozen=True)
class HostLoad:
    cpu_cores_used: float  # the running VMs' CPU demand, in cores
    cpu_cores: int
    memory_in_use_bytes: int  # what the running VMs' QEMU processes hold
    memory_total_bytes: int
    measured_vms: int  # running VMs with a CPU measurement so far
    running_vms: int

    @property
    def cpu_percent(self) -> float:
        return 100 * self.cpu_cores_used / self.cpu_cores if self.cpu_cores else 0.0

    @property
    def memory_percent(self) -> float:
        return 100 * self.memory_in_use_bytes / self.memory_total_bytes if self.memory_total_bytes else 0.0


def host_load(cpu_cores: int, memory_total_bytes: int, vms: Iterable) -> HostLoad:
    running = [vm for vm in vms if vm.power_state in ACTIVE_POWER_STATES]
    measured = [vm for vm in running if vm.cpu_cores_used is not None]
    return HostLoad(
        cpu_cores_used=round(sum(vm.cpu_cores_used for vm in measured), 3),
        cpu_cores=cpu_cores,
        memory_in_use_bytes=sum(vm.memory_in_use_bytes or 0 for vm in running),
        memory_total_bytes=memory_total_bytes,
        measured_vms=len(measured),
        running_vms=len(running),
    )
