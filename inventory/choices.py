"""Named states and kinds for the inventory, each with a label an operator reads."""

from django.db import models


class HostState(models.TextChoices):
    # libvirt answered the last sync.
    CONNECTED = "connected", "Connected"
    # The last sync could not reach libvirt; Host.last_error says why.
    DISCONNECTED = "disconnected", "Disconnected"
    # Closed to new VMs by an administrator.
    MAINTENANCE = "maintenance", "In maintenance"
    # Its VMs are moving off it; it becomes MAINTENANCE once none runs there.
    ENTERING_MAINTENANCE = "entering_maintenance", "Entering maintenance"


# Closed to new VMs: the assistant never proposes such a host and the checks refuse it.
CLOSED_HOST_STATES = frozenset({HostState.MAINTENANCE, HostState.ENTERING_MAINTENANCE})


class ClusterCpuMode(models.TextChoices):
    # libvirt's baseline of the members' CPUs, recomputed when they change.
    COMPUTED = "computed", "Computed from its hosts"
    # A CPU model an administrator chose, older than the hosts' so that older hosts may join.
    NAMED = "named", "A named CPU model"


class MigrationEncryption(models.TextChoices):
    """Whether a cluster's migrations send the VM's memory over TLS (VIR_MIGRATE_TLS)."""

    # Never: the stream goes in the clear, as on a trusted, isolated migration network.
    OFF = "off", "Off"
    # Whenever both hosts have migration certificates; otherwise in the clear, and the task says so.
    AVAILABLE = "available", "When available"
    # Always: a move between hosts that cannot encrypt is refused.
    REQUIRED = "required", "Required"


class PowerState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    SHUTTING_DOWN = "shutting_down", "Shutting down"
    SHUT_OFF = "shut_off", "Shut off"
    CRASHED = "crashed", "Crashed"
    SUSPENDED = "suspended", "Suspended"
    # No host reported it at the last sync; VirtualMachine.host is where it was last seen.
    MISSING = "missing", "Not found"
    UNKNOWN = "unknown", "Unknown"


ACTIVE_POWER_STATES = frozenset({PowerState.RUNNING, PowerState.PAUSED, PowerState.SHUTTING_DOWN})


class DatastoreKind(models.TextChoices):
    DIRECTORY = "dir", "Directory"
    NFS = "netfs", "NFS"
    ISCSI = "iscsi", "iSCSI"
    FIBRE_CHANNEL = "scsi", "SCSI / Fibre Channel"
    RBD = "rbd", "Ceph RBD"
    LOGICAL = "logical", "LVM"
    FILESYSTEM = "fs", "Block filesystem"
    OTHER = "other", "Other"
