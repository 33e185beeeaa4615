"""`vmotion rules list|add|delete|fix --cluster CLUSTER`: a cluster's affinity rules."""

from core.roles import Role
from inventory.models import Cluster
from migrations_app import services
from migrations_app.affinity import store as affinity_rules
from migrations_app.automation import rule_fixes
from migrations_app.choices import RuleKind, RuleStrength
from migrations_app.models import AffinityRule

from .lookups import acting_as, acting_user, find_cluster
from .output import Output


def register(commands, json_option) -> None:
    rules_parser = commands.add_parser("rules", help="a cluster's affinity rules: list, add, delete, fix")
    rule_commands = rules_parser.add_subparsers(dest="rules_command", required=True)
    list_parser = rule_commands.add_parser("list", parents=[json_option], help="the rules, the stale ones and what breaks them now")
    list_parser.add_argument("--cluster", required=True, help="cluster name")
    list_parser.set_defaults(handler=list_rules)
    add_parser = rule_commands.add_parser("add", parents=[json_option], help="a rule: VMs kept together, kept apart, or run on some hosts")
    add_parser.add_argument("name", help="rule name, unique in the cluster")
    add_parser.add_argument("--kind", required=True, choices=RuleKind.values)
    add_parser.add_argument("--should", action="store_true", help="weigh against breaking it instead of blocking (a must rule by default)")
    add_parser.add_argument("--vm", action="append", required=True, dest="vms", help="a VM of the rule (repeat)")
    add_parser.add_argument("--host", action="append", default=[], dest="hosts", help="with --kind on_hosts: a host the VMs may run on (repeat)")
    add_parser.set_defaults(handler=add)
    delete_parser = rule_commands.add_parser("delete", parents=[json_option], help="delete a rule")
    delete_parser.set_defaults(handler=delete)
    fix_parser = rule_commands.add_parser("fix", parents=[json_option], help="submit the moves that end a rule's violation")
    fix_parser.set_defaults(handler=fix)
    for each in (add_parser, delete_parser, fix_parser):
        each.add_argument("--cluster", required=True, help="cluster name")
        if each is not add_parser:
            each.add_argument("name", help="rule name")
        each.add_argument("--user", help="record it as done by this vmotion user (an Administrator; an Operator for fix)")


def list_rules(out: Output, cluster, **_):
    found = find_cluster(out, cluster)
    statuses = affinity_rules.cluster_rules(found)
    for status in statuses:
        stale = f" [stale: {', '.join(status.stale)} gone]" if status.stale else ""
        now = f"VIOLATED: {status.violation.message}" if status.violation else "holds"
        out.say(f"  {status.rule.name:<20} {status.facts.describe()}{stale}: {now}")
    if not statuses:
        out.say(f"cluster {found.name} has no affinity rule")
    out.result({"cluster": found.name, "rules": [_rule_fields(status) for status in statuses]})


def add(out: Output, cluster, name, kind, should, vms, hosts, user, **_):
    found = find_cluster(out, cluster)
    actor = acting_user(user, Role.ADMINISTRATOR)
    machines = [services.find_vm(vm) for vm in vms]
    targets = [services.find_host(host) for host in hosts]
    with acting_as(actor):
        rule = affinity_rules.add_rule(found, name, kind, RuleStrength.SHOULD if should else RuleStrength.MUST, machines, targets, created_by=actor)
    out.say(f"rule {rule.name!r} added: {affinity_rules.facts_of(rule).describe()}")
    out.result({"cluster": found.name, "rule": rule.name, "kind": rule.kind, "strength": rule.strength})


def delete(out: Output, cluster, name, user, **_):
    found = find_cluster(out, cluster)
    actor = acting_user(user, Role.ADMINISTRATOR)
    with acting_as(actor):
        out.say(affinity_rules.delete_rule(_find_rule(out, found, name)))
    out.result({"cluster": found.name, "deleted": name})


def fix(out: Output, cluster, name, user, **_):
    found = find_cluster(out, cluster)
    rule = _find_rule(out, found, name)
    status = affinity_rules.status_of(rule)
    tasks = []
    if status.violation is None:
        out.say(f"rule {rule.name!r} holds: nothing to fix")
    else:
        requester = acting_user(user, Role.OPERATOR)
        _, tasks = rule_fixes.apply_fix(status.violation, requested_by=requester)
        for task in tasks:
            out.say(f"task #{task.pk} queued: {task.vm.name} {task.source.name} -> {task.destination.name}")
    out.result({"cluster": found.name, "rule": rule.name, "tasks": [task.pk for task in tasks]})


def _find_rule(out: Output, cluster: Cluster, name: str) -> AffinityRule:
    rule = AffinityRule.objects.filter(cluster=cluster, name=name).first()
    if rule is None:
        known = ", ".join(AffinityRule.objects.filter(cluster=cluster).values_list("name", flat=True)) or "none"
        out.fail(f"Cluster {cluster.name} has no rule named {name!r}; its rules: {known}.")
    return rule


def _rule_fields(status) -> dict:
    return {
        "rule": status.rule.name, "kind": status.rule.kind, "strength": status.rule.strength, "describe": status.facts.describe(),
        "stale": list(status.stale), "violation": status.violation.message if status.violation else None,
    }
