"""The pre-flight rules as pure functions of plain facts, each with the sentence an operator
reads. `checks.preflight` feeds them one host's facts from the database and libvirt; the
migration assistant feeds them every host's facts, read in bulk."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from inventory.cpu_compat import listed

from migrations_app.checks.report import CheckResult, CheckStatus
from migrations_app.convergence.policy import GIB


class MigrationEncryption(StrEnum):
    """A cluster's migration encryption, from the least strict: the values and labels of
    `inventory.choices.MigrationEncryption`, mirrored here so that the rules need no Django (a
    test keeps the two equal)."""

    OFF = "off"
    AVAILABLE = "available"
    REQUIRED = "required"

    @property
    def label(self) -> str:
        return {"off": "Off", "available": "When available", "required": "Required"}[self.value]


@dataclass(frozen=True)
class DiskOnDatastore:
    target: str
    source: str
    datastore_id: int | None
    datastore_name: str
    copyable: bool = False  # a raw or qcow2 file in a pool vmotion knows: a move can copy it live
    copied_bytes: int = 0  # what a copy moves: its allocation


@dataclass(frozen=True)
class CopyStore:
    """The datastore of a destination that a move copies disks to when nobody chose one."""

    datastore_id: int
    name: str
    available_bytes: int


# Room kept on a datastore beyond what the copies take: the guests write during the copy,
# and a full datastore stops every VM on it.
SPACE_MARGIN = 0.10


@dataclass(frozen=True)
class NicOnNetwork:
    network_id: int | None
    network_name: str


@dataclass(frozen=True)
class HostTls:
    """One end of a migration, as the encryption check sees it."""

    name: str
    role: str  # "source" or "destination"
    has_migration_tls: bool  # migration certificates declared on the host


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, CheckStatus.OK, message)


def warn(name: str, message: str) -> CheckResult:
    return CheckResult(name, CheckStatus.WARNING, message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, CheckStatus.FAIL, message)


def distinct_hosts(source_id: int | None, destination_id: int, destination_name: str) -> CheckResult:
    if source_id is not None and source_id == destination_id:
        return fail("distinct_hosts", f"The VM already runs on {destination_name}: choose another destination.")
    return ok("distinct_hosts", f"Destination {destination_name} differs from the source.")


def host_connected(name: str, role: str, reachable: bool, last_error: str) -> CheckResult:
    check = f"{role}_connected"
    if not reachable:
        reason = last_error or "it has never answered"
        return fail(check, f"The {role} host {name} is not reachable through libvirt: {reason}")
    return ok(check, f"The {role} host {name} is connected.")


def destination_open(name: str, in_maintenance: bool, state_label: str) -> CheckResult:
    if in_maintenance:
        # Only the state's first letter is lowered: a degraded host's label ends with an operator's reason.
        return fail("destination_open", f"{name} is {state_label[:1].lower()}{state_label[1:]}: it takes no new VMs.")
    return ok("destination_open", f"{name} accepts VMs.")


def cpu_offered(destination_name: str, model: str, compatible: bool, missing: Sequence[str], detail: str) -> CheckResult:
    """libvirt's answer on the destination; a refusal names the features that block the move."""
    if compatible:
        return ok("cpu_compatible", f"{destination_name} can offer {model}.")
    reason = f"its CPU lacks {listed(missing)}, which the VM's CPU uses" if missing else detail or "the CPUs are incompatible"
    return fail("cpu_compatible", f"{destination_name} cannot offer {model}: {reason}. Set the VM's CPU to the cluster's baseline (on the cluster's page).")


def storage_shared(source_name: str, destination_name: str, disks: Sequence[DiskOnDatastore], mounted: Collection[int]) -> CheckResult:
    problems = []
    for disk in disks_out_of_reach(disks, mounted):
        if disk.datastore_id is None:
            problems.append(f"Disk {disk.target} ({disk.source}) is not on a datastore vmotion knows, so it is local to {source_name}.")
        else:
            problems.append(f"Disk {disk.target} is on datastore {disk.datastore_name}, which {destination_name} does not mount.")
    if problems:
        return fail("storage_shared", " ".join(problems))
    return ok("storage_shared", f"Every disk is on a datastore {destination_name} mounts.")


def storage_reachable(
    source_name: str, destination_name: str, disks: Sequence[DiskOnDatastore], mounted: Collection[int], store: CopyStore | None,
) -> CheckResult:
    """`storage_shared` for a move that copies the disks the destination cannot read, when
    each can be copied, to `store` (the destination's datastore for copies), with room."""
    out = disks_out_of_reach(disks, mounted)
    if not out or store is None or not all(disk.copyable for disk in out):
        return storage_shared(source_name, destination_name, disks, mounted)
    copied = sum(disk.copied_bytes for disk in out)
    if copied * (1 + SPACE_MARGIN) > store.available_bytes:
        return fail("storage_shared", (
            f"{destination_name} does not mount the datastore of {', '.join(disk.target for disk in out)}, and {store.name}, its "
            f"datastore with the most room, has {store.available_bytes / GIB:.1f} GiB free for the {copied / GIB:.1f} GiB to copy "
            f"(and a {SPACE_MARGIN:.0%} margin)."
        ))
    return ok("storage_shared", f"Disks copied with the VM: {', '.join(disk.target for disk in out)} ({copied / GIB:.1f} GiB) to {store.name}.")


def copies_disks(disks: Sequence[DiskOnDatastore], mounted: Collection[int]) -> int:
    """The bytes a move to a host mounting `mounted` copies: 0 when every disk is within reach."""
    return sum(disk.copied_bytes for disk in disks_out_of_reach(disks, mounted))


