#!/usr/bin/env python3
"""The fault suite: every mid-migration fault the lab tests inject, each run several times in
one lab, and the matrix of what came of it.

    .venv/bin/python bench/faults.py              # each fault 3 times, about 25 minutes
    .venv/bin/python bench/faults.py --repeat 5 --only link --only "gone from the network"

Each fault is a lab test (tests/lab/), which asserts what must hold after it: virsh shows the
guest on exactly one host, the task is final within its bound and says what happened, every
guest's memory is intact (its serial log's page checks), and no task is lost. A round runs
every fault once through the project's test command; the lab stays up between rounds and goes
down at the end.

Root only. Its own lab (/var/lib/vmotion-bench-faults, netns vmotion-faults, or --lab-dir and
--netns), test database (vmotion_faults) and Redis database (12), so it can run beside the test
suite's. Prints the matrix, with each task's seconds from the fault to its final state (every
test records them; a fault whose test recorded none is a miss), and writes it as JSON, with
the command and commit, to bench/results/faults-<timestamp>.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, not bench/: bench/script.py says why
    from bench import script

    script.start()

from bench import script  # noqa: E402
from bench.config import RESULTS_DIR, ROOT, VENV_PYTHON  # noqa: E402
from bench.control_plane import git_revision  # noqa: E402

LAB_DIR = "/var/lib/vmotion-bench-faults"
NETNS = "vmotion-faults"

# What is done to the migration, and the lab test that does it and checks the aftermath.
FAULTS = {
    "worker SIGKILLed": "tests/lab/test_migration.py::test_a_worker_killed_mid_migration_is_reconciled_with_libvirt",
    "source libvirtd stopped": "tests/lab/test_migration.py::test_a_source_lost_mid_migration_ends_with_the_vm_on_exactly_one_host[stopped]",
    "source libvirtd SIGKILLed": "tests/lab/test_migration.py::test_a_source_lost_mid_migration_ends_with_the_vm_on_exactly_one_host[sigkilled]",
    "destination libvirtd stopped": "tests/lab/test_migration.py::test_a_destination_lost_mid_migration_leaves_the_vm_running_on_the_source[stopped]",
    "destination libvirtd SIGKILLed": "tests/lab/test_migration.py::test_a_destination_lost_mid_migration_leaves_the_vm_running_on_the_source[sigkilled]",
    "destination's incoming QEMU SIGKILLed": "tests/lab/test_faults.py::test_the_destinations_incoming_qemu_killed_mid_migration_leaves_the_guest_on_its_source",
    "Redis restarted, tasks queued, global limit 1": "tests/lab/test_resilience.py::test_tasks_whose_jobs_redis_lost_in_a_restart_are_queued_again_and_all_arrive",
    "database drops the worker's connections": "tests/lab/test_faults.py::test_the_database_dropping_the_workers_connections_mid_migration_loses_nothing",
    "database restarted": "tests/lab/test_faults.py::test_the_database_restarted_mid_migration_loses_nothing",
    "migration link cut mid pre-copy": "tests/lab/test_faults.py::test_the_migration_link_cut_mid_pre_copy_fails_the_task_with_the_guest_on_its_source",
    "migration link down before the stream opens": "tests/lab/test_faults.py::test_the_migration_link_down_before_the_stream_opens_fails_the_task_within_a_minute",
    "migration link flapping": "tests/lab/test_faults.py::test_the_migration_link_flapping_mid_migration_ends_the_task_within_a_minute",
    "destination gone from the network": "tests/lab/test_faults.py::test_the_destination_gone_from_the_network_mid_migration_leaves_the_guest_on_its_source",
    "source libvirtd SIGSTOPped": "tests/lab/test_frozen_libvirtd.py::test_the_sources_libvirtd_frozen_mid_migration_is_ended_from_the_destination",
    "destination libvirtd SIGSTOPped": "tests/lab/test_frozen_libvirtd.py::test_the_destinations_libvirtd_frozen_mid_migration_is_aborted_on_the_source",
    "source's QEMU SIGSTOPped": "tests/lab/test_frozen_qemu.py::test_the_sources_qemu_frozen_mid_migration_ends_the_task_with_the_guest_on_its_source",
}


def run_round(number: int, faults: dict[str, str], results_dir: Path, lab_dir: str = LAB_DIR, netns: str = NETNS) -> dict[str, dict]:
    """Each fault once; returns its outcome, seconds (the test's, and from the fault to the
    task's final state where the test records it) and failure message by fault."""
    report = results_dir / f"faults-round-{number}.xml"
    env = {
        **os.environ, "CI": "true", "VMOTION_KEEP_LAB": "1", "VMOTION_TEST_LAB_DIR": lab_dir, "VMOTION_TEST_LAB_NETNS": netns,
        "TEST_DATABASE_NAME": "vmotion_faults", "TEST_REDIS_URL": "redis://127.0.0.1:6379/12",
    }
    # Every fault, those the test suite leaves out as taking minutes included.
    command = ["bash", "scripts/test.sh", "-q", "-p", "no:cacheprovider", "-m", "lab", f"--junitxml={report}", *faults.values()]
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return outcomes(report, faults)


def outcomes(report: Path, faults: dict[str, str]) -> dict[str, dict]:
    """Each fault's outcome from the round's JUnit report: passed only when its test passed and
    recorded the seconds from the fault to the task's final state."""
    by_test = {}
    for case in ET.parse(report).iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        to_final = _recorded(case, "seconds_to_final")
        message = "" if problem is None else (problem.get("message") or problem.tag)[:300]
        if case.find("skipped") is not None:
            message = "skipped"
        elif problem is None and to_final is None:
            message = "no time from the fault to the task's final state was recorded"  # missing data is a miss
        by_test[case.get("name")] = {
            "passed": not message,
            "seconds": float(case.get("time", 0)),
            "seconds_to_final": to_final,
            "message": message,
        }
    missing = {"passed": False, "seconds": 0.0, "seconds_to_final": None, "message": "did not run"}
    return {fault: by_test.get(test.rpartition("::")[2], missing) for fault, test in faults.items()}


def _recorded(case: ET.Element, name: str) -> float | None:
    """A figure the test recorded with pytest's record_property."""
    for prop in case.iter("property"):
        if prop.get("name") == name:
            return float(prop.get("value"))
    return None


def print_matrix(rounds: list[dict[str, dict]]) -> None:
    """Per fault: rounds passed, the seconds from the fault to the task's final state (median,
    worst, each round's) and the test's own seconds (median)."""
    print(f"\n{'fault':48} {'passed':>8} {'final s median':>15} {'worst':>6}  {'each round':18} {'test s':>7}")
    for fault in rounds[0]:
        runs = [round_[fault] for round_ in rounds]
        passed = sum(run["passed"] for run in runs)
        to_final = [run["seconds_to_final"] for run in runs if run.get("seconds_to_final") is not None]
        median = f"{statistics.median(to_final):.1f}" if to_final else "-"
        worst = f"{max(to_final):.1f}" if to_final else "-"
        each = " ".join("-" if run.get("seconds_to_final") is None else f"{run['seconds_to_final']:.1f}" for run in runs)
        test_seconds = statistics.median(run["seconds"] for run in runs)
        print(f"{fault:48} {passed:>4}/{len(runs):<3} {median:>15} {worst:>6}  {each:18} {test_seconds:>7.1f}")
        for number, run in enumerate(runs, 1):
            if not run["passed"]:
                print(f"    round {number}: {run['message']}")


def main(argv: list[str]) -> int:
    parser = script.argument_parser(__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each runs every fault once")
    parser.add_argument(
        "--only", action="append", default=[],
        help="only the faults whose name contains this (case-sensitive); repeat it for several",
    )
    parser.add_argument("--lab-dir", default=LAB_DIR)
    parser.add_argument("--netns", default=NETNS)
    args = parser.parse_args(argv)
    faults = {name: test for name, test in FAULTS.items() if not args.only or any(part in name for part in args.only)}
    if not faults or args.repeat < 1:
        parser.error(f"nothing to run: --only {args.only!r} names none of: {', '.join(FAULTS)}")
    results_dir = RESULTS_DIR
    results_dir.mkdir(parents=True, exist_ok=True)
    rounds = []
    try:
        for number in range(1, args.repeat + 1):
            started = time.monotonic()
            rounds.append(run_round(number, faults, results_dir, args.lab_dir, args.netns))
            passed = sum(run["passed"] for run in rounds[-1].values())
            print(f"round {number}: {passed}/{len(faults)} faults handled in {time.monotonic() - started:.0f} s", flush=True)
    finally:
        lab_down = [str(VENV_PYTHON), "-m", "lab", "down", "--lab-dir", args.lab_dir, "--netns", args.netns]
        subprocess.run(lab_down, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print_matrix(rounds)
    output = results_dir / f"faults-{time.strftime('%Y%m%d-%H%M%S')}.json"
    run = {"command": " ".join(["bench/faults.py", *argv]), "commit": git_revision(), "machine_load": os.getloadavg()}
    output.write_text(json.dumps({**run, "faults": faults, "rounds": rounds}, indent=2))
    print(f"\nwritten to {output.relative_to(ROOT)}")
    return 0 if all(run["passed"] for round_ in rounds for run in round_.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
