"""The migration assistant's ranking: every candidate host for a VM, with a score and the
reasons behind it, and each host that cannot take the VM listed with the failing check's
sentence. Pure: plain facts in, a ranking out; no database, no libvirt, no views. Pages,
the CLI, maintenance plans and balancing all rank through `rank`.

The score (0-100, higher is better) weighs what an operator weighs: memory left after the
move, CPU load, migrations already running to and from the host, and the same cluster as
the VM (its CPU baseline, so the CPU check at submission will pass). A host where the VM would
break a "must" affinity rule is blocked with the rule named; a "should" rule it would break
costs points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from migrations_app.checks import rules
from migrations_app.affinity.rules import RuleFacts, breaches
from migrations_app.checks.report import CheckResult, CheckStatus
from migrations_app.convergence.policy import GIB


@dataclass(frozen=True)
class VmFacts:
    name: str
    memory_bytes: int
    host_id: int | None
    host_name: str
    cluster_id: int | None
    runs: CheckResult  # whether it runs where it can be moved from
    disks: tuple[rules.DiskOnDatastore, ...] = ()
    nics: tuple[rules.NicOnNetwork, ...] = ()
    id: int | None = None
    rules: tuple[RuleFacts, ...] = ()  # the affinity rules naming it
    migration_tls: bool = False  # its host has migration certificates
    encryption: tuple[str, str] | None = None  # its host's cluster's migration encryption, and whose


@dataclass(frozen=True)
class HostFacts:
    id: int
    name: str
    reachable: bool
    last_error: str
    in_maintenance: bool
    state_label: str
    cluster_id: int | None
    cluster_name: str
    cpu_baseline: str
    memory_total_bytes: int
    memory_free_bytes: int
    cpu_utilisation: float | None  # % busy at the last sync; None until two syncs
    datastores: frozenset[int]  # the datastores it mounts
    networks: frozenset[int]  # the networks present on it
    incoming_memory_bytes: int = 0  # memory of VMs on their way here
    incoming: int = 0  # migrations queued or running to it
    outgoing: int = 0  # migrations queued or running from it
    migration_tls: bool = False  # it has migration certificates
    encryption: tuple[str, str] | None = None  # its cluster's migration encryption, and whose
    copy_store: rules.CopyStore | None = None  # where a move copies disks it cannot read, unless chosen


@dataclass(frozen=True)
class Weights:
    memory: float = 50  # all of it for a host whose memory would stay entirely free
    cpu: float = 30  # all of it for an idle host
    quiet: float = 10  # all of it for a host no migration uses...
    per_migration: float = 5  # ...less this for each migration to or from it
    same_cluster: float = 10
    should_rule: float = 40  # taken off for each "should" rule the move would break
    disk_copy: float = 20  # taken off a host the VM's disks must be copied to: the copy costs time and both hosts' disks


WEIGHTS = Weights()


@dataclass(frozen=True)
class Placement:
    host: HostFacts
    score: float
    reasons: tuple[str, ...]
    blocked_by: CheckResult | None  # the first check the host fails; None when it can take the VM
    soft_breaches: tuple[str, ...] = ()  # the "should" rules the move would break

    @property
    def eligible(self) -> bool:
        return self.blocked_by is None


NOWHERE: Mapping[int, int] = {}


def rank(vm: VmFacts, hosts: list[HostFacts], reserve_bytes: int, weights: Weights = WEIGHTS, where: Mapping[int, int] = NOWHERE) -> list[Placement]:
    """Every host but the VM's own: those that can take it first, best score first. `where`
    holds the host of each VM the VM's affinity rules name (see `affinity`)."""
    placements = [place(vm, host, reserve_bytes, weights, where) for host in hosts if host.id != vm.host_id]
    return sorted(placements, key=ranking_order)


def ranking_order(placement: Placement) -> tuple:
    """Those that can take the VM first, best score first; then by name."""
    return (not placement.eligible, -placement.score, placement.host.name)


def place(vm: VmFacts, host: HostFacts, reserve_bytes: int, weights: Weights = WEIGHTS, where: Mapping[int, int] = NOWHERE) -> Placement:
    blocked_by = _first_failure(vm, host, reserve_bytes)
    points, reasons = zip(_memory(vm, host, weights), _cpu(host, weights), _traffic(host, weights), _cluster(vm, host, weights))
    score = 0.0 if blocked_by else round(sum(points), 1)
    copied = rules.copies_disks(vm.disks, host.datastores) if blocked_by is None and vm.disks else 0
    if copied:
        score = round(max(score - weights.disk_copy, 0.0), 1)
        reasons += (f"its disks are copied ({copied / GIB:.1f} GiB) to {host.copy_store.name}",)
    soft: tuple[str, ...] = ()
    if vm.rules and blocked_by is None:
        broken = breaches(vm.id, host.id, host.name, vm.rules, where)
        hard = [breach for breach in broken if breach.rule.must]
        if hard:
            blocked_by, score = rules.affinity(hard[0].message, must=True), 0.0
        else:
            soft = tuple(breach.message for breach in broken)
            score = round(max(score - weights.should_rule * len(soft), 0.0), 1)
            reasons += tuple(f"breaks {message}" for message in soft)
    return Placement(host, score, reasons, blocked_by, soft)


