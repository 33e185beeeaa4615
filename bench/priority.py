#!/usr/bin/env python3
"""Priority as bandwidth, measured: four 512 MiB guests leave one host at once under its
migration bandwidth budget (110 MiB/s, a gigabit link), one of them high priority.

    .venv/bin/python bench/priority.py                 # 3 rounds
    .venv/bin/python bench/priority.py --repeat 5 --budget 110

Each guest fills 384 MiB of its memory once and then only checks it. Judged per round:
- the high-priority migration ends first (libvirt's end: the task's start plus its job time);
- the link is used: the bytes libvirt moved over the time from the first start to the last
  end are at least 90 % of the budget;
- every migration succeeds with libvirt's pause within its max downtime (its SLO);
- every guest's memory is intact (its serial log: heartbeats, no page mismatch, no reboot).

Root only. Its own lab (/var/lib/vmotion-bench-priority, netns vmotion-priority), PostgreSQL
database vmotion_bench_priority, Redis database 10, four workers and the scheduler; each
round moves the guests to the other host. Prints each round and writes the JSON to
bench/results/priority-<timestamp>.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, not bench/: bench/script.py says why
    from bench import script

    script.start()

from bench import control_plane, fleet, lab_setup, script  # noqa: E402
from bench.config import RESULTS_DIR, ROOT, log  # noqa: E402
from lab import control as lab_control  # noqa: E402
from lab.commands import run_command  # noqa: E402
from lab.config import GuestWorkload, LabConfig  # noqa: E402

LAB_DIR = Path("/var/lib/vmotion-bench-priority")
NETNS = "vmotion-priority"
DATABASE = "vmotion_bench_priority"
GUESTS = 4
GUEST_MEMORY_MIB = 512
FILLED_MIB = 384
WORKERS = 4
ROUND_TIMEOUT_S = 300
TARGET_LINK_USE = 0.9


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = script.argument_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (3)")
    parser.add_argument("--budget", type=int, default=110, help="each host's migration bandwidth budget, MiB/s (110)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    return parser.parse_args(argv)


def run_round(number: int, lab: lab_setup.BenchLab, guests: list[str], budget: int) -> dict:
    from inventory.models import Host, VirtualMachine
    from inventory.sync import sync_all_hosts
    from migrations_app import services
    from migrations_app.choices import FINAL_STATES, Priority
    from migrations_app.models import MigrationTask

    source = lab.names[number % 2]
    destination = lab.other(source)
    for guest in guests:
        fleet.move_with_virsh(lab, guest, source)
    sync_all_hosts()
    time.sleep(2)  # the syncs' dirty-rate measurements, read by the next one
    sync_all_hosts()
    high_guest = guests[number % len(guests)]
    offsets = fleet.serial_offsets(lab)
    target = Host.objects.get(name=destination)
    tasks = []
    for guest in guests:
        priority = Priority.HIGH if guest == high_guest else Priority.NORMAL
        tasks.append(services.submit_migration(VirtualMachine.objects.get(name=guest), target, services.MigrationOptions(priority=priority)))
    log(f"round {number}: {', '.join(guests)} {source} -> {destination}, {high_guest} high priority")
    deadline = time.monotonic() + ROUND_TIMEOUT_S
    while MigrationTask.objects.filter(pk__in=[t.pk for t in tasks]).exclude(state__in=FINAL_STATES).exists():
        if time.monotonic() > deadline:
            log(f"  not all done within {ROUND_TIMEOUT_S} s: cancelling the rest")
            for task in MigrationTask.objects.filter(pk__in=[t.pk for t in tasks]).exclude(state__in=FINAL_STATES):
                services.cancel_task(task)
            break
        time.sleep(0.5)
    rows = []
    for task in tasks:
        task.refresh_from_db()
        ended_at = task.started_at.timestamp() + task.total_ms / 1000 if task.started_at and task.total_ms else None
        rows.append({
            "task": task.pk, "guest": task.vm.name, "priority": Priority(task.priority).label.lower(), "state": task.state,
            "started_at": task.started_at.timestamp() if task.started_at else None, "libvirt_end": ended_at,
            "total_ms": task.total_ms, "downtime_ms": task.downtime_ms, "max_downtime_ms": task.max_downtime_ms,
            "bytes": task.bytes_transferred, "error": task.error, "guest_problem": fleet.guest_problem(lab, task.vm.name, offsets[task.vm.name]),
            "bandwidth_events": [e.message for e in task.events.all() if e.message.startswith("Bandwidth ")],
        })  # fmt: skip
    return judge(rows, high_guest, budget, number, source, destination)


def judge(rows: list[dict], high_guest: str, budget: int, number: int, source: str, destination: str) -> dict:
    done = [row for row in rows if row["state"] == "succeeded" and row["libvirt_end"]]
    slo = all(row["state"] == "succeeded" and row["downtime_ms"] is not None and row["downtime_ms"] <= row["max_downtime_ms"] for row in rows)
    intact = all(not row["guest_problem"] for row in rows)
    link_use = high_first = None
    if len(done) == len(rows):
        window = max(row["libvirt_end"] for row in rows) - min(row["started_at"] for row in rows)
        link_use = sum(row["bytes"] for row in rows) / window / (budget * 2**20)
        high = next(row for row in rows if row["guest"] == high_guest)
        high_first = all(high["libvirt_end"] < row["libvirt_end"] for row in rows if row is not high)
    return {
        "round": number, "source": source, "destination": destination, "high": high_guest, "budget_mib_s": budget, "rows": rows,
        "high_first": high_first, "link_use": link_use, "slo_met": slo, "guests_intact": intact,
        "passed": bool(high_first and link_use is not None and link_use >= TARGET_LINK_USE and slo and intact),
    }  # fmt: skip


def print_round(result: dict) -> None:
    start = min((row["started_at"] for row in result["rows"] if row["started_at"]), default=0)
    for row in sorted(result["rows"], key=lambda row: row["libvirt_end"] or float("inf")):
        end = f"{row['libvirt_end'] - start:6.1f} s" if row["libvirt_end"] else "     -  "
        print(f"  {row['guest']:8} {row['priority']:6} {row['state']:9} started {row['started_at'] - start if row['started_at'] else 0:5.1f} s, "
              f"ended {end}, {(row['bytes'] or 0) / 2**20:6.0f} MiB, pause {row['downtime_ms']} ms (SLO {row['max_downtime_ms']})"
              + (f", guest: {row['guest_problem']}" if row["guest_problem"] else "") + (f", {row['error']}" if row["error"] else ""))  # fmt: skip
    use = f"{result['link_use']:.0%}" if result["link_use"] is not None else "-"
    print(f"  high first: {result['high_first']}; link use {use} of {result['budget_mib_s']} MiB/s; SLO met: {result['slo_met']}; "
          f"guests intact: {result['guests_intact']} -> {'PASS' if result['passed'] else 'FAIL'}")  # fmt: skip


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    lock = script.as_root_alone(LAB_DIR)  # held until this process exits
    if lock is None:
        return 2
    env = fleet.environment(LAB_DIR, DATABASE, redis_db=10)
    control_plane.configure_this_process(env)
    config = LabConfig(
        lab_dir=LAB_DIR, netns=NETNS, host_count=2, guest_count=GUESTS, guest_memory_mib=GUEST_MEMORY_MIB,
        workloads={f"lab-vm{i}": GuestWorkload(dirty_mb=FILLED_MIB, dirty_rate=0) for i in range(1, GUESTS + 1)},
    )  # fmt: skip
    results, processes, status = [], [], 1
    path = RESULTS_DIR / f"priority-{datetime.now():%Y%m%d-%H%M%S}.json"
    try:
        run_command(["bash", "scripts/services.sh"], timeout=60, cwd=ROOT)
        log(f"bringing the lab up in {LAB_DIR} (netns {NETNS})")
        state = lab_setup.bring_lab_up(config)
        lab = lab_setup.BenchLab.from_state(state, LAB_DIR)
        fleet.fresh_database(env, DATABASE)
        control_plane.register(lab_control.status(config))
        from inventory.models import Host
        from migrations_app.models import MigrationLimits

        MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": GUESTS, "max_incoming_per_host": GUESTS, "max_concurrent": 2 * GUESTS})
        Host.objects.update(migration_bandwidth_mib_s=args.budget)
        processes = fleet.start_control_plane(env, LAB_DIR, WORKERS, "priority")
        guests = sorted(lab.serial_logs)
        for number in range(args.repeat):
            result = run_round(number, lab, guests, args.budget)
            print_round(result)
            results.append(result)
        status = 0 if all(result["passed"] for result in results) else 1
    finally:
        fleet.stop_control_plane(processes)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"command": " ".join(sys.argv), "budget_mib_s": args.budget, "rounds": results}, indent=2, default=str) + "\n")
        if not args.keep_lab:
            lab_control.down(config, log=lab_setup.lab_log)
    uses = [result["link_use"] for result in results if result["link_use"] is not None]
    if uses:
        print(f"link use: median {statistics.median(uses):.0%}, worst {min(uses):.0%} over {len(uses)} rounds")
    print(f"{sum(result['passed'] for result in results)}/{len(results)} rounds passed; JSON: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
