"""Reconciles the inventory with what libvirt reports. Idempotent: a second sync of an
unchanged host changes nothing (and so writes no audit entries)."""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from auditlog.registry import auditlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hypervisor import HypervisorError, host as hypervisor_host
from hypervisor.busy_domains import BUSY_DOMAIN_SECONDS
from hypervisor.datastore_keys import DIRECTORY_KINDS
from hypervisor.host import DiskFacts, DomainFacts, HostFacts, HostSnapshot, NetworkFacts, NicFacts, PoolFacts

from . import health_history
from .choices import CLOSED_HOST_STATES, DatastoreKind, HostState, PowerState
from .cpu_compat import restart_pending_after
from .dirty_rate import record_dirty_rate
from .location import located_after
from .models import (
    Cluster,
    Datastore,
    DatastoreMount,
    Host,
    Network,
    NetworkAttachment,
    VirtualDisk,
    VirtualMachine,
    VirtualNic,
    VmLoadSample,
)

log = logging.getLogger(__name__)

# Operator-set states that a successful or failed sync must not overwrite.
OPERATOR_STATES = CLOSED_HOST_STATES


@dataclass(frozen=True)
class SyncOutcome:
    host: str
    reachable: bool
    error: str = ""
    vms_seen: int = 0


def sync_all_hosts() -> list[SyncOutcome]:
    outcomes = [sync_host(host, start_measurements=True) for host in Host.objects.order_by("name")]
    for cluster in Cluster.objects.all():
        refresh_cluster_baseline(cluster)
    return outcomes


def sync_host(host: Host, *, start_measurements: bool = False) -> SyncOutcome:
    """Read the host into the inventory. The round of every host (`sync_all_hosts`) also
    starts each running guest's next dirty-rate measurement; a sync after a move does not: a
    migration waits for a measurement under way in its guest's QEMU (QEMU 10.0 can deadlock
    a migration that completes while one runs), and a soak whose every move followed the
    last one's sync waited 2.6 s (median) in 96 of 100 migrations."""
    timeout = settings.LIBVIRT_CALL_TIMEOUT_SECONDS
    started = time.monotonic()  # how long libvirt takes to answer is part of the host's health
    read_at = timezone.now()
    try:
        snapshot = hypervisor_host.read_host(host.uri, timeout, start_measurements)
    except HypervisorError as error:
        health_history.record(host, ok=False, latency_ms=_ms_since(started), at=timezone.now())
        mark_unreachable(host, str(error))
        return SyncOutcome(host=host.name, reachable=False, error=str(error))
    latency_ms, now = _ms_since(started), timezone.now()
    apply_snapshot(host, snapshot, now, read_at=read_at)
    health_history.record(
        host, ok=True, latency_ms=latency_ms, at=now,
        memory_free_bytes=snapshot.facts.memory_free_bytes, memory_total_bytes=snapshot.facts.memory_total_bytes,
    )
    return SyncOutcome(host=host.name, reachable=True, vms_seen=len(snapshot.domains))


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def mark_unreachable(host: Host, reason: str) -> None:
    log.warning("host %s unreachable: %s", host.name, reason)
    values = {"last_error": reason, "last_sync": timezone.now(), "cpu_utilisation": None}
    if host.state not in OPERATOR_STATES:
        values["state"] = HostState.DISCONNECTED
    _save_changes(host, values)


@transaction.atomic
def apply_snapshot(host: Host, snapshot: HostSnapshot, now: datetime, *, read_at: datetime) -> None:
    """`read_at`: when reading the host began; a VM a migration placed since keeps its place."""
    host = Host.objects.select_for_update().get(pk=host.pk)
    _apply_host_facts(host, snapshot.facts, now)
    mounts = _apply_pools(host, snapshot.pools)
    networks = _apply_networks(host, snapshot.networks)
    if snapshot.busy:
        names = ", ".join(name for _uuid, name in snapshot.busy)
        log.warning("host %s: the QEMU of %s did not answer libvirt within %g s; kept as last read", host.name, names, BUSY_DOMAIN_SECONDS)
    _apply_domains(host, snapshot.domains, mounts, networks, now, read_at, busy={uuid.lower() for uuid, _name in snapshot.busy})


