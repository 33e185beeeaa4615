"""Whether CPUs fit a cluster's CPU baseline (the EVC idea): pure judgements over what the
inventory holds (CPU modes, models, and libvirt's lists of their features), so the cluster
page, the host form and the command line judge alike without asking libvirt."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

NO_MODEL_NAMED = "Name a CPU model, for example Nehalem or Westmere."

# Guest CPU modes that take the CPU of whichever host the guest starts on.
HOST_CPU_MODES = frozenset({"host-passthrough", "host-model", "maximum"})


class Fit(StrEnum):
    FITS = "fits"  # runs on every host of the cluster
    EXCEEDS = "exceeds"  # asks for more than the baseline: some host may not offer it
    RESTART_PENDING = "restart_pending"  # defined with the baseline; the running instance still has its old CPU
    UNKNOWN = "unknown"  # libvirt could not say what its CPU or the baseline contains


@dataclass(frozen=True)
class Baseline:
    model: str  # empty until libvirt computed one
    features: frozenset[str] | None
    named: bool = False  # chosen by an administrator rather than computed from the hosts


@dataclass(frozen=True)
class HostCpu:
    name: str
    model: str
    features: frozenset[str] | None


@dataclass(frozen=True)
class VmCpu:
    name: str
    mode: str
    model: str
    features: frozenset[str] | None
    restart_pending: bool = False


@dataclass(frozen=True)
class VmVerdict:
    fit: Fit
    reason: str
    above_baseline: tuple[str, ...] = ()  # the features it asks for beyond the baseline


def judge_vm(vm: VmCpu, baseline: Baseline, hosts: Sequence[HostCpu]) -> VmVerdict:
    """Whether a VM's CPU definition lets it move to every host of its cluster."""
    verdict = _judge_definition(vm, baseline, hosts)
    if vm.restart_pending and verdict.fit == Fit.FITS:
        return VmVerdict(Fit.RESTART_PENDING, f"Its definition has {baseline.model or 'the baseline'} from its next boot; until it is powered off and started again it keeps its old CPU.")
    return verdict


def _judge_definition(vm: VmCpu, baseline: Baseline, hosts: Sequence[HostCpu]) -> VmVerdict:
    if vm.mode in HOST_CPU_MODES:
        if hosts_identical(hosts):
            return VmVerdict(Fit.FITS, f"It takes its host's own CPU ({vm.mode}), and every host of the cluster has the same one.")
        return VmVerdict(Fit.EXCEEDS, f"It takes its host's own CPU ({vm.mode}), and the hosts' CPUs differ: it can move only to a host with the same CPU.")
    if not vm.model:
        return VmVerdict(Fit.FITS, "It has the hypervisor's default CPU, which every host offers.")
    if vm.features is None:
        return VmVerdict(Fit.UNKNOWN, f"libvirt could not list the features of its CPU model {vm.model}.")
    if baseline.features is None:
        return VmVerdict(Fit.UNKNOWN, "The cluster has no CPU baseline yet.")
    above = tuple(sorted(vm.features - baseline.features))
    if above:
        return VmVerdict(Fit.EXCEEDS, f"{vm.model} asks for {listed(above)}, beyond the baseline {baseline.model}.", above)
    return VmVerdict(Fit.FITS, f"{vm.model} is within the baseline {baseline.model}.")


def hosts_identical(hosts: Sequence[HostCpu]) -> bool:
    """Whether a guest that takes its host's CPU finds the same CPU on every host."""
    if len(hosts) <= 1:
        return True
    if any(host.features is None for host in hosts):
        return False  # cannot tell: assume they differ
    return len({(host.model, host.features) for host in hosts}) == 1


def join_refusal(host: HostCpu, cluster: str, baseline: Baseline) -> str | None:
    """Why a host may not join a cluster (its CPU lacks some of the baseline), or None."""
    if baseline.features is None:
        return None  # nothing to hold it to yet: the first hosts make the baseline
    if host.features is None:
        return f"vmotion could not read the CPU features of {host.name}, so it cannot tell whether it offers {cluster}'s CPU baseline {baseline.model}."
    missing = tuple(sorted(baseline.features - host.features))
    if not missing:
        return None
    return (
        f"{host.name} cannot join {cluster}: its CPU ({host.model or 'unknown model'}) lacks {listed(missing)}, "
        f"which {cluster}'s CPU baseline {baseline.model} includes. To admit it, first set the cluster's baseline to an older CPU model that {host.name} offers."
    )


def named_model_refusal(model: str, arch: str, known_models: Sequence[str], features: frozenset[str] | None, hosts: Sequence[HostCpu]) -> str | None:
    """Why an administrator's choice of CPU model cannot be the cluster's baseline, or None."""
    if not model:
        return NO_MODEL_NAMED
    if model not in known_models:
        close = difflib.get_close_matches(model, known_models, n=3)
        hint = f" Did you mean {' or '.join(close)}?" if close else f" It knows {listed(sorted(known_models), shown=8)}."
        return f"libvirt knows no CPU model named {model!r} for {arch}.{hint}"
    if features is None:
        return f"libvirt could not list the features of {model}."
    problems = []
    for host in hosts:
        if host.features is None:
            problems.append(f"vmotion has not read the CPU features of {host.name} yet (sync it first)")
        elif missing := tuple(sorted(features - host.features)):
            problems.append(f"{host.name} cannot offer it: its CPU lacks {listed(missing)}")
    if problems:
        return f"{model} cannot be the baseline: {'; '.join(problems)}."
    return None


def restart_pending_after(pending_instance: int | None, instance_id: int | None, moved: bool) -> int | None:
    """The running instance that still has its CPU from before the baseline was set, after a sync.

    A new instance on the same host (powered off and started again) has the new CPU; a
    migration carries the running CPU along, so the instance on the new host still waits.
    """
    if pending_instance is None or instance_id is None:
        return None
    if moved:
        return instance_id
    return pending_instance if instance_id == pending_instance else None


def listed(names: Iterable[str], shown: int = 12) -> str:
    names = list(names)
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
