"""`vmotion maintenance plan|enter|abort|exit HOST`: empty a host of its VMs, and let it take them again."""

import time

from core.roles import Role
from migrations_app import services
from migrations_app.automation import evacuation as evacuation_steps
from migrations_app.automation import maintenance
from migrations_app.choices import EvacuationState
from migrations_app.models import Evacuation

from .lookups import acting_user
from .output import Output


def register(commands, json_option) -> None:
    maintenance_parser = commands.add_parser("maintenance", parents=[json_option], help="plan, enter, abort or exit a host's maintenance")
    maintenance_parser.add_argument("action", choices=["plan", "enter", "abort", "exit"])
    maintenance_parser.add_argument("host", help="host name")
    maintenance_parser.add_argument("--user", help="record it as done by this vmotion user (an Administrator)")
    maintenance_parser.add_argument("--wait", action="store_true", help="with enter: follow the evacuation until it ends")
    maintenance_parser.set_defaults(handler=run_maintenance)


def run_maintenance(out: Output, action, host, user, wait, **_):
    target = services.find_host(host)
    actor = acting_user(user, Role.ADMINISTRATOR)
    if action == "plan":
        _show_plan(out, maintenance.plan(target))
    elif action == "enter":
        _enter(out, target, actor, wait)
    elif action == "abort":
        _abort(out, target, actor)
    else:
        out.say(maintenance.exit_maintenance(target, actor=actor))
        out.result({"host": target.name, "state": target.state})


def _show_plan(out: Output, plan) -> None:
    for item in plan.moves:
        if item.destination is None:
            out.say(f"  {item.vm.name:<20} nowhere to go: {item.move.blocked_reason}")
            continue
        forecast = item.forecast.forecast if item.forecast else None
        expected = f"about {forecast.prediction.total_ms / 1000:.0f} s, {forecast.prediction.downtime_ms} ms pause" if forecast else "no forecast"
        out.say(f"  {item.vm.name:<20} -> {item.destination.name:<16} {expected}; {'; '.join(item.move.chosen.reasons)}")
    if plan.predicted_total_ms is not None:
        out.say(f"the whole evacuation: about {plan.predicted_total_ms / 1000:.0f} s under the current limits")
    out.result({
        "host": plan.host.name,
        "moves": [{"vm": item.vm.name, "destination": item.destination.name if item.destination else None,
                   "blocked_by": item.move.blocked_reason or None} for item in plan.moves],
        "predicted_total_ms": plan.predicted_total_ms,
    })


def _enter(out: Output, target, actor, wait: bool) -> None:
    evacuation = maintenance.enter(target, requested_by=actor)
    out.say(f"evacuation #{evacuation.pk}: {target.name} is entering maintenance")
    if wait:
        evacuation = _follow_evacuation(out, evacuation)
        if evacuation.state != EvacuationState.COMPLETED:
            out.fail(evacuation.message)
    out.result(_evacuation_fields(evacuation))


def _abort(out: Output, target, actor) -> None:
    evacuation = Evacuation.objects.filter(host=target, state=EvacuationState.RUNNING).first()
    if evacuation is None:
        out.fail(f"No evacuation of {target.name} is running.")
    out.say(maintenance.abort(evacuation, actor=actor))
    out.result(_evacuation_fields(evacuation))


def _follow_evacuation(out: Output, evacuation: Evacuation) -> Evacuation:
    while True:
        evacuation_steps.advance(evacuation)  # as the scheduler does, in case none runs
        evacuation.refresh_from_db()
        if evacuation.state != EvacuationState.RUNNING:
            out.say(evacuation.message)
            return evacuation
        time.sleep(1)


def _evacuation_fields(evacuation: Evacuation) -> dict:
    return {"evacuation": evacuation.pk, "host": evacuation.host.name, "state": evacuation.state, "message": evacuation.message}
