"""Affinity rules as pure functions of plain facts: whether a VM on a host breaks a rule, what
breaks the rules now, and which new rule contradicts the existing ones.

Three kinds: VMs kept together on one host, VMs kept apart on different hosts, and VMs run
only on some hosts. A "must" rule blocks a move that would break it; a "should" rule only
costs the move points, and balancing never breaks one. Where each VM is (`where`, VM id to
host id) is where it runs or the destination of its move under way or planned: a VM absent
from it is yet to be placed, so it constrains no one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class RuleKind(StrEnum):
    """The values of `choices.RuleKind`, mirrored here so that the rules need no Django (a test
    keeps the two equal)."""

    TOGETHER = "together"
    APART = "apart"
    ON_HOSTS = "on_hosts"


@dataclass(frozen=True)
class RuleFacts:
    id: int
    name: str
    kind: str
    must: bool
    vms: tuple[tuple[int, str], ...]  # (id, name) of the members still in the inventory
    hosts: tuple[tuple[int, str], ...] = ()  # (id, name): where ON_HOSTS members may run

    @property
    def vm_ids(self) -> frozenset[int]:
        return frozenset(id for id, _ in self.vms)

    @property
    def host_ids(self) -> frozenset[int]:
        return frozenset(id for id, _ in self.hosts)

    def describe(self) -> str:
        verb = "must" if self.must else "should"
        names = ", ".join(name for _, name in self.vms)
        if self.kind == RuleKind.TOGETHER:
            return f"{names} {verb} run on one host"
        if self.kind == RuleKind.APART:
            return f"{names} {verb} run on different hosts"
        return f"{names} {verb} run on {', '.join(name for _, name in self.hosts)}"


@dataclass(frozen=True)
class Breach:
    rule: RuleFacts
    message: str


def breaches(vm_id: int, host_id: int, host_name: str, rules: Sequence[RuleFacts], where: Mapping[int, int]) -> list[Breach]:
    """The rules `vm_id` would break on host `host_id`, each with a sentence naming it."""
    found = []
    for rule in rules:
        if vm_id not in rule.vm_ids:
            continue
        others = [(id, name) for id, name in rule.vms if id != vm_id and id in where]
        if rule.kind == RuleKind.ON_HOSTS:
            if host_id not in rule.host_ids:
                found.append(Breach(rule, f"rule {rule.name!r} ({rule.describe()}): {host_name} is not one of them"))
        elif rule.kind == RuleKind.APART:
            there = [name for id, name in others if where[id] == host_id]
            if there:
                found.append(Breach(rule, f"rule {rule.name!r} ({rule.describe()}): {', '.join(there)} already on {host_name}"))
        elif rule.kind == RuleKind.TOGETHER:
            away = [name for id, name in others if where[id] != host_id]
            if away:
                found.append(Breach(rule, f"rule {rule.name!r} ({rule.describe()}): {', '.join(away)} not on {host_name}"))
    return found


@dataclass(frozen=True)
class Violation:
    rule: RuleFacts
    message: str
    misplaced: tuple[int, ...]  # the VMs whose moves would end it


def violations(rules: Sequence[RuleFacts], where: Mapping[int, int], host_names: Mapping[int, str]) -> list[Violation]:
    """The rules broken now, each with the VMs to move to end the breach."""
    found = []
    for rule in rules:
        placed = [(id, name) for id, name in rule.vms if id in where]
        if rule.kind == RuleKind.ON_HOSTS:
            outside = [(id, name) for id, name in placed if where[id] not in rule.host_ids]
            if outside:
                names = ", ".join(f"{name} on {host_names.get(where[id], '?')}" for id, name in outside)
                found.append(Violation(rule, f"{names}: outside the rule's hosts", tuple(id for id, _ in outside)))
            continue
        by_host: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for id, name in placed:
            by_host[where[id]].append((id, name))
        if rule.kind == RuleKind.APART:
            crowded = {host: members for host, members in by_host.items() if len(members) > 1}
            if crowded:
                names = "; ".join(f"{', '.join(n for _, n in members)} on {host_names.get(host, '?')}" for host, members in crowded.items())
                # Every member but the first on a crowded host has to go.
                extra = tuple(id for members in crowded.values() for id, _ in members[1:])
                found.append(Violation(rule, f"{names}: together on one host", extra))
        elif rule.kind == RuleKind.TOGETHER and len(by_host) > 1:
            # Those away from the host holding most members (the lowest id on a tie) have to go.
            home = max(sorted(by_host), key=lambda host: len(by_host[host]))
            strays = tuple(id for host, members in by_host.items() if host != home for id, _ in members)
            names = "; ".join(f"{', '.join(n for _, n in members)} on {host_names.get(host, '?')}" for host, members in by_host.items())
            found.append(Violation(rule, f"split over {len(by_host)} hosts: {names}", strays))
    return found


def contradictions(rule: RuleFacts, existing: Sequence[RuleFacts], host_count: int | None = None) -> list[str]:
    """Why `rule` could never hold beside the `existing` "must" rules, or on its own."""
    problems = []
    if not rule.must:
        return problems
    if rule.kind == RuleKind.APART and host_count is not None and len(rule.vms) > host_count:
        problems.append(f"{len(rule.vms)} VMs cannot run on different hosts in a cluster of {host_count} host{'s' if host_count != 1 else ''}.")
    for other in existing:
        if not other.must or other.id == rule.id:
            continue
        shared = rule.vm_ids & other.vm_ids
        if {rule.kind, other.kind} == {RuleKind.TOGETHER, RuleKind.APART} and len(shared) >= 2:
            names = ", ".join(name for id, name in rule.vms if id in shared)
            problems.append(f"Rule {other.name!r} must keep {names} {'apart' if other.kind == RuleKind.APART else 'together'}: they cannot also be kept {'together' if rule.kind == RuleKind.TOGETHER else 'apart'}.")
        if rule.kind == other.kind == RuleKind.ON_HOSTS and shared and not rule.host_ids & other.host_ids:
            names = ", ".join(name for id, name in rule.vms if id in shared)
            problems.append(f"Rule {other.name!r} must run {names} on other hosts ({', '.join(n for _, n in other.hosts)}), none of them among these.")
    return problems