def _apply_host_facts(host: Host, facts: HostFacts, now: datetime) -> None:
    values = {
        "hostname": facts.hostname,
        "cpu_model": facts.cpu_model,
        "cpu_count": facts.cpu_count,
        "cpu_mhz": facts.cpu_mhz,
        "cpu_xml": facts.cpu_xml,
        "cpu_features": _listed_or_none(facts.cpu_features),
        "memory_total_bytes": facts.memory_total_bytes,
        "memory_free_bytes": facts.memory_free_bytes,
        "cpu_utilisation": cpu_utilisation(host.cpu_times, facts.cpu_times),
        "cpu_times": facts.cpu_times,
        "libvirt_version": facts.libvirt_version,
        "hypervisor_version": facts.hypervisor_version,
        "last_seen": now,
        "last_sync": now,
        "last_error": "",
    }
    if host.state not in OPERATOR_STATES:
        values["state"] = HostState.CONNECTED
    _save_changes(host, values)


def cpu_utilisation(previous: dict, current: dict) -> float | None:
    """Busy share of CPU time between two samples of libvirt's cumulative counters, in %."""
    if not previous or not current:
        return None
    deltas = {key: current.get(key, 0) - previous.get(key, 0) for key in ("kernel", "user", "idle", "iowait")}
    total = sum(deltas.values())
    if total <= 0 or min(deltas.values()) < 0:
        return None
    return round(100.0 * (deltas["kernel"] + deltas["user"]) / total, 1)


def _apply_pools(host: Host, pools: tuple[PoolFacts, ...]) -> list[DatastoreMount]:
    # The host's mounts and their datastores in one query; only a pool new here costs more.
    held = {m.datastore.source_key: m for m in DatastoreMount.objects.filter(host=host).select_related("datastore").order_by()}
    mounts = []
    for pool in pools:
        key = datastore_key(host, pool)
        mount = held.pop(key, None)
        if mount is None:
            datastore, created = Datastore.objects.get_or_create(
                source_key=key,
                defaults={"name": _first_name(host, pool), "kind": _datastore_kind(pool.kind)},
            )
            if not created:
                _name_as_shared(datastore, pool)
            mount, _ = DatastoreMount.objects.get_or_create(datastore=datastore, host=host, defaults={"pool_name": pool.name})
            mount.datastore = datastore
        _save_changes(mount.datastore, {"capacity_bytes": pool.capacity_bytes, "available_bytes": pool.available_bytes})
        _save_changes(mount, {"pool_name": pool.name, "target_path": pool.target_path, "active": pool.active})
        mounts.append(mount)
    if held:  # pools the host no longer has
        DatastoreMount.objects.filter(pk__in=[m.pk for m in held.values()]).delete()
    Datastore.objects.filter(mounts__isnull=True, disks__isnull=True).delete()
    return mounts


def datastore_key(host: Host, pool: PoolFacts) -> str:
    """The pool's storage key; storage that only this host reaches is keyed within the host,
    so two hosts' own directories at one path stay two datastores."""
    return f"host-{host.pk}:{pool.source_key}" if pool.local else pool.source_key


def _first_name(host: Host, pool: PoolFacts) -> str:
    """Storage named beyond its host (an export, a target) by its pool's name; a directory or
    a disk of one host by its pool's name and the host's, as every host may have an "images"."""
    return f"{pool.name} ({host.name})" if pool.local or pool.kind in DIRECTORY_KINDS else pool.name


def _name_as_shared(datastore: Datastore, pool: PoolFacts) -> None:
    """A second host mounts a directory first seen on one host: it is shared storage, named
    by the pool's name alone."""
    first = datastore.mounts.select_related("host").first()
    if first is not None and datastore.name == f"{first.pool_name} ({first.host.name})":
        _save_changes(datastore, {"name": first.pool_name})


def _datastore_kind(pool_kind: str) -> str:
    aliases = {"iscsi-direct": DatastoreKind.ISCSI}
    if pool_kind in aliases:
        return aliases[pool_kind]
    return pool_kind if pool_kind in DatastoreKind.values else DatastoreKind.OTHER


