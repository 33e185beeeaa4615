"""`vmotion migrate`, `move-storage`, `check` and `recommend`: move one VM (to another host,
or its disks to other datastores of its host), or ask first whether it can go and where."""

import argparse

from core.roles import Role
from migrations_app import services
from migrations_app.choices import Priority, TaskState
from migrations_app.options import DEFAULT_MAX_DOWNTIME_MS
from migrations_app.placement import store as assistant

from .lookups import acting_user
from .output import Output, check_fields
from .tasks import follow, task_fields

PRIORITIES = {priority.label.lower(): priority for priority in Priority}


def register(commands, json_option) -> None:
    migrate_parser = commands.add_parser("migrate", parents=[json_option], help="move a running VM to another host")
    migrate_parser.add_argument("vm", help="VM name or UUID")
    migrate_parser.add_argument("--to", required=True, dest="destination", help="destination host")
    migrate_parser.add_argument("--priority", choices=PRIORITIES, default=Priority.NORMAL.label.lower())
    migrate_parser.add_argument(
        "--max-downtime", type=int, default=DEFAULT_MAX_DOWNTIME_MS,
        help=f"longest final pause you accept, ms (default {DEFAULT_MAX_DOWNTIME_MS})",
    )
    migrate_parser.add_argument("--bandwidth", type=int, help="cap in MiB/s (default uncapped)")
    migrate_parser.add_argument("--post-copy", action="store_true", help="allow switching to post-copy")
    migrate_parser.add_argument("--no-auto-converge", action="store_true", help="never throttle the guest's vCPUs")
    migrate_parser.add_argument(
        "--datastore", help="a datastore of the destination (its name, or its pool's name there): the VM's disks are copied to it live, with the memory",
    )
    migrate_parser.add_argument("--disk", action="append", type=disk_datastore, default=[], metavar="DISK=DATASTORE", help="copy this disk (e.g. vda) to that datastore of the destination; repeat per disk")
    migrate_parser.add_argument("--reason", default="")
    migrate_parser.add_argument("--user", help="record the migration as requested by this vmotion user (an Operator)")
    migrate_parser.add_argument("--wait", action="store_true", help="follow the task until it ends")
    migrate_parser.set_defaults(handler=migrate)
    storage_parser = commands.add_parser("move-storage", parents=[json_option], help="move a running VM's disks to another datastore of its host, live")
    storage_parser.add_argument("vm", help="VM name or UUID")
    storage_parser.add_argument("--datastore", help="a datastore of the VM's host (its name, or its pool's name there) for every disk")
    storage_parser.add_argument("--disk", action="append", type=disk_datastore, default=[], metavar="DISK=DATASTORE", help="move this disk (e.g. vda) to that datastore; repeat per disk")
    storage_parser.add_argument("--priority", choices=PRIORITIES, default=Priority.NORMAL.label.lower())
    storage_parser.add_argument("--bandwidth", type=int, help="cap the copy in MiB/s (default uncapped)")
    storage_parser.add_argument("--reason", default="")
    storage_parser.add_argument("--user", help="record the move as requested by this vmotion user (an Operator)")
    storage_parser.add_argument("--wait", action="store_true", help="follow the task until it ends")
    storage_parser.set_defaults(handler=move_storage)
    check_parser = commands.add_parser("check", parents=[json_option], help="run the pre-flight checks only")
    check_parser.add_argument("vm")
    check_parser.add_argument("--to", required=True, dest="destination")
    check_parser.add_argument("--datastore", help="as for migrate: the destination's datastore the disks would be copied to")
    check_parser.add_argument("--disk", action="append", type=disk_datastore, default=[], metavar="DISK=DATASTORE", help="as for migrate")
    check_parser.set_defaults(handler=check)
    recommend_parser = commands.add_parser("recommend", parents=[json_option], help="rank every host for a VM, with the reasons")
    recommend_parser.add_argument("vm", help="VM name or UUID")
    recommend_parser.set_defaults(handler=recommend)


