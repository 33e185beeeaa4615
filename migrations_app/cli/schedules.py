"""`vmotion schedule add|list|show|enable|disable|delete`: migrations and evacuations that run at set times."""

from datetime import datetime

from core.roles import Role
from migrations_app import services
from migrations_app.automation import recurrence, schedules
from migrations_app.choices import Priority, RecurrenceKind, ScheduleAction
from migrations_app.models import Schedule
from migrations_app.options import DEFAULT_MAX_DOWNTIME_MS

from .migrate import PRIORITIES
from .output import Output


def register(commands, json_option) -> None:
    schedule_parser = commands.add_parser("schedule", help="scheduled migrations: add, list, show, enable, disable, delete")
    schedule_commands = schedule_parser.add_subparsers(dest="schedule_command", required=True)
    add_parser = schedule_commands.add_parser("add", parents=[json_option], help="a schedule that moves VMs or evacuates a host")
    add_parser.add_argument("name")
    what = add_parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--vm", action="append", dest="vms", help="a VM to move (repeat for a batch)")
    what.add_argument("--evacuate", metavar="HOST", help="put this host in maintenance")
    add_parser.add_argument("--to", dest="destination", default="", help="destination host (default: the assistant's choice per VM)")
    when = add_parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help="once, at 'YYYY-MM-DD HH:MM' in --tz")
    when.add_argument("--daily", metavar="HH:MM")
    when.add_argument("--weekly", nargs=2, metavar=("DAY", "HH:MM"), help="e.g. sunday 02:00")
    when.add_argument("--cron", help="five cron fields, e.g. '0 2 * * 1-5'")
    add_parser.add_argument("--tz", default="UTC", help="time zone of --at, --daily, --weekly and --cron (default UTC)")
    add_parser.add_argument("--window", type=int, metavar="MINUTES", help="cancel the moves still queued this long after the start")
    add_parser.add_argument("--priority", choices=PRIORITIES, default=Priority.NORMAL.label.lower())
    add_parser.add_argument("--max-downtime", type=int, default=DEFAULT_MAX_DOWNTIME_MS)
    add_parser.add_argument("--bandwidth", type=int)
    add_parser.add_argument("--post-copy", action="store_true")
    add_parser.add_argument("--reason", default="")
    add_parser.add_argument("--user", required=True, help="the vmotion user the runs are done for (an Operator; an Administrator to evacuate)")
    add_parser.set_defaults(handler=add)
    schedule_commands.add_parser("list", parents=[json_option]).set_defaults(handler=list_schedules)
    for name, handler in (("show", show), ("enable", enable), ("disable", disable), ("delete", delete)):
        one_parser = schedule_commands.add_parser(name, parents=[json_option])
        one_parser.add_argument("schedule_id", type=int)
        one_parser.set_defaults(handler=handler)


def add(out: Output, name, vms, evacuate, destination, at, daily, weekly, cron, tz, window, priority, max_downtime, bandwidth, post_copy, reason, user, **_):
    try:
        zone = recurrence.zone(tz)
        fields = _when_fields(at, daily, weekly, cron, zone)
    except (ValueError, recurrence.RecurrenceError) as error:
        out.fail(str(error))
    created = schedules.create(Schedule(
        name=name, action=ScheduleAction.EVACUATE if evacuate else ScheduleAction.MOVE, vm_names=vms or [],
        destination_name=destination, host_name=evacuate or "", time_zone=tz, window_minutes=window,
        priority=PRIORITIES[priority], max_downtime_ms=max_downtime, bandwidth_mib_s=bandwidth, allow_post_copy=post_copy,
        reason=reason, created_by=services.find_user_with_role(user, Role.OPERATOR), **fields,
    ))
    out.say(f"schedule #{created.pk} {created.name}: {created.when().describe()}, next run {_local(created.next_run_at, tz)}")
    warnings = services.schedule_post_copy_warnings(created)
    for warning in warnings:
        out.warn(warning)
    out.result({**_schedule_fields(created), "warnings": warnings})


def list_schedules(out: Output, **_):
    every = list(Schedule.objects.all())
    for item in every:
        state = "enabled" if item.enabled else "disabled"
        out.say(f"#{item.pk:<4} {item.name:<24} {state:<9} {item.when().describe():<40} next {_local(item.next_run_at, item.time_zone)}")
    out.result({"schedules": [_schedule_fields(item) for item in every]})


def show(out: Output, schedule_id, **_):
    item = _find_schedule(out, schedule_id)
    out.say(f"#{item.pk} {item.name}: {item.when().describe()}, next run {_local(item.next_run_at, item.time_zone)}")
    for run in item.runs.all()[:20]:
        out.say(f"  {_local(run.due_at, item.time_zone)}  {run.get_state_display():<8} {run.result}")
    out.result(_schedule_fields(item))


def enable(out: Output, schedule_id, **_):
    item = _find_schedule(out, schedule_id)
    schedules.set_enabled(item, True, None)  # the server's command line acts as its administrator
    out.say(f"schedule #{item.pk} enabled, next run {_local(item.next_run_at, item.time_zone)}")
    out.result(_schedule_fields(item))


def disable(out: Output, schedule_id, **_):
    item = _find_schedule(out, schedule_id)
    schedules.set_enabled(item, False, None)
    out.say(f"schedule #{item.pk} disabled")
    out.result(_schedule_fields(item))


def delete(out: Output, schedule_id, **_):
    item = _find_schedule(out, schedule_id)
    fields = _schedule_fields(item)
    schedules.delete(item, None)
    out.say(f"schedule #{schedule_id} deleted")
    out.result(fields)


def _find_schedule(out: Output, schedule_id: int) -> Schedule:
    item = Schedule.objects.filter(pk=schedule_id).first()
    if item is None:
        out.fail(f"No schedule #{schedule_id}.")
    return item


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
