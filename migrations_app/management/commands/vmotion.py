import argparse
import json
import time
from contextlib import nullcontext
from datetime import datetime

from auditlog.context import set_actor
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.roles import Role
from hypervisor.uris import redact
from inventory import cpu_baseline
from inventory import degradation
from inventory import bandwidth_budget, encryption, registration
from inventory.choices import ClusterCpuMode
from inventory.models import Cluster
from migrations_app import services
from migrations_app.affinity import store as affinity_rules
from migrations_app.placement import store as assistant
from migrations_app.automation import balancing as balance
from migrations_app.automation import maintenance
from migrations_app.automation import recurrence
from migrations_app.automation import rule_fixes
from migrations_app.automation import schedules
from migrations_app.automation import evacuation as evacuation_steps
from migrations_app.checks.report import CheckReport
from migrations_app.choices import EvacuationState, Priority, RecurrenceKind, RuleKind, RuleStrength, ScheduleAction, TaskState
from migrations_app.models import AffinityRule, Evacuation, MigrationTask, Schedule
from migrations_app.options import DEFAULT_MAX_DOWNTIME_MS
from migrations_app.cli.presenters import task_summary

PRIORITIES = {priority.label.lower(): priority for priority in Priority}


class Command(BaseCommand):
    help = "Live migration from the command line: migrate, check, recommend, tasks, show, cancel, force-complete, maintenance, host (add, uri, degrade...), schedule, balance, rules, cluster cpu, cluster encryption, cluster bandwidth."

    def add_arguments(self, parser):
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--json", action="store_true", help="end with one JSON line, also when the command fails")
        commands = parser.add_subparsers(dest="command", required=True)
        migrate = commands.add_parser("migrate", parents=[common], help="move a running VM to another host")
        migrate.add_argument("vm", help="VM name or UUID")
        migrate.add_argument("--to", required=True, dest="destination", help="destination host")
        migrate.add_argument("--priority", choices=PRIORITIES, default=Priority.NORMAL.label.lower())
        migrate.add_argument(
            "--max-downtime", type=int, default=DEFAULT_MAX_DOWNTIME_MS,
            help=f"longest final pause you accept, ms (default {DEFAULT_MAX_DOWNTIME_MS})",
        )
        migrate.add_argument("--bandwidth", type=int, help="cap in MiB/s (default uncapped)")
        migrate.add_argument("--post-copy", action="store_true", help="allow switching to post-copy")
        migrate.add_argument("--no-auto-converge", action="store_true", help="never throttle the guest's vCPUs")
        migrate.add_argument("--reason", default="")
        migrate.add_argument("--user", help="record the migration as requested by this vmotion user (an Operator)")
        migrate.add_argument("--wait", action="store_true", help="follow the task until it ends")
        check = commands.add_parser("check", parents=[common], help="run the pre-flight checks only")
        check.add_argument("vm")
        check.add_argument("--to", required=True, dest="destination")
        recommend = commands.add_parser("recommend", parents=[common], help="rank every host for a VM, with the reasons")
        recommend.add_argument("vm", help="VM name or UUID")
        tasks = commands.add_parser("tasks", parents=[common], help="recent migration tasks")
        tasks.add_argument("--limit", type=int, default=20)
        for name in ("cancel", "force-complete", "show"):
            commands.add_parser(name, parents=[common]).add_argument("task_id", type=int)
        maintenance = commands.add_parser("maintenance", parents=[common], help="plan, enter, abort or exit a host's maintenance")
        maintenance.add_argument("action", choices=["plan", "enter", "abort", "exit"])
        maintenance.add_argument("host", help="host name")
        maintenance.add_argument("--user", help="record it as done by this vmotion user (an Administrator)")
        maintenance.add_argument("--wait", action="store_true", help="with enter: follow the evacuation until it ends")
        host_parser = commands.add_parser("host", help="mark a failing host degraded, or restore it; declare its migration certificates; its bandwidth budget")
        host_commands = host_parser.add_subparsers(dest="host_command", required=True)
        degrade = host_commands.add_parser("degrade", parents=[common], help="mark a host degraded; its cluster's proactive policy decides what follows")
        degrade.add_argument("host", help="host name")
        degrade.add_argument("--reason", required=True, help="why it is failing, for the pages and the audit trail")
        restore = host_commands.add_parser("restore", parents=[common], help="clear a host's degraded mark")
        restore.add_argument("host", help="host name")
        migration_tls = host_commands.add_parser("migration-tls", parents=[common], help="declare whether the host's QEMU has migration certificates")
        migration_tls.add_argument("host", help="host name")
        migration_tls.add_argument("has", choices=["yes", "no"], help="yes: migrate_tls_x509_cert_dir in its qemu.conf holds them")
        host_bandwidth = host_commands.add_parser("bandwidth", parents=[common], help="the migration bandwidth budget: show it, or set it in MiB/s or to none")
        host_bandwidth.add_argument("host", help="host name")
        host_bandwidth.add_argument("budget", nargs="?", help="MiB/s each way, shared by its migrations by priority; none: its cluster's")
        host_add = host_commands.add_parser("add", parents=[common], help="add a host by its libvirt URI (README: which URIs are accepted)")
        host_add.add_argument("host", help="host name")
        host_add.add_argument("uri", help="how vmotion reaches its libvirt, e.g. qemu+ssh://root@kvm1/system")
        host_add.add_argument("--migration-uri", default="", help="how the other hosts' libvirt reaches it; default: the libvirt URI")
        host_uri = host_commands.add_parser("uri", parents=[common], help="change how vmotion reaches a host, or how other hosts reach it for migration")
        host_uri.add_argument("host", help="host name")
        host_uri.add_argument("uri", nargs="?", help="the new libvirt URI; left out: unchanged")
        host_uri.add_argument("--migration-uri", help="the new migration URI; an empty string: the libvirt URI")
        for each in (degrade, restore, migration_tls, host_bandwidth, host_add, host_uri):
            each.add_argument("--user", help="record it as done by this vmotion user (an Administrator)")
        balance_parser = commands.add_parser("balance", parents=[common], help="a cluster's load and balancing recommendations")
        balance_parser.add_argument("cluster", help="cluster name")
        balance_parser.add_argument("--apply", action="store_true", help="submit every recommendation")
        balance_parser.add_argument("--user", help="record the moves as requested by this vmotion user (an Operator)")
        rules_parser = commands.add_parser("rules", help="a cluster's affinity rules: list, add, delete, fix")
        rule_commands = rules_parser.add_subparsers(dest="rules_command", required=True)
        rules_list = rule_commands.add_parser("list", parents=[common], help="the rules, the stale ones and what breaks them now")
        rule_add = rule_commands.add_parser("add", parents=[common], help="a rule: VMs kept together, kept apart, or run on some hosts")
        rule_add.add_argument("name", help="rule name, unique in the cluster")
        rule_add.add_argument("--kind", required=True, choices=RuleKind.values)
        rule_add.add_argument("--should", action="store_true", help="weigh against breaking it instead of blocking (a must rule by default)")
        rule_add.add_argument("--vm", action="append", required=True, dest="vms", help="a VM of the rule (repeat)")
        rule_add.add_argument("--host", action="append", default=[], dest="hosts", help="with --kind on_hosts: a host the VMs may run on (repeat)")
        rule_delete = rule_commands.add_parser("delete", parents=[common], help="delete a rule")
        rule_fix = rule_commands.add_parser("fix", parents=[common], help="submit the moves that end a rule's violation")
        for each in (rules_list, rule_add, rule_delete, rule_fix):
            each.add_argument("--cluster", required=True, help="cluster name")
        for each in (rule_delete, rule_fix):
            each.add_argument("name", help="rule name")
        for each in (rule_add, rule_delete, rule_fix):
            each.add_argument("--user", help="record it as done by this vmotion user (an Administrator; an Operator for fix)")
        cluster_parser = commands.add_parser("cluster", help="a cluster's settings: cpu, encryption, bandwidth")
        cluster_commands = cluster_parser.add_subparsers(dest="cluster_command", required=True)
        cluster_cpu = cluster_commands.add_parser("cpu", parents=[common], help="the CPU baseline and the VMs above it; set it with --model or --computed")
        cluster_cpu.add_argument("cluster", help="cluster name")
        baseline_choice = cluster_cpu.add_mutually_exclusive_group()
        baseline_choice.add_argument("--model", help="hold the VMs to this libvirt CPU model, e.g. Nehalem")
        baseline_choice.add_argument("--computed", action="store_true", help="hold the VMs to the baseline computed from the hosts")
        cluster_cpu.add_argument("--user", help="record the change as made by this vmotion user (an Administrator)")
        cluster_encryption = cluster_commands.add_parser("encryption", parents=[common], help="migration encryption: show it, or set it to off, available or required")
        cluster_encryption.add_argument("cluster", help="cluster name")
        cluster_encryption.add_argument("mode", nargs="?", help="off, available (encrypt when both hosts can) or required")
        cluster_encryption.add_argument("--user", help="record the change as made by this vmotion user (an Administrator)")
        cluster_bandwidth = cluster_commands.add_parser("bandwidth", parents=[common], help="the hosts' migration bandwidth budget: show it, or set it in MiB/s or to none")
        cluster_bandwidth.add_argument("cluster", help="cluster name")
        cluster_bandwidth.add_argument("budget", nargs="?", help="MiB/s each way for each host without a budget of its own")
        cluster_bandwidth.add_argument("--user", help="record the change as made by this vmotion user (an Administrator)")
        schedule = commands.add_parser("schedule", help="scheduled migrations: add, list, show, enable, disable, delete")
        schedule_commands = schedule.add_subparsers(dest="schedule_command", required=True)
        add = schedule_commands.add_parser("add", parents=[common], help="a schedule that moves VMs or evacuates a host")
        add.add_argument("name")
        what = add.add_mutually_exclusive_group(required=True)
        what.add_argument("--vm", action="append", dest="vms", help="a VM to move (repeat for a batch)")
        what.add_argument("--evacuate", metavar="HOST", help="put this host in maintenance")
        add.add_argument("--to", dest="destination", default="", help="destination host (default: the assistant's choice per VM)")
        when = add.add_mutually_exclusive_group(required=True)
        when.add_argument("--at", help="once, at 'YYYY-MM-DD HH:MM' in --tz")
        when.add_argument("--daily", metavar="HH:MM")
        when.add_argument("--weekly", nargs=2, metavar=("DAY", "HH:MM"), help="e.g. sunday 02:00")
        when.add_argument("--cron", help="five cron fields, e.g. '0 2 * * 1-5'")
        add.add_argument("--tz", default="UTC", help="time zone of --at, --daily, --weekly and --cron (default UTC)")
        add.add_argument("--window", type=int, metavar="MINUTES", help="cancel the moves still queued this long after the start")
        add.add_argument("--priority", choices=PRIORITIES, default=Priority.NORMAL.label.lower())
        add.add_argument("--max-downtime", type=int, default=DEFAULT_MAX_DOWNTIME_MS)
        add.add_argument("--bandwidth", type=int)
        add.add_argument("--post-copy", action="store_true")
        add.add_argument("--reason", default="")
        add.add_argument("--user", required=True, help="the vmotion user the runs are done for (an Operator; an Administrator to evacuate)")
        schedule_commands.add_parser("list", parents=[common])
        for name in ("show", "enable", "disable", "delete"):
            schedule_commands.add_parser(name, parents=[common]).add_argument("schedule_id", type=int)

    def run_from_argv(self, argv):
        self.as_json = "--json" in argv
        return super().run_from_argv(argv)

    def create_parser(self, prog_name, subcommand, **kwargs):
        """With --json, a command line argparse rejects also ends with the JSON error line."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        subparsers = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        for each in [parser, *(sub for action in subparsers for sub in action.choices.values())]:
            each.error = self._json_error(each.error)
        return parser

    def _json_error(self, error):
        def report(message):
            if getattr(self, "as_json", False):
                self.stdout.write(json.dumps({"error": message, "checks": []}))
            error(message)

        return report

    def handle(self, *args, command, json, **options):
        self.as_json = json
        try:
            getattr(self, f"do_{command.replace('-', '_')}")(**options)
        except services.MigrationRequestError as error:
            self.fail(str(error), error.report)

    def fail(self, message: str, report: CheckReport | None = None, task: MigrationTask | None = None):
        """Exit non-zero; with --json the last line says why, as JSON."""
        if self.as_json:
            line = {"error": message, "checks": _checks(report)}
            if task is not None:
                line["task"] = _task_fields(task)
            self.stdout.write(json.dumps(line))
        raise CommandError(message)

    def do_migrate(self, vm, destination, priority, max_downtime, bandwidth, post_copy, no_auto_converge, reason, user, wait, **_):
        request = services.MigrationOptions(
            priority=PRIORITIES[priority],
            max_downtime_ms=max_downtime,
            bandwidth_mib_s=bandwidth,
            allow_post_copy=post_copy,
            allow_auto_converge=not no_auto_converge,
            reason=reason,
        )
        requester = services.find_operator(user) if user else None
        task = services.submit_migration(services.find_vm(vm), services.find_host(destination), request, requested_by=requester)
        self.stdout.write(f"task #{task.pk} queued: {task.vm.name} {task.source.name} -> {task.destination.name}")
        if wait:
            task = self._follow(task)
            if task.state != TaskState.SUCCEEDED:
                self.fail(f"task #{task.pk} {task.get_state_display().lower()}: {task.error}", task=task)
        self._json(_task_fields(task))

    def do_check(self, vm, destination, **_):
        report = services.check_migration(services.find_vm(vm), services.find_host(destination))
        for result in report.results:
            self.stdout.write(f"{result.status.upper():<7} {result.name:<20} {result.message}")
        if not report.passed:
            self.fail(f"{len(report.failures)} check(s) failed: {report.summary()}", report)
        self._json({"passed": True, "checks": _checks(report)})

    def do_recommend(self, vm, **_):
        machine = services.find_vm(vm)
        ranking = assistant.recommend(machine)
        for position, choice in enumerate(ranking, start=1):
            verdict = f"{choice.score:5.1f}" if choice.eligible else "  -  "
            why = "; ".join(choice.reasons) if choice.eligible else f"cannot take it: {choice.blocked_by.message}"
            self.stdout.write(f"{position:>3}  {verdict}  {choice.host.name:<20} {why}")
        self._json({"vm": machine.name, "candidates": [_placement_fields(choice) for choice in ranking]})

    def do_tasks(self, limit, **_):
        tasks = list(MigrationTask.objects.select_related("vm", "source", "destination")[:limit])
        for task in tasks:
            self.stdout.write(task_summary(task))
        self._json({"tasks": [_task_fields(task) for task in tasks]})

    def do_show(self, task_id, **_):
        task = self._task(task_id)
        self.stdout.write(task_summary(task))
        for event in task.events.all():
            self.stdout.write(f"  {event.at:%H:%M:%S.%f}"[:-3] + f"  {event.message}")
        self._json(_task_fields(task))

    def do_cancel(self, task_id, **_):
        task = self._task(task_id)
        self.stdout.write(services.cancel_task(task))
        self._json(_task_fields(task))

    def do_force_complete(self, task_id, **_):
        task = self._task(task_id)
        self.stdout.write(services.force_complete(task))
        self._json(_task_fields(task))

    def do_maintenance(self, action, host, user, wait, **_):
        target = services.find_host(host)
        actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
        if action == "plan":
            self._show_plan(maintenance.plan(target))
        elif action == "enter":
            evacuation = maintenance.enter(target, requested_by=actor)
            self.stdout.write(f"evacuation #{evacuation.pk}: {target.name} is entering maintenance")
            if wait:
                evacuation = self._follow_evacuation(evacuation)
                if evacuation.state != EvacuationState.COMPLETED:
                    self.fail(evacuation.message)
            self._json(_evacuation_fields(evacuation))
        elif action == "abort":
            evacuation = Evacuation.objects.filter(host=target, state=EvacuationState.RUNNING).first()
            if evacuation is None:
                self.fail(f"No evacuation of {target.name} is running.")
            self.stdout.write(maintenance.abort(evacuation, actor=actor))
            self._json(_evacuation_fields(evacuation))
        else:
            self.stdout.write(maintenance.exit_maintenance(target, actor=actor))
            self._json({"host": target.name, "state": target.state})

    def do_host(self, host_command, host, user, reason=None, has=None, budget=None, uri=None, migration_uri=None, **_):
        actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
        if host_command in ("add", "uri"):
            self._host_uris(host_command, host, uri, migration_uri, actor)
            return
        target = services.find_host(host)
        if host_command == "bandwidth":
            self._bandwidth(target, budget, actor, "host")
            return
        if host_command == "migration-tls":
            with set_actor(actor) if actor else nullcontext():
                self.stdout.write(encryption.set_migration_tls(target, has == "yes"))
            self._json({"host": target.name, "migration_tls": target.migration_tls})
            return
        try:
            with set_actor(actor) if actor else nullcontext():
                if host_command == "degrade":
                    by = f"{degradation.by_administrator(actor)} with the vmotion CLI" if actor else degradation.BY_CLI
                    target = degradation.mark_degraded(target, reason, by)
                    self.stdout.write(f"{target.name} is marked degraded: {degradation.describe(target)}")
                else:
                    self.stdout.write(degradation.restore(target))
                    target.refresh_from_db()
        except degradation.DegradationError as error:
            self.fail(str(error))
        self._json({"host": target.name, "degraded": target.is_degraded, "reason": target.degraded_reason, "by": target.degraded_by,
                    "since": target.degraded_since.isoformat() if target.degraded_since else None})

    def _host_uris(self, host_command, name, uri, migration_uri, actor):
        """Add a host, or change its URIs, through the model's validation: a URI the URI rule
        refuses is named with the reason, and nothing is saved."""
        try:
            with set_actor(actor) if actor else nullcontext():
                if host_command == "add":
                    target = registration.add_host(name, uri, migration_uri or "")
                else:
                    target = registration.change_uris(services.find_host(name), uri, migration_uri)
        except ValidationError as error:
            self.fail(f"{name}: {registration.refusal_text(error)}")
        self.stdout.write(f"{target.name}: vmotion reaches it at {target.shown_uri}; a sync is queued.")
        self._json({"host": target.name, "uri": target.shown_uri, "migration_uri": redact(target.migration_uri) if target.migration_uri else ""})

    def do_balance(self, cluster, apply, user, **_):
        found = self._cluster(cluster)
        state = balance.cluster_balance(found)
        names = {host.pk: host.name for host, _ in state.hosts}
        for host, load in state.hosts:
            self.stdout.write(f"  {host.name:<20} CPU {load.cpu_cores_used:6.2f} of {load.cpu_cores} cores  memory in use {load.memory_in_use_bytes / 1024**3:6.1f} GiB  {load.running_vms} running")
        self.stdout.write(f"load spread {state.spread:.3f}")
        forecasts = balance.forecast_recommendations(state)
        for r in state.recommendations:
            self.stdout.write(f"  move {r.vm.facts.name} {r.vm.facts.host_name} -> {names[r.destination_id]}: spread {r.spread_before:.3f} -> {r.spread_after:.3f}, {_forecast_text(forecasts[r.vm.vm_id])}")
        if not state.recommendations:
            self.stdout.write(f"no move is worth a migration at threshold {state.policy.threshold}")
        tasks = []
        if apply:
            if refusal := balance.apply_refusal(state.policy):
                self.fail(refusal)
            requester = services.find_operator(user) if user else None
            tasks = [balance.apply(state, r, requested_by=requester) for r in state.recommendations]
            for task in tasks:
                self.stdout.write(f"task #{task.pk} queued: {task.vm.name} {task.source.name} -> {task.destination.name}")
        self._json({
            "cluster": found.name, "spread": state.spread,
            "hosts": [{"host": host.name, "cpu_cores_used": load.cpu_cores_used, "cpu_cores": load.cpu_cores, "memory_in_use_bytes": load.memory_in_use_bytes} for host, load in state.hosts],
            "recommendations": [
                {"vm": r.vm.facts.name, "from": r.vm.facts.host_name, "to": names[r.destination_id], "spread_before": r.spread_before, "spread_after": r.spread_after,
                 **_forecast_fields(forecasts[r.vm.vm_id])}
                for r in state.recommendations
            ],
            "tasks": [task.pk for task in tasks],
        })

    def do_rules(self, rules_command, cluster, **options):
        found = self._cluster(cluster)
        getattr(self, f"_rules_{rules_command}")(found, **options)

    def _rules_list(self, cluster, **_):
        statuses = affinity_rules.cluster_rules(cluster)
        for status in statuses:
            stale = f" [stale: {', '.join(status.stale)} gone]" if status.stale else ""
            now = f"VIOLATED: {status.violation.message}" if status.violation else "holds"
            self.stdout.write(f"  {status.rule.name:<20} {status.facts.describe()}{stale}: {now}")
        if not statuses:
            self.stdout.write(f"cluster {cluster.name} has no affinity rule")
        self._json({"cluster": cluster.name, "rules": [_rule_fields(status) for status in statuses]})

    def _rules_add(self, cluster, name, kind, should, vms, hosts, user, **_):
        actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
        machines = [services.find_vm(vm) for vm in vms]
        targets = [services.find_host(host) for host in hosts]
        with set_actor(actor) if actor else nullcontext():
            rule = affinity_rules.add_rule(cluster, name, kind, RuleStrength.SHOULD if should else RuleStrength.MUST, machines, targets, created_by=actor)
        self.stdout.write(f"rule {rule.name!r} added: {affinity_rules.facts_of(rule).describe()}")
        self._json({"cluster": cluster.name, "rule": rule.name, "kind": rule.kind, "strength": rule.strength})

    def _rules_delete(self, cluster, name, user, **_):
        actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
        with set_actor(actor) if actor else nullcontext():
            self.stdout.write(affinity_rules.delete_rule(self._rule(cluster, name)))
        self._json({"cluster": cluster.name, "deleted": name})

    def _rules_fix(self, cluster, name, user, **_):
        rule = self._rule(cluster, name)
        status = affinity_rules.status_of(rule)
        tasks = []
        if status.violation is None:
            self.stdout.write(f"rule {rule.name!r} holds: nothing to fix")
        else:
            requester = services.find_operator(user) if user else None
            _, tasks = rule_fixes.apply_fix(status.violation, requested_by=requester)
            for task in tasks:
                self.stdout.write(f"task #{task.pk} queued: {task.vm.name} {task.source.name} -> {task.destination.name}")
        self._json({"cluster": cluster.name, "rule": rule.name, "tasks": [task.pk for task in tasks]})

    def _rule(self, cluster: Cluster, name: str) -> AffinityRule:
        rule = AffinityRule.objects.filter(cluster=cluster, name=name).first()
        if rule is None:
            known = ", ".join(AffinityRule.objects.filter(cluster=cluster).values_list("name", flat=True)) or "none"
            self.fail(f"Cluster {cluster.name} has no rule named {name!r}; its rules: {known}.")
        return rule

    def _cluster(self, name: str) -> Cluster:
        found = Cluster.objects.filter(name=name).first()
        if found is None:
            self.fail(f"No cluster named {name!r}; known clusters: {', '.join(Cluster.objects.values_list('name', flat=True)) or 'none'}.")
        return found

    def do_cluster(self, cluster_command, **options):
        getattr(self, f"_cluster_{cluster_command}")(**options)

    def _cluster_cpu(self, cluster, model, computed, user, **_):
        found = self._cluster(cluster)
        if model is not None or computed:
            actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
            try:
                with set_actor(actor) if actor else nullcontext():
                    self.stdout.write(cpu_baseline.set_cpu_baseline(found, ClusterCpuMode.COMPUTED if computed else ClusterCpuMode.NAMED, model or ""))
            except cpu_baseline.CpuBaselineError as error:
                self.fail(str(error))
        report = cpu_baseline.cluster_cpu_report(found)
        source = "named by an administrator" if report.baseline.named else "computed from the hosts"
        self.stdout.write(f"{found.name}: CPU baseline {report.baseline.model or 'none yet'} ({source})")
        groups = {"above the baseline": report.exceeding, "waiting for a restart": report.restart_pending, "not judged": report.unknown}
        for title, rows in groups.items():
            for row in rows:
                self.stdout.write(f"  {title}: {row.vm.name} on {row.vm.host.name}: {row.verdict.reason}")
        if not report.exceeding:
            self.stdout.write("no VM is above the baseline")
        self._json({
            "cluster": found.name, "mode": found.cpu_mode, "baseline": report.baseline.model, "computed": found.cpu_baseline_model,
            **{key: [{"vm": row.vm.name, "host": row.vm.host.name, "reason": row.verdict.reason, "above_baseline": list(row.verdict.above_baseline)} for row in rows]
               for key, rows in zip(("exceeding", "restart_pending", "unknown"), groups.values())},
        })

    def _cluster_bandwidth(self, cluster, budget, user, **_):
        actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
        self._bandwidth(self._cluster(cluster), budget, actor, "cluster")

    def _bandwidth(self, target, budget, actor, kind: str) -> None:
        if budget is None:
            self.stdout.write(bandwidth_budget.describe(target))
        else:
            try:
                with set_actor(actor) if actor else nullcontext():
                    self.stdout.write(bandwidth_budget.set_budget(target, budget))
            except bandwidth_budget.BudgetError as error:
                self.fail(str(error))
        self._json({kind: target.name, "migration_bandwidth_mib_s": target.migration_bandwidth_mib_s})

    def _cluster_encryption(self, cluster, mode, user, **_):
        found = self._cluster(cluster)
        if mode is not None:
            actor = services.find_user_with_role(user, Role.ADMINISTRATOR) if user else None
            try:
                with set_actor(actor) if actor else nullcontext():
                    self.stdout.write(encryption.set_migration_encryption(found, mode))
            except encryption.EncryptionSettingError as error:
                self.fail(str(error))
        report = encryption.cluster_encryption(found)
        self.stdout.write(f"{found.name}: migration encryption {report.mode.label.lower()}. {report.sentence}")
        self.stdout.write(f"  with migration certificates: {', '.join(report.with_certificates) or 'none'}")
        self.stdout.write(f"  without: {', '.join(report.without_certificates) or 'none'}")
        self._json({
            "cluster": found.name, "encryption": report.mode.value,
            "with_certificates": list(report.with_certificates), "without_certificates": list(report.without_certificates),
        })

    def do_schedule(self, schedule_command, **options):
        getattr(self, f"_schedule_{schedule_command}")(**options)

    def _schedule_add(self, name, vms, evacuate, destination, at, daily, weekly, cron, tz, window, priority, max_downtime, bandwidth, post_copy, reason, user, **_):
        try:
            zone = recurrence.zone(tz)
            fields = _when_fields(at, daily, weekly, cron, zone)
        except (ValueError, recurrence.RecurrenceError) as error:
            self.fail(str(error))
        created = schedules.create(Schedule(
            name=name, action=ScheduleAction.EVACUATE if evacuate else ScheduleAction.MOVE, vm_names=vms or [],
            destination_name=destination, host_name=evacuate or "", time_zone=tz, window_minutes=window,
            priority=PRIORITIES[priority], max_downtime_ms=max_downtime, bandwidth_mib_s=bandwidth, allow_post_copy=post_copy,
            reason=reason, created_by=services.find_user_with_role(user, Role.OPERATOR), **fields,
        ))
        self.stdout.write(f"schedule #{created.pk} {created.name}: {created.when().describe()}, next run {_local(created.next_run_at, tz)}")
        self._json(_schedule_fields(created))

    def _schedule_list(self, **_):
        every = list(Schedule.objects.all())
        for item in every:
            state = "enabled" if item.enabled else "disabled"
            self.stdout.write(f"#{item.pk:<4} {item.name:<24} {state:<9} {item.when().describe():<40} next {_local(item.next_run_at, item.time_zone)}")
        self._json({"schedules": [_schedule_fields(item) for item in every]})

    def _schedule_show(self, schedule_id, **_):
        item = self._schedule(schedule_id)
        self.stdout.write(f"#{item.pk} {item.name}: {item.when().describe()}, next run {_local(item.next_run_at, item.time_zone)}")
        for run in item.runs.all()[:20]:
            self.stdout.write(f"  {_local(run.due_at, item.time_zone)}  {run.get_state_display():<8} {run.result}")
        self._json(_schedule_fields(item))

    def _schedule_enable(self, schedule_id, **_):
        item = self._schedule(schedule_id)
        schedules.set_enabled(item, True, None)  # the server's command line acts as its administrator
        self.stdout.write(f"schedule #{item.pk} enabled, next run {_local(item.next_run_at, item.time_zone)}")
        self._json(_schedule_fields(item))

    def _schedule_disable(self, schedule_id, **_):
        item = self._schedule(schedule_id)
        schedules.set_enabled(item, False, None)
        self.stdout.write(f"schedule #{item.pk} disabled")
        self._json(_schedule_fields(item))

    def _schedule_delete(self, schedule_id, **_):
        item = self._schedule(schedule_id)
        fields = _schedule_fields(item)
        schedules.delete(item, None)
        self.stdout.write(f"schedule #{schedule_id} deleted")
        self._json(fields)

    def _schedule(self, schedule_id: int) -> Schedule:
        item = Schedule.objects.filter(pk=schedule_id).first()
        if item is None:
            self.fail(f"No schedule #{schedule_id}.")
        return item

    def _show_plan(self, plan) -> None:
        for item in plan.moves:
            if item.destination is None:
                self.stdout.write(f"  {item.vm.name:<20} nowhere to go: {item.move.blocked_reason}")
                continue
            forecast = item.forecast.forecast if item.forecast else None
            expected = f"about {forecast.prediction.total_ms / 1000:.0f} s, {forecast.prediction.downtime_ms} ms pause" if forecast else "no forecast"
            self.stdout.write(f"  {item.vm.name:<20} -> {item.destination.name:<16} {expected}; {'; '.join(item.move.chosen.reasons)}")
        if plan.predicted_total_ms is not None:
            self.stdout.write(f"the whole evacuation: about {plan.predicted_total_ms / 1000:.0f} s under the current limits")
        self._json({
            "host": plan.host.name,
            "moves": [{"vm": item.vm.name, "destination": item.destination.name if item.destination else None,
                       "blocked_by": item.move.blocked_reason or None} for item in plan.moves],
            "predicted_total_ms": plan.predicted_total_ms,
        })

    def _follow_evacuation(self, evacuation):
        while True:
            evacuation_steps.advance(evacuation)  # as the scheduler does, in case none runs
            evacuation.refresh_from_db()
            if evacuation.state != EvacuationState.RUNNING:
                self.stdout.write(evacuation.message)
                return evacuation
            time.sleep(1)

    def _json(self, fields: dict) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(fields))

    def _task(self, task_id: int) -> MigrationTask:
        task = MigrationTask.objects.select_related("vm", "source", "destination").filter(pk=task_id).first()
        if task is None:
            self.fail(f"No migration task #{task_id}.")
        return task

    def _follow(self, task: MigrationTask) -> MigrationTask:
        seen = 0
        while True:
            task.refresh_from_db()
            for event in task.events.all()[seen:]:
                self.stdout.write(f"  {event.message}")
                seen += 1
            if task.is_final:
                return task
            time.sleep(0.5)


def _forecast_text(move) -> str:
    if move.forecast is None:
        return f"no forecast ({move.error})"
    prediction = move.forecast.prediction
    return f"about {prediction.total_ms / 1000:.1f} s with a {prediction.downtime_ms} ms pause"


def _forecast_fields(move) -> dict:
    prediction = move.forecast.prediction if move.forecast else None
    return {"predicted_total_ms": prediction.total_ms if prediction else None, "predicted_downtime_ms": prediction.downtime_ms if prediction else None}


def _rule_fields(status) -> dict:
    return {
        "rule": status.rule.name, "kind": status.rule.kind, "strength": status.rule.strength, "describe": status.facts.describe(),
        "stale": list(status.stale), "violation": status.violation.message if status.violation else None,
    }


def _checks(report: CheckReport | None) -> list[dict]:
    if report is None:
        return []
    return [{"name": result.name, "status": result.status, "message": result.message} for result in report.results]


def _placement_fields(choice) -> dict:
    return {
        "host": choice.host.name,
        "score": choice.score,
        "eligible": choice.eligible,
        "reasons": list(choice.reasons),
        "blocked_by": None if choice.eligible else {"check": choice.blocked_by.name, "message": choice.blocked_by.message},
    }


def _when_fields(at, daily, weekly, cron, zone) -> dict:
    """The recurrence fields from the command line; raises ValueError on a malformed time."""
    if at:
        return {"recurrence": RecurrenceKind.ONCE, "run_at": datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=zone)}
    if daily:
        return {"recurrence": RecurrenceKind.DAILY, "time_of_day": datetime.strptime(daily, "%H:%M").time()}
    if weekly:
        day, moment = weekly
        names = [name.lower() for name in recurrence.WEEKDAYS]
        if day.lower() not in names:
            raise ValueError(f"{day!r} is not a day of the week.")
        return {"recurrence": RecurrenceKind.WEEKLY, "weekday": names.index(day.lower()), "time_of_day": datetime.strptime(moment, "%H:%M").time()}
    return {"recurrence": RecurrenceKind.CRON, "cron": cron}


def _local(moment, tz: str) -> str:
    return moment.astimezone(recurrence.zone(tz)).strftime("%Y-%m-%d %H:%M %Z") if moment else "none"


def _schedule_fields(item: Schedule) -> dict:
    last = item.last_run()
    return {
        "schedule": item.pk, "name": item.name, "action": item.action, "enabled": item.enabled, "when": item.when().describe(),
        "next_run_at": item.next_run_at.isoformat() if item.next_run_at else None,
        "last_run": {"due_at": last.due_at.isoformat(), "state": last.state, "result": last.result} if last else None,
    }


def _evacuation_fields(evacuation: Evacuation) -> dict:
    return {"evacuation": evacuation.pk, "host": evacuation.host.name, "state": evacuation.state, "message": evacuation.message}


def _task_fields(task: MigrationTask) -> dict:
    return {
        "task": task.pk,
        "vm": task.vm.name,
        "source": task.source.name,
        "destination": task.destination.name,
        "state": task.state,
        "downtime_ms": task.downtime_ms,
        "total_ms": task.total_ms,
        "bytes": task.bytes_transferred,
        "iterations": task.iterations,
        "max_downtime_ms": task.max_downtime_ms,
        "predicted_total_ms": task.predicted_total_ms,
        "predicted_downtime_ms": task.predicted_downtime_ms,
        "encrypted": task.encrypted,
        "error": task.error,
    }
