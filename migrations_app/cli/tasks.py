"""`vmotion tasks`, `show`, `cancel` and `force-complete`: the migration tasks, and acting on a running one."""

import time

from migrations_app import services
from migrations_app.models import MigrationTask

from .output import Output
from .presenters import task_summary


def register(commands, json_option) -> None:
    tasks_parser = commands.add_parser("tasks", parents=[json_option], help="recent migration tasks")
    tasks_parser.add_argument("--limit", type=int, default=20)
    tasks_parser.set_defaults(handler=list_tasks)
    for name, handler in (("cancel", cancel), ("force-complete", force_complete), ("show", show)):
        task_parser = commands.add_parser(name, parents=[json_option])
        task_parser.add_argument("task_id", type=int)
        task_parser.set_defaults(handler=handler)


def list_tasks(out: Output, limit, **_):
    tasks = list(MigrationTask.objects.select_related("vm", "source", "destination").prefetch_related("disk_moves")[:limit])
    for task in tasks:
        out.say(task_summary(task))
    out.result({"tasks": [task_fields(task) for task in tasks]})


def show(out: Output, task_id, **_):
    task = _find_task(out, task_id)
    out.say(task_summary(task))
    for event in task.events.all():
        out.say(f"  {event.at:%H:%M:%S.%f}"[:-3] + f"  {event.message}")
    out.result(task_fields(task))


def cancel(out: Output, task_id, **_):
    task = _find_task(out, task_id)
    out.say(services.cancel_task(task))
    out.result(task_fields(task))


def force_complete(out: Output, task_id, **_):
    task = _find_task(out, task_id)
    out.say(services.force_complete(task))
    out.result(task_fields(task))


def follow(out: Output, task: MigrationTask) -> MigrationTask:
    """Say each event of `task` as it comes, until the task ends."""
    seen = 0
    while True:
        task.refresh_from_db()
        for event in task.events.all()[seen:]:
            out.say(f"  {event.message}")
            seen += 1
        if task.is_final:
            return task
        time.sleep(0.5)


def _find_task(out: Output, task_id: int) -> MigrationTask:
    task = MigrationTask.objects.select_related("vm", "source", "destination").filter(pk=task_id).first()
    if task is None:
        out.fail(f"No migration task #{task_id}.")
    return task


def task_fields(task: MigrationTask) -> dict:
    return {
        "task": task.pk,
        "kind": task.kind,
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
        "disks": [{"disk": m.target, "from": m.source_path, "to": m.destination_path} for m in task.disk_moves.all()],
    }