def _apply_networks(host: Host, networks: tuple[NetworkFacts, ...]) -> list[NetworkAttachment]:
    held = {a.network.name: a for a in NetworkAttachment.objects.filter(host=host).select_related("network").order_by()}
    attachments = []
    for facts in networks:
        attachment = held.pop(facts.name, None)
        if attachment is None:
            network, _ = Network.objects.get_or_create(name=facts.name, defaults={"bridge": facts.bridge})
            attachment, _ = NetworkAttachment.objects.get_or_create(network=network, host=host)
            attachment.network = network
        _save_changes(attachment, {"bridge": facts.bridge, "active": facts.active})
        attachments.append(attachment)
    if held:  # networks the host no longer has
        NetworkAttachment.objects.filter(pk__in=[a.pk for a in held.values()]).delete()
    return attachments


def _apply_domains(host, domains, mounts, attachments, now, read_at, busy: frozenset[str] | set[str] = frozenset()) -> None:
    """`busy`: the uuids of domains whose QEMU did not answer: they keep what was known."""
    # What the inventory holds for these domains and for this host, read in three queries,
    # not three per VM: an unchanged host then costs a handful of queries however many VMs
    # it runs. (No ordering: the models' default one joins the VM table to sort.)
    uuids = {d.uuid.lower() for d in domains}
    here_now = Q(host=host) & ~Q(power_state=PowerState.MISSING)
    known, here = {}, set()
    for vm in VirtualMachine.objects.filter(Q(uuid__in=uuids) | here_now).select_related("host").order_by():
        if str(vm.uuid) in uuids:
            known[str(vm.uuid)] = vm
        if vm.host_id == host.pk and vm.power_state != PowerState.MISSING:
            here.add(vm.pk)
    disks = _rows_by_vm(VirtualDisk, "target", known.values())
    nics = _rows_by_vm(VirtualNic, "mac", known.values())
    new_disks, new_nics, seen, sightings = [], [], [], []
    for domain in domains:
        vm = known.get(domain.uuid.lower())
        if vm is None:
            vm = VirtualMachine(uuid=domain.uuid, name=domain.name)
        elif not _belongs_here(vm, host, domain):
            continue  # a leftover definition; the VM runs on the host the inventory names
        elif vm.host_id != host.pk and located_after(vm, read_at):
            continue  # it left this host while the host was being read
        was_here = vm.host_id == host.pk
        values = {
            "name": domain.name,
            "host_id": host.pk,
            "power_state": PowerState(domain.power),
            "vcpus": domain.vcpus,
            "memory_bytes": domain.memory_bytes,
            "cpu_mode": domain.cpu_mode,
            "cpu_model": domain.cpu_model,
            "cpu_features": _listed_or_none(domain.cpu_features),
            "cpu_pending_instance_id": restart_pending_after(vm.cpu_pending_instance_id, domain.instance_id, moved=vm.pk is not None and not was_here),
            "persistent": domain.persistent,
        }
        if vm.pk is None:
            for name, value in values.items():
                setattr(vm, name, value)
            vm.last_seen = now
            vm.save()
        else:
            _save_changes(vm, values)
        seen.append(vm.pk)
        sightings.append((vm, domain, was_here))
        new_disks += _apply_disks(vm, domain.disks, mounts, disks[vm.pk])
        new_nics += _apply_nics(vm, domain.nics, attachments, nics[vm.pk])
    # Disks and NICs keep no audit trail: a new VM's are written in one insert each.
    VirtualDisk.objects.bulk_create(new_disks)
    VirtualNic.objects.bulk_create(new_nics)
    # Seen now: a metric every sync rewrites, so one update for all and no audit entry.
    VirtualMachine.objects.filter(pk__in=seen).update(last_seen=now)
    _record_load(host, sightings, now)
    if here.difference(seen):  # read again: another host's sync may have just taken one over
        for vm in VirtualMachine.objects.filter(host=host).exclude(power_state=PowerState.MISSING).exclude(pk__in=seen):
            if str(vm.uuid) not in busy and not located_after(vm, read_at):  # else it arrived while the host was being read
                _save_changes(vm, {"power_state": PowerState.MISSING})