def disks_out_of_reach(disks: Sequence[DiskOnDatastore], mounted: Collection[int]) -> list[DiskOnDatastore]:
    """The disks a destination mounting `mounted` could not read: local ones, or on a datastore it lacks."""
    return [disk for disk in disks if disk.datastore_id is None or disk.datastore_id not in mounted]


def networks_present(destination_name: str, nics: Sequence[NicOnNetwork], present: Collection[int]) -> CheckResult:
    missing = missing_networks(nics, present)
    if missing:
        plural = "s" if len(missing) > 1 else ""
        return fail("networks_present", f"{destination_name} lacks the network{plural} {', '.join(missing)} the VM's NICs use.")
    return ok("networks_present", f"Every network the VM uses exists on {destination_name}.")


def missing_networks(nics: Sequence[NicOnNetwork], present: Collection[int]) -> list[str]:
    return sorted({nic.network_name for nic in nics if nic.network_id not in present})


def memory_free(destination_name: str, free_bytes: int, incoming_bytes: int, vm_memory_bytes: int, reserve_bytes: int) -> CheckResult:
    available = free_bytes - incoming_bytes
    if not memory_fits(free_bytes, incoming_bytes, vm_memory_bytes, reserve_bytes):
        return fail(
            "memory_free",
            f"{destination_name} has {available / GIB:.1f} GiB free (after {incoming_bytes / GIB:.1f} GiB for migrations on their way), "
            f"the VM needs {vm_memory_bytes / GIB:.1f} GiB plus a {reserve_bytes / GIB:.1f} GiB reserve.",
        )
    return ok("memory_free", f"{destination_name} has {available / GIB:.1f} GiB free for the VM's {vm_memory_bytes / GIB:.1f} GiB.")


def memory_fits(free_bytes: int, incoming_bytes: int, vm_memory_bytes: int, reserve_bytes: int) -> bool:
    """Whether the VM and the reserve fit in what is free once migrations on their way have arrived."""
    return free_bytes - incoming_bytes >= vm_memory_bytes + reserve_bytes


def affinity_kept(destination_name: str, broken: Sequence) -> CheckResult:
    """`broken`: the affinity breaches (`affinity.Breach`) the move would make."""
    hard = [breach for breach in broken if breach.rule.must]
    if hard:
        return affinity(hard[0].message, must=True)
    if broken:
        return affinity("; ".join(breach.message for breach in broken), must=False)
    return ok("affinity", f"Every affinity rule holds with the VM on {destination_name}.")


def affinity(message: str, *, must: bool) -> CheckResult:
    if must:
        return fail("affinity", f"The move breaks {message}.")
    return warn("affinity", f"The move breaks {message}; a \"should\" rule, so it may go ahead.")


# Whose setting applies when neither host is in a cluster.
NO_CLUSTER = (MigrationEncryption.OFF.value, "hosts outside any cluster")


def strictest_encryption(settings: Iterable[tuple[str, str] | None]) -> tuple[str, str]:
    """Of the (mode, whose setting) of the source's and destination's clusters (None for a
    host in none), the stricter: a VM leaving or entering a cluster that requires encryption
    moves encrypted."""
    strictness = [mode.value for mode in MigrationEncryption]  # off, available, required
    given = [setting for setting in settings if setting is not None]
    return max(given, key=lambda setting: strictness.index(setting[0])) if given else NO_CLUSTER


def encryption_refuses(mode: str, source: HostTls, destination: HostTls) -> bool:
    return mode == MigrationEncryption.REQUIRED and not (source.has_migration_tls and destination.has_migration_tls)


def encrypts(mode: str, source: HostTls, destination: HostTls) -> bool:
    """Whether the memory stream goes over TLS: never when encryption is off, otherwise when
    both hosts have migration certificates (a required move without them is refused first)."""
    return mode != MigrationEncryption.OFF and source.has_migration_tls and destination.has_migration_tls


def encryption(mode: str, setter: str, source: HostTls, destination: HostTls) -> CheckResult:
    """`mode`: a MigrationEncryption value; `setter`: whose setting it is ("cluster lab")."""
    lacking = [host for host in (source, destination) if not host.has_migration_tls]
    named = " and ".join(f"the {host.role} {host.name}" for host in lacking)
    if mode == MigrationEncryption.OFF:
        return ok("encryption", f"Migration encryption is off in {setter}: the memory stream goes unencrypted.")
    if not lacking:
        return ok("encryption", f"Both hosts have migration certificates: the memory stream will be encrypted with TLS ({setter}: {MigrationEncryption(mode).label.lower()}).")
    verb = "has" if len(lacking) == 1 else "have"
    if mode == MigrationEncryption.REQUIRED:
        return fail(
            "encryption",
            f"{setter[:1].upper()}{setter[1:]} requires encrypted migration, but {named} {verb} no migration certificates: "
            f"install them (migrate_tls_x509_cert_dir in qemu.conf) and mark the host as having them, "
            f"or set the cluster's migration encryption to \"when available\".",
        )
    return warn("encryption", f"{named[:1].upper()}{named[1:]} {verb} no migration certificates: the memory stream will go unencrypted ({setter} encrypts when available).")


def stream_note(mode: str, setter: str, source: HostTls, destination: HostTls) -> str:
    """What the task's timeline says about the memory stream when the migration starts."""
    if encrypts(mode, source, destination):
        return f"The memory stream is encrypted with TLS ({setter}: {MigrationEncryption(mode).label.lower()})."
    if mode == MigrationEncryption.OFF:
        return f"The memory stream is not encrypted: migration encryption is off in {setter}."
    lacking = " and ".join(host.name for host in (source, destination) if not host.has_migration_tls)
    return f"The memory stream is not encrypted: {lacking} has no migration certificates ({setter} encrypts when available)."
