"""`vmotion balance CLUSTER [--apply]`: a cluster's load, the moves that would even it, and submitting them."""

from core.roles import Role
from migrations_app.automation import balancing

from .lookups import acting_user, find_cluster
from .output import Output


def register(commands, json_option) -> None:
    balance_parser = commands.add_parser("balance", parents=[json_option], help="a cluster's load and balancing recommendations")
    balance_parser.add_argument("cluster", help="cluster name")
    balance_parser.add_argument("--apply", action="store_true", help="submit every recommendation")
    balance_parser.add_argument("--user", help="record the moves as requested by this vmotion user (an Operator)")
    balance_parser.set_defaults(handler=run_balance)


def run_balance(out: Output, cluster, apply, user, **_):
    found = find_cluster(out, cluster)
    state = balancing.cluster_balance(found)
    names = {host.pk: host.name for host, _ in state.hosts}
    for host, load in state.hosts:
        out.say(f"  {host.name:<20} CPU {load.cpu_cores_used:6.2f} of {load.cpu_cores} cores  memory in use {load.memory_in_use_bytes / 1024**3:6.1f} GiB  {load.running_vms} running")
    out.say(f"load spread {state.spread:.3f}")
    forecasts = balancing.forecast_recommendations(state)
    for r in state.recommendations:
        out.say(f"  move {r.vm.facts.name} {r.vm.facts.host_name} -> {names[r.destination_id]}: spread {r.spread_before:.3f} -> {r.spread_after:.3f}, {_forecast_text(forecasts[r.vm.vm_id])}")
    if not state.recommendations:
        out.say(f"no move is worth a migration at threshold {state.policy.threshold}")
    tasks = []
    if apply:
        if refusal := balancing.apply_refusal(state.policy):
            out.fail(refusal)
        requester = acting_user(user, Role.OPERATOR)
        tasks = [balancing.apply(state, r, requested_by=requester) for r in state.recommendations]
        for task in tasks:
            out.say(f"task #{task.pk} queued: {task.vm.name} {task.source.name} -> {task.destination.name}")
    out.result({
        "cluster": found.name, "spread": state.spread,
        "hosts": [{"host": host.name, "cpu_cores_used": load.cpu_cores_used, "cpu_cores": load.cpu_cores, "memory_in_use_bytes": load.memory_in_use_bytes} for host, load in state.hosts],
        "recommendations": [
            {"vm": r.vm.facts.name, "from": r.vm.facts.host_name, "to": names[r.destination_id], "spread_before": r.spread_before, "spread_after": r.spread_after,
             **_forecast_fields(forecasts[r.vm.vm_id])}
            for r in state.recommendations
        ],
        "tasks": [task.pk for task in tasks],
    })


def _forecast_text(move) -> str:
    if move.forecast is None:
        return f"no forecast ({move.error})"
    prediction = move.forecast.prediction
    return f"about {prediction.total_ms / 1000:.1f} s with a {prediction.downtime_ms} ms pause"


def _forecast_fields(move) -> dict:
    prediction = move.forecast.prediction if move.forecast else None
    return {"predicted_total_ms": prediction.total_ms if prediction else None, "predicted_downtime_ms": prediction.downtime_ms if prediction else None}
