"""Affinity rules in the inventory: the facts `affinity` and `placement` judge, read in a fixed
number of queries; making a rule (refused, with the reason, when it could never hold) and
deleting one; a cluster's rules with what is stale and what is broken now."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction

from inventory.choices import ACTIVE_POWER_STATES, PowerState
from inventory.models import Cluster, Host, VirtualMachine

from migrations_app.affinity.rules import RuleFacts, Violation, contradictions, violations
from migrations_app.choices import ACTIVE_STATES, RuleKind, RuleStrength
from migrations_app.errors import MigrationRequestError
from migrations_app.models import AffinityRule, AffinityRuleHost, AffinityRuleVm, MigrationTask


class RuleRefused(MigrationRequestError):
    """A rule that is malformed or could never hold; nothing was saved."""


def facts_of(rule: AffinityRule) -> RuleFacts:
    """The rule as `affinity` judges it: its members still in the inventory (prefetched)."""
    members = tuple((m.vm_id, m.vm_name) for m in rule.members.all() if m.vm_id is not None)
    hosts = tuple((h.host_id, h.host_name) for h in rule.hosts.all() if h.host_id is not None)
    return RuleFacts(id=rule.pk, name=rule.name, kind=rule.kind, must=rule.must, vms=members, hosts=hosts)


def rules_by_vm(vm_ids: Iterable[int]) -> dict[int, tuple[RuleFacts, ...]]:
    """Each VM's rules, for all of them in two queries."""
    rules = AffinityRule.objects.filter(members__vm_id__in=list(vm_ids)).distinct().prefetch_related("members", "hosts")
    by_vm: dict[int, list[RuleFacts]] = defaultdict(list)
    for rule in rules:
        facts = facts_of(rule)
        for vm_id in facts.vm_ids:
            by_vm[vm_id].append(facts)
    return {vm_id: tuple(found) for vm_id, found in by_vm.items()}


def where_they_run(rules: Iterable[RuleFacts], overrides: Mapping[int, int] | None = None) -> dict[int, int]:
    """The host of each running VM the rules name: the destination of its migration under way,
    else where it runs; `overrides` (VM id to host id) are moves about to be submitted."""
    ids = {vm_id for rule in rules for vm_id in rule.vm_ids}
    if not ids:
        return dict(overrides or {})
    where = dict(VirtualMachine.objects.filter(pk__in=ids, power_state__in=ACTIVE_POWER_STATES, host__isnull=False).values_list("pk", "host_id"))
    heading = MigrationTask.objects.filter(vm_id__in=ids, state__in=ACTIVE_STATES).values_list("vm_id", "destination_id")
    where.update(heading)
    where.update(overrides or {})
    return where


def add_rule(
    cluster: Cluster, name: str, kind: str, strength: str, vms: Sequence[VirtualMachine], hosts: Sequence[Host] = (), *, created_by=None
) -> AffinityRule:
    """Save a rule, or refuse it with every reason it is malformed or could never hold."""
    name = name.strip()
    problems = _malformed(cluster, name, kind, strength, vms, hosts)
    if not problems:
        members = tuple((vm.pk, vm.name) for vm in vms)
        candidate = RuleFacts(id=0, name=name, kind=kind, must=strength == RuleStrength.MUST, vms=members, hosts=tuple((h.pk, h.name) for h in hosts))
        existing = [facts_of(rule) for rule in AffinityRule.objects.filter(cluster=cluster).prefetch_related("members", "hosts")]
        problems = contradictions(candidate, existing, Host.objects.filter(cluster=cluster).count())
    if problems:
        raise RuleRefused(" ".join(problems))
    with transaction.atomic():
        rule = AffinityRule.objects.create(cluster=cluster, name=name, kind=kind, strength=strength, created_by=created_by)
        AffinityRuleVm.objects.bulk_create([AffinityRuleVm(rule=rule, vm=vm, vm_name=vm.name) for vm in vms])
        AffinityRuleHost.objects.bulk_create([AffinityRuleHost(rule=rule, host=host, host_name=host.name) for host in hosts])
    return rule


def _malformed(cluster, name, kind, strength, vms, hosts) -> list[str]:
    problems = []
    if not name:
        problems.append("A rule needs a name.")
    elif AffinityRule.objects.filter(cluster=cluster, name=name).exists():
        problems.append(f"Cluster {cluster.name} already has a rule named {name!r}.")
    if kind not in RuleKind.values:
        problems.append(f"{kind!r} is not a kind of rule: use {', '.join(RuleKind.values)}.")
    if strength not in RuleStrength.values:
        problems.append(f"{strength!r} is not a strength: use must or should.")
    if len({vm.pk for vm in vms}) != len(vms):
        problems.append("A VM is named twice.")
    needed = 1 if kind == RuleKind.ON_HOSTS else 2
    if len(vms) < needed:
        problems.append(f"This kind of rule names at least {needed} VM{'s' if needed > 1 else ''}.")
    outside = [vm.name for vm in vms if vm.host is None or vm.host.cluster_id != cluster.pk]
    if outside:
        problems.append(f"{', '.join(outside)} {'does' if len(outside) == 1 else 'do'} not run in cluster {cluster.name}.")
    if kind == RuleKind.ON_HOSTS:
        if not hosts:
            problems.append("A rule that runs VMs on hosts names at least one host.")
        strangers = [host.name for host in hosts if host.cluster_id != cluster.pk]
        if strangers:
            problems.append(f"{', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} outside cluster {cluster.name}: a VM cannot be bound to a host outside its cluster.")
    elif hosts:
        problems.append("Only a rule that runs VMs on hosts names hosts.")
    return problems


def delete_rule(rule: AffinityRule) -> str:
    name = rule.name
    rule.delete()
    return f"Rule {name!r} deleted."


@dataclass(frozen=True)
class RuleStatus:
    rule: AffinityRule
    facts: RuleFacts
    stale: tuple[str, ...]  # names of the VMs and hosts it names that are gone
    violation: Violation | None


def status_of(rule: AffinityRule) -> RuleStatus:
    """One rule's status, judged among its cluster's rules as the cluster page shows it."""
    return next(status for status in cluster_rules(rule.cluster) if status.rule.pk == rule.pk)


def cluster_rules(cluster: Cluster) -> list[RuleStatus]:
    """Every rule of the cluster, with the members gone from the inventory and what breaks it now."""
    rules = list(AffinityRule.objects.filter(cluster=cluster).prefetch_related("members__vm", "hosts"))
    facts = [facts_of(rule) for rule in rules]
    where = where_they_run(facts)
    names = dict(Host.objects.filter(pk__in=set(where.values())).values_list("pk", "name"))
    broken = {violation.rule.id: violation for violation in violations(facts, where, names)}
    statuses = []
    for rule, fact in zip(rules, facts):
        gone = [m.vm_name for m in rule.members.all() if m.vm is None or m.vm.power_state == PowerState.MISSING]
        gone += [h.host_name for h in rule.hosts.all() if h.host_id is None]
        statuses.append(RuleStatus(rule, fact, tuple(gone), broken.get(rule.pk)))
    return statuses