def _record_load(host: Host, sightings: list[tuple[VirtualMachine, DomainFacts, bool]], now) -> None:
    """Each running VM's CPU demand since the last sync, its memory in use and its last
    measured dirty rate on the VM; the first two also in its short history, where entries
    older than LOAD_HISTORY_MINUTES go. Metrics, so written in bulk and kept out of the
    audit trail."""
    measured, samples = [], []
    for vm, domain, was_here in sightings:
        if domain.cpu_time_ns is None:
            continue
        # After a move the counter starts again in the new QEMU process: measure from the next sync.
        cores = cpu_demand(vm.cpu_time_ns, vm.load_sampled_at, domain.cpu_time_ns, now) if was_here else None
        vm.cpu_cores_used = cores
        # A guest whose QEMU was busy reports no memory: its last reading stands.
        if domain.memory_in_use_bytes is not None or not was_here:
            vm.memory_in_use_bytes = domain.memory_in_use_bytes
        vm.cpu_time_ns, vm.load_sampled_at = domain.cpu_time_ns, now
        # Each sync reads one kind of measurement; the last of the other stands until it ages out.
        if domain.dirty_rate_bytes_s is not None:
            record_dirty_rate(vm, domain.dirty_rate_bytes_s, now)
        if domain.dirtied_in_window_bytes is not None:
            vm.dirtied_in_window_bytes, vm.dirtied_in_window_read_at = domain.dirtied_in_window_bytes, now
        measured.append(vm)
        if cores is not None:
            samples.append(VmLoadSample(vm=vm, host=host, at=now, cpu_cores_used=cores, memory_in_use_bytes=vm.memory_in_use_bytes))
    if measured:
        VirtualMachine.objects.bulk_update(measured, [
            "cpu_cores_used", "memory_in_use_bytes", "cpu_time_ns", "load_sampled_at",
            "dirty_rate_bytes_s", "dirty_rate_read_at", "dirty_rate_readings", "dirtied_in_window_bytes", "dirtied_in_window_read_at",
        ])
    VmLoadSample.objects.bulk_create(samples)
    VmLoadSample.objects.filter(host=host, at__lt=now - timedelta(minutes=settings.LOAD_HISTORY_MINUTES)).delete()


def cpu_demand(previous_ns: int | None, previous_at, current_ns: int, now) -> float | None:
    """Cores' worth of vCPU busy time per second between two samples; None without a usable
    earlier sample (none yet, or a counter that started again)."""
    if previous_ns is None or previous_at is None:
        return None
    seconds = (now - previous_at).total_seconds()
    if seconds <= 0 or current_ns < previous_ns:
        return None
    return round((current_ns - previous_ns) / 1e9 / seconds, 3)


# What a domain on another host than the VM's must be doing there to take the VM over.
CLAIMING_POWER_STATES = frozenset({PowerState.RUNNING, PowerState.PAUSED})


def _belongs_here(vm: VirtualMachine, host: Host, domain: DomainFacts) -> bool:
    """Whether this host's sighting of a VM the inventory knows decides where it is.

    A running (or paused) VM is where it runs. A shut-off definition on this host does not
    take a VM away from another host where it was last seen running and that has not said
    otherwise, and neither does a domain shutting down here: that is also what the source of
    a finished migration shows while its QEMU exits, the VM already running on the
    destination.
    """
    if vm.host_id in (None, host.pk) or PowerState(domain.power) in CLAIMING_POWER_STATES:
        return True
    if vm.power_state == PowerState.MISSING:
        return True
    return not (vm.is_active and vm.host is not None and vm.host.is_reachable)


def _apply_disks(vm: VirtualMachine, disks, mounts: list[DatastoreMount], existing: dict[str, VirtualDisk]) -> list[VirtualDisk]:
    """Updates the VM's disks and deletes those it lost; returns the new ones, unsaved."""
    wanted = (
        (facts.target, {
            "source": facts.source, "format": facts.format, "datastore_id": _datastore_for(facts, mounts),
            "capacity_bytes": facts.capacity_bytes, "allocation_bytes": facts.allocation_bytes,
        })
        for facts in disks
    )
    return _apply_rows(vm, VirtualDisk, "target", wanted, existing)


def _datastore_for(disk: DiskFacts, mounts: list[DatastoreMount]) -> int | None:
    if disk.pool:
        return next((m.datastore_id for m in mounts if m.pool_name == disk.pool), None)
    candidates = [m for m in mounts if m.target_path and disk.source.startswith(m.target_path.rstrip("/") + "/")]
    if not candidates:
        return None
    return max(candidates, key=lambda m: len(m.target_path)).datastore_id


def _apply_nics(vm: VirtualMachine, nics, attachments: list[NetworkAttachment], existing: dict[str, VirtualNic]) -> list[VirtualNic]:
    """Updates the VM's NICs and deletes those it lost; returns the new ones, unsaved."""
    wanted = ((facts.mac, {"network_id": _network_for(facts, attachments), "network_name": facts.network or facts.bridge, "model": facts.model}) for facts in nics)
    return _apply_rows(vm, VirtualNic, "mac", wanted, existing)


