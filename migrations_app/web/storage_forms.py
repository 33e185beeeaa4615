"""The "Move disks…" form of a VM page: for each disk, stay where it is or go to another
datastore of the host the VM runs on, live (a storage-only move)."""

from __future__ import annotations

from django import forms

from inventory.models import DatastoreMount, VirtualMachine

from migrations_app.options import BANDWIDTH_RANGE_MIB_S, MigrationOptions
from migrations_app.services import DiskChoice

STAY = ""


class StorageMoveForm(forms.Form):
    bandwidth_mib_s = forms.IntegerField(
        label="Bandwidth (MiB/s)", min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1], required=False,
        help_text="Empty for uncapped",
    )
    reason = forms.CharField(max_length=500, required=False)

    def __init__(self, vm: VirtualMachine, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vm = vm
        mounts = DatastoreMount.objects.filter(host=vm.host, active=True).select_related("datastore").order_by("datastore__name")
        stores = [(str(m.datastore_id), f"{m.datastore.name} ({m.datastore.available_bytes / 1024**3:.1f} GiB free)") for m in mounts]
        self.disks = list(vm.disks.select_related("datastore"))
        for disk in self.disks:
            where = disk.datastore.name if disk.datastore else disk.source
            self.fields[f"disk_{disk.target}"] = forms.ChoiceField(
                label=f"{disk.target}, now on {where}", choices=[(STAY, "stays where it is"), *stores], required=False,
            )

    def disk_fields(self):
        return [self[f"disk_{disk.target}"] for disk in self.disks]

    def choice(self) -> DiskChoice:
        chosen = {disk.target: int(self.cleaned_data[f"disk_{disk.target}"]) for disk in self.disks if self.cleaned_data[f"disk_{disk.target}"]}
        return DiskChoice(per_disk=chosen)

    def options(self) -> MigrationOptions:
        return MigrationOptions(bandwidth_mib_s=self.cleaned_data["bandwidth_mib_s"], reason=self.cleaned_data["reason"])