def disk_datastore(value: str) -> tuple[str, str]:
    target, _, datastore = value.partition("=")
    if not target or not datastore:
        raise argparse.ArgumentTypeError(f"{value!r} is not DISK=DATASTORE, e.g. vda=local-ssd")
    return target, datastore


def migrate(out: Output, vm, destination, priority, max_downtime, bandwidth, post_copy, no_auto_converge, reason, user, wait, datastore=None, disk=(), **_):
    request = services.MigrationOptions(
        priority=PRIORITIES[priority],
        max_downtime_ms=max_downtime,
        bandwidth_mib_s=bandwidth,
        allow_post_copy=post_copy,
        allow_auto_converge=not no_auto_converge,
        reason=reason,
    )
    requester = acting_user(user, Role.OPERATOR)
    machine, host = services.find_vm(vm), services.find_host(destination)
    disks = services.find_disk_choice(host, datastore, dict(disk))
    task = services.submit_migration(machine, host, request, requested_by=requester, disks=disks)
    out.say(f"task #{task.pk} queued: {task.vm.name} {task.source.name} -> {task.destination.name}")
    # Said at once, before any --wait: the operator may still cancel before post-copy begins.
    warnings = services.post_copy_warnings([(machine, host)]) if post_copy else []
    for warning in warnings:
        out.warn(warning)
    if wait:
        task = follow(out, task)
        if task.state != TaskState.SUCCEEDED:
            out.fail(f"task #{task.pk} {task.get_state_display().lower()}: {task.error}", task=task_fields(task), warnings=warnings)
    out.result({**task_fields(task), "warnings": warnings})


def move_storage(out: Output, vm, priority, bandwidth, reason, user, wait, datastore=None, disk=(), **_):
    request = services.MigrationOptions(priority=PRIORITIES[priority], bandwidth_mib_s=bandwidth, reason=reason)
    requester = acting_user(user, Role.OPERATOR)
    machine = services.find_vm(vm)
    if machine.host is None:
        out.fail(f"{machine.name} is not on any known host.")
    disks = services.find_disk_choice(machine.host, datastore, dict(disk))
    if disks is None:
        out.fail("Say where the disks go: --datastore DATASTORE, or --disk DISK=DATASTORE per disk.")
    task = services.submit_storage_move(machine, disks, request, requested_by=requester)
    out.say(f"task #{task.pk} queued: {task.vm.name}'s disks on {task.source.name}")
    if wait:
        task = follow(out, task)
        if task.state != TaskState.SUCCEEDED:
            out.fail(f"task #{task.pk} {task.get_state_display().lower()}: {task.error}", task=task_fields(task))
    out.result(task_fields(task))


def check(out: Output, vm, destination, datastore=None, disk=(), **_):
    host = services.find_host(destination)
    report = services.check_migration(services.find_vm(vm), host, services.find_disk_choice(host, datastore, dict(disk)))
    for result in report.results:
        out.say(f"{result.status.upper():<7} {result.name:<20} {result.message}")
    if not report.passed:
        out.fail(f"{len(report.failures)} check(s) failed: {report.summary()}", report)
    out.result({"passed": True, "checks": check_fields(report)})


def recommend(out: Output, vm, **_):
    machine = services.find_vm(vm)
    ranking = assistant.recommend(machine)
    for position, choice in enumerate(ranking, start=1):
        verdict = f"{choice.score:5.1f}" if choice.eligible else "  -  "
        why = "; ".join(choice.reasons) if choice.eligible else f"cannot take it: {choice.blocked_by.message}"
        out.say(f"{position:>3}  {verdict}  {choice.host.name:<20} {why}")
    out.result({"vm": machine.name, "candidates": [_placement_fields(choice) for choice in ranking]})


def _placement_fields(choice) -> dict:
    return {
        "host": choice.host.name,
        "score": choice.score,
        "eligible": choice.eligible,
        "reasons": list(choice.reasons),
        "blocked_by": None if choice.eligible else {"check": choice.blocked_by.name, "message": choice.blocked_by.message},
    }
