import json
import time

from django.core.management.base import BaseCommand, CommandError

from migrations_app import services
from migrations_app.choices import Priority
from migrations_app.models import MigrationTask
from migrations_app.presenters import task_summary

PRIORITIES = {"high": Priority.HIGH, "normal": Priority.NORMAL, "low": Priority.LOW}


class Command(BaseCommand):
    help = "Live migration from the command line: migrate, check, tasks, cancel, force-complete."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True)
        migrate = commands.add_parser("migrate", help="move a running VM to another host")
        migrate.add_argument("vm", help="VM name or UUID")
        migrate.add_argument("--to", required=True, dest="destination", help="destination host")
        migrate.add_argument("--priority", choices=PRIORITIES, default="normal")
        migrate.add_argument("--max-downtime", type=int, default=300, help="longest final pause you accept, ms (default 300)")
        migrate.add_argument("--bandwidth", type=int, help="cap in MiB/s (default uncapped)")
        migrate.add_argument("--post-copy", action="store_true", help="allow switching to post-copy")
        migrate.add_argument("--no-auto-converge", action="store_true", help="never throttle the guest's vCPUs")
        migrate.add_argument("--reason", default="")
        migrate.add_argument("--user", help="record the migration as requested by this vmotion user (an Operator)")
        migrate.add_argument("--wait", action="store_true", help="follow the task until it ends")
        migrate.add_argument("--json", action="store_true", help="end with one JSON line describing the task")
        check = commands.add_parser("check", help="run the pre-flight checks only")
        check.add_argument("vm")
        check.add_argument("--to", required=True, dest="destination")
        tasks = commands.add_parser("tasks", help="recent migration tasks")
        tasks.add_argument("--limit", type=int, default=20)
        for name in ("cancel", "force-complete", "show"):
            commands.add_parser(name).add_argument("task_id", type=int)

    def handle(self, *args, command, **options):
        try:
            getattr(self, f"do_{command.replace('-', '_')}")(**options)
        except services.MigrationRequestError as error:
            raise CommandError(str(error)) from error

    def do_migrate(self, vm, destination, priority, max_downtime, bandwidth, post_copy, no_auto_converge, reason, user, wait, json, **_):
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
        if json:
            self.stdout.write(_json_line(task))
        if wait and task.state != "succeeded":
            raise CommandError(f"task #{task.pk} {task.get_state_display().lower()}: {task.error}")

    def do_check(self, vm, destination, **_):
        report = services.check_migration(services.find_vm(vm), services.find_host(destination))
        for result in report.results:
            self.stdout.write(f"{result.status.upper():<7} {result.name:<20} {result.message}")
        if not report.passed:
            raise CommandError(f"{len(report.failures)} check(s) failed")

    def do_tasks(self, limit, **_):
        for task in MigrationTask.objects.select_related("vm", "source", "destination")[:limit]:
            self.stdout.write(task_summary(task))

    def do_show(self, task_id, **_):
        task = self._task(task_id)
        self.stdout.write(task_summary(task))
        for event in task.events.all():
            self.stdout.write(f"  {event.at:%H:%M:%S.%f}"[:-3] + f"  {event.message}")
        self.stdout.write(_json_line(task))

    def do_cancel(self, task_id, **_):
        self.stdout.write(services.cancel_task(self._task(task_id)))

    def do_force_complete(self, task_id, **_):
        self.stdout.write(services.force_complete(self._task(task_id)))

    def _task(self, task_id: int) -> MigrationTask:
        task = MigrationTask.objects.select_related("vm", "source", "destination").filter(pk=task_id).first()
        if task is None:
            raise CommandError(f"No migration task #{task_id}.")
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


def _json_line(task: MigrationTask) -> str:
    return json.dumps(
        {
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
            "error": task.error,
        }
    )