def checks(vm: VmFacts, host: HostFacts, reserve_bytes: int, where: Mapping[int, int] = NOWHERE) -> list[CheckResult]:
    """The pre-flight checks that can be judged from the inventory alone; libvirt's CPU
    comparison runs when the migration is submitted."""
    return [
        vm.runs,
        rules.host_connected(host.name, "destination", host.reachable, host.last_error),
        rules.destination_open(host.name, host.in_maintenance, host.state_label),
        rules.storage_reachable(vm.host_name, host.name, vm.disks, host.datastores, host.copy_store),
        rules.networks_present(host.name, vm.nics, host.networks),
        rules.memory_free(host.name, host.memory_free_bytes, host.incoming_memory_bytes, vm.memory_bytes, reserve_bytes),
        _encryption(vm, host),
        rules.affinity_kept(host.name, breaches(vm.id, host.id, host.name, vm.rules, where) if vm.rules else []),
    ]


# The checks in the order `place` judges them (affinity is judged last, by `place`).
CHECK_ORDER = ("vm_runs", "destination_connected", "destination_open", "storage_shared", "networks_present", "memory_free", "encryption", "affinity")


def _first_failure(vm: VmFacts, host: HostFacts, reserve_bytes: int) -> CheckResult | None:
    """The first of `checks` that fails, judged in the same order, with only its sentence
    written: ranking thousands of hosts would otherwise spend most of its time writing
    sentences that no one reads."""
    if vm.runs.status == CheckStatus.FAIL:
        return vm.runs
    if not host.reachable:
        return rules.host_connected(host.name, "destination", host.reachable, host.last_error)
    if host.in_maintenance:
        return rules.destination_open(host.name, host.in_maintenance, host.state_label)
    if rules.disks_out_of_reach(vm.disks, host.datastores):
        storage = rules.storage_reachable(vm.host_name, host.name, vm.disks, host.datastores, host.copy_store)
        if storage.status == CheckStatus.FAIL:
            return storage
    if rules.missing_networks(vm.nics, host.networks):
        return rules.networks_present(host.name, vm.nics, host.networks)
    if not rules.memory_fits(host.memory_free_bytes, host.incoming_memory_bytes, vm.memory_bytes, reserve_bytes):
        return rules.memory_free(host.name, host.memory_free_bytes, host.incoming_memory_bytes, vm.memory_bytes, reserve_bytes)
    if not (vm.migration_tls and host.migration_tls) and _encryption_mode(vm, host)[0] != rules.MigrationEncryption.OFF:
        encryption = _encryption(vm, host)
        return encryption if encryption.status == CheckStatus.FAIL else None
    return None


def _encryption_mode(vm: VmFacts, host: HostFacts) -> tuple[str, str]:
    return rules.strictest_encryption((vm.encryption, host.encryption))


def _encryption(vm: VmFacts, host: HostFacts) -> CheckResult:
    ends = rules.HostTls(vm.host_name, "source", vm.migration_tls), rules.HostTls(host.name, "destination", host.migration_tls)
    return rules.encryption(*_encryption_mode(vm, host), *ends)


def _memory(vm: VmFacts, host: HostFacts, weights: Weights) -> tuple[float, str]:
    left = host.memory_free_bytes - host.incoming_memory_bytes - vm.memory_bytes
    share = min(max(left / host.memory_total_bytes, 0.0), 1.0) if host.memory_total_bytes else 0.0
    return weights.memory * share, f"{left / GIB:.1f} GiB free after the move ({share:.0%} of {host.memory_total_bytes / GIB:.0f} GiB)"


def _cpu(host: HostFacts, weights: Weights) -> tuple[float, str]:
    if host.cpu_utilisation is None:
        return weights.cpu / 2, "CPU load not measured yet"
    busy = min(max(host.cpu_utilisation, 0.0), 100.0)
    return weights.cpu * (100 - busy) / 100, f"CPU {busy:.0f}% busy"


def _traffic(host: HostFacts, weights: Weights) -> tuple[float, str]:
    running = host.incoming + host.outgoing
    points = max(weights.quiet - weights.per_migration * running, 0.0)
    if not running:
        return points, "no migration to or from it"
    return points, f"{host.incoming} migration{'s' if host.incoming != 1 else ''} on the way in, {host.outgoing} out"


def _cluster(vm: VmFacts, host: HostFacts, weights: Weights) -> tuple[float, str]:
    if vm.cluster_id is not None and host.cluster_id == vm.cluster_id:
        baseline = f", CPU baseline {host.cpu_baseline}" if host.cpu_baseline else ""
        return weights.same_cluster, f"same cluster {host.cluster_name}{baseline}"
    where = f"cluster {host.cluster_name}" if host.cluster_name else "no cluster"
    return 0.0, f"{where}, not the VM's: libvirt compares CPUs when you submit"