def _rows_by_vm(model, key: str, vms) -> defaultdict[int, dict]:
    """The rows of a VM's device table (disks, NICs) for all of `vms` in one query, by VM and
    then by the device's own key (a disk's target, a NIC's MAC)."""
    rows = defaultdict(dict)
    for row in model.objects.filter(vm__in=vms).order_by():
        rows[row.vm_id][getattr(row, key)] = row
    return rows


def _apply_rows(vm: VirtualMachine, model, key: str, wanted, existing: dict) -> list:
    """Brings the VM's rows of `model` to `wanted`, pairs of the device's key and its values:
    changed rows are saved, rows no longer wanted deleted; returns the new rows, unsaved.
    `existing` (the VM's rows by key, as `_rows_by_vm` read them) is used up."""
    new = []
    for key_value, values in wanted:
        row = existing.pop(key_value, None)
        if row is None:
            new.append(model(vm=vm, **{key: key_value}, **values))
        else:
            _save_changes(row, values)
    if existing:  # devices the definition no longer has
        model.objects.filter(pk__in=[row.pk for row in existing.values()]).delete()
    return new


def _network_for(nic: NicFacts, attachments: list[NetworkAttachment]) -> int | None:
    if nic.network:
        match = next((a for a in attachments if a.network.name == nic.network), None)
        if match:
            return match.network_id
        return Network.objects.filter(name=nic.network).values_list("pk", flat=True).first()
    if nic.bridge:
        match = next((a for a in attachments if a.bridge == nic.bridge), None)
        if match:
            return match.network_id
        network, _ = Network.objects.get_or_create(name=nic.bridge, defaults={"bridge": nic.bridge})
        return network.pk
    return None


def refresh_cluster_baseline(cluster: Cluster) -> None:
    """Recompute the cluster's CPU baseline when the set of member CPUs changed."""
    # Every host's job calls this: it reads only the members' CPUs until they changed.
    cpu_xmls = list(cluster.hosts.exclude(cpu_xml="").order_by("name").values_list("cpu_xml", flat=True))
    inputs = hashlib.sha256("\n".join(cpu_xmls).encode()).hexdigest()
    if not cpu_xmls or inputs == cluster.cpu_baseline_inputs:
        return
    members = list(cluster.hosts.exclude(cpu_xml="").order_by("name"))
    reachable = next((h for h in members if h.is_reachable), None)
    if reachable is None:
        return
    try:
        baseline = hypervisor_host.baseline_cpu(
            reachable.uri, [h.cpu_xml for h in members], settings.LIBVIRT_CALL_TIMEOUT_SECONDS
        )
    except HypervisorError as error:
        _save_changes(cluster, {"cpu_baseline_error": str(error)})
        return
    _save_changes(
        cluster,
        {
            "cpu_baseline_model": baseline.model,
            "cpu_baseline_xml": baseline.xml,
            "cpu_baseline_features": _listed_or_none(baseline.features),
            "cpu_baseline_error": "",
            "cpu_baseline_inputs": inputs,
            "cpu_baseline_updated": timezone.now(),
        },
    )


def _listed_or_none(features: tuple[str, ...] | None) -> list[str] | None:
    return list(features) if features is not None else None


def _save_changes(instance, values: dict) -> list[str]:
    """Assign what differs and save only those fields, so unchanged rows stay untouched.

    A change the audit trail records goes through save(), whose signal writes the entry
    (after reading the row back to compare); metrics that every sync rewrites, which it
    leaves out, are written by one UPDATE.
    """
    changed = [name for name, value in values.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, values[name])
    if any(_audited(type(instance), name) for name in changed):
        instance.save(update_fields=[name.removesuffix("_id") if name.endswith("_id") else name for name in changed])
    elif changed:
        type(instance)._base_manager.filter(pk=instance.pk).update(**{name: values[name] for name in changed})
    return changed


@cache
def _audited(model, name: str) -> bool:
    if not auditlog.contains(model):
        return False
    fields = auditlog.get_model_fields(model)
    name = model._meta.get_field(name).name  # datastore_id -> datastore
    return name not in fields["exclude_fields"] and (not fields["include_fields"] or name in fields["include_fields"])
