#!/usr/bin/env python3
"""Load held: at least 100 migrations, four at a time across three hosts, every one of which
must succeed with every guest intact.

    .venv/bin/python bench/soak.py                   # 25 rounds of 4 = 100 migrations
    .venv/bin/python bench/soak.py --rounds 50

Each round submits one migration for each of four guests at once, each to the next host of
three, under the default limits (2 out and 2 in per host, 8 in all) with four workers, and
waits for all four. After each round virsh must show every guest on its destination alone.
At the end every guest's serial log must show it kept running with its memory intact.

Root only. Its own lab (/var/lib/vmotion-bench-soak, netns vmotion-soak; six 192 MiB guests,
four of them moving, each rewriting 32 MiB at 5 MB/s), PostgreSQL database
vmotion_bench_soak, Redis database 9. Prints each round and the summary; the JSON goes to
bench/results/soak-<timestamp>.json.
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

LAB_DIR = Path("/var/lib/vmotion-bench-soak")
NETNS = "vmotion-soak"
DATABASE = "vmotion_bench_soak"
MOVING = ["lab-vm1", "lab-vm2", "lab-vm3", "lab-vm4"]
WORKERS = 4
ROUND_TIMEOUT_S = 180


def run_round(number: int, lab: lab_setup.BenchLab) -> dict:
    from inventory.models import Host, VirtualMachine
    from migrations_app import services
    from migrations_app.choices import FINAL_STATES
    from migrations_app.errors import MigrationRequestError
    from migrations_app.models import MigrationTask

    hosts = list(Host.objects.order_by("name"))
    started = time.monotonic()
    tasks, refused = [], []
    for name in MOVING:
        vm = VirtualMachine.objects.select_related("host").get(name=name)
        destination = hosts[(hosts.index(vm.host) + 1) % len(hosts)]
        try:
            tasks.append(services.submit_migration(vm, destination, services.MigrationOptions()))
        except MigrationRequestError as error:  # a move that was not even started is a miss too
            refused.append({
                "task": None, "guest": name, "destination": destination.name, "state": "refused", "total_ms": None,
                "downtime_ms": None, "running_on": lab.running_on(name), "error": str(error), "ok": False,
            })  # fmt: skip
    ids = [task.pk for task in tasks]
    while MigrationTask.objects.filter(pk__in=ids).exclude(state__in=FINAL_STATES).exists():
        if time.monotonic() - started > ROUND_TIMEOUT_S:
            for task in MigrationTask.objects.filter(pk__in=ids).exclude(state__in=FINAL_STATES):
                services.cancel_task(task)
            break
        time.sleep(0.25)
    rows = refused
    for task in MigrationTask.objects.filter(pk__in=ids).select_related("vm", "destination"):
        running_on = lab.running_on(task.vm.name)
        rows.append({
            "task": task.pk, "guest": task.vm.name, "destination": task.destination.name, "state": task.state,
            "total_ms": task.total_ms, "downtime_ms": task.downtime_ms, "running_on": running_on, "error": task.error,
            "ok": task.state == "succeeded" and running_on == [task.destination.name],
        })  # fmt: skip
    return {"round": number, "seconds": round(time.monotonic() - started, 1), "rows": rows}


def main(argv: list[str]) -> int:
    parser = script.argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=25, help="rounds of four migrations (25)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    parser.add_argument("--stop-at-miss", action="store_true", help="stop after the first round with a miss and leave the lab up to inspect")
    args = parser.parse_args(argv)
    lock = script.as_root_alone(LAB_DIR)  # held until this process exits
    if lock is None:
        return 2
    env = fleet.environment(LAB_DIR, DATABASE, redis_db=9)
    control_plane.configure_this_process(env)
    config = LabConfig(
        lab_dir=LAB_DIR, netns=NETNS, host_count=3, guest_count=6, guest_memory_mib=192,
        workloads={name: GuestWorkload(dirty_mb=32, dirty_rate=5) for name in MOVING},
    )  # fmt: skip
    rounds, processes, problems = [], [], {}
    path = RESULTS_DIR / f"soak-{datetime.now():%Y%m%d-%H%M%S}.json"
    try:
        run_command(["bash", "scripts/services.sh"], timeout=60, cwd=ROOT)
        log(f"bringing the lab up in {LAB_DIR} (netns {NETNS})")
        lab = lab_setup.BenchLab.from_state(lab_setup.bring_lab_up(config), LAB_DIR)
        fleet.fresh_database(env, DATABASE)
        control_plane.register(lab_control.status(config))
        processes = fleet.start_control_plane(env, LAB_DIR, WORKERS, "soak")
        offsets = fleet.serial_offsets(lab)
        for number in range(1, args.rounds + 1):
            result = run_round(number, lab)
            rounds.append(result)
            failed = [row for row in result["rows"] if not row["ok"]]
            log(f"round {number}: {len(result['rows']) - len(failed)}/{len(result['rows'])} arrived in {result['seconds']} s"
                + "".join(f"; {row['guest']} {row['state']} on {row['running_on']}: {row['error']}" for row in failed))  # fmt: skip
            if failed and args.stop_at_miss:
                log(f"stopped at the first miss; the lab stays up in {LAB_DIR}, the workers' logs in its bench-logs/")
                args.keep_lab = True
                break
        problems = {guest: fleet.guest_problem(lab, guest, offsets[guest]) for guest in MOVING}
    finally:
        fleet.stop_control_plane(processes)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"command": " ".join(sys.argv), "rounds": rounds, "guest_problems": problems}, indent=2, default=str) + "\n")
        if not args.keep_lab:
            lab_control.down(config, log=lab_setup.lab_log)
    rows = [row for result in rounds for row in result["rows"]]
    arrived = [row for row in rows if row["ok"]]
    totals = [row["total_ms"] for row in arrived if row["total_ms"]]
    seconds = [result["seconds"] for result in rounds]
    print(f"{len(arrived)}/{len(rows)} migrations arrived; guests intact: "
          + (", ".join(f"{guest} {problem or 'yes'}" for guest, problem in problems.items()) or "not checked"))  # fmt: skip
    if totals:
        print(f"libvirt total per migration: median {statistics.median(totals)} ms, worst {max(totals)} ms; "
              f"round of four: median {statistics.median(seconds)} s, worst {max(seconds)} s")  # fmt: skip
    print(f"JSON: {path}")
    return 0 if rows and len(arrived) == len(rows) and problems and not any(problems.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
