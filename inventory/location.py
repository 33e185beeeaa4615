"""Where a VM runs, as the end of a migration reads it from libvirt.

It is recorded at once, in the transaction that ends the task, so the inventory never
disagrees with a finished task. It is dated, so that a host reading taken before the move
and applied after it neither puts the VM back on its old host nor calls it missing on the
new one (a host is read in a second or more, and an incoming VM is not listed until it
runs).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from .models import Host, VirtualMachine


def record_location(vm_id: int, host: Host) -> None:
    vm = VirtualMachine.objects.get(pk=vm_id)
    vm.host, vm.located_at = host, timezone.now()
    vm.save(update_fields=["host", "located_at"])


def located_after(vm: VirtualMachine, read_at: datetime) -> bool:
    """Whether a migration placed the VM after a host reading started at `read_at`."""
    return vm.located_at is not None and vm.located_at > read_at
