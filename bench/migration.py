#!/usr/bin/env python3
"""Migration benchmark: vmotion's engine against plain `virsh migrate --live --p2p`, in the lab.

Not a timed test: it measures and reports. For each cell (bandwidth cap x guest dirty rate) a
1 GiB guest rewriting a 256 MiB working set at 0, 20, 100 or 400 MB/s is migrated from one lab
host to the other by plain virsh (libvirt's defaults, plus --bandwidth in capped cells) and by
the engine (`manage.py vmotion migrate`, through a real RQ worker), one after the other, each
move going back the way the previous one came. A TCP client of the guest (EchoProbe, inside the
lab's network namespace) and a serial-heartbeat watcher run during every migration.

    .venv/bin/python bench/migration.py                       # everything, ~15-25 min
    .venv/bin/python bench/migration.py --rates 0,20 --caps 110 --repeat 2
    .venv/bin/python bench/migration.py --cells 110:400,uncapped:0 --engine-modes pre-copy

Prints progress and a table on stdout, a summary against the issue's targets, the engine's
timeline (`vmotion show`) for every engine run that missed a target, and writes everything as
JSON to bench/results/migration-<timestamp>.json (or --output).

Root only; uses its own lab (/var/lib/vmotion-bench, netns vmotion-bench), its own SQLite
database in that directory and Redis database 13. It stops only the processes it started.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

# One guest per dirty rate (MB/s): a guest's workload is fixed when the lab first defines it.
GUEST_FOR_RATE = {0: "lab-vm1", 20: "lab-vm2", 100: "lab-vm3", 400: "lab-vm4"}
WORKING_SET_MIB = 256
GUEST_MEMORY_MIB = 1024
GIGABIT_MIB_S = 110
UNCAPPED = None

# Bounds: nothing may hang forever.
VIRSH_CALL_TIMEOUT_S = 30  # one short virsh command
VIRSH_ABORT_AFTER_S = 45  # plain virsh at 400 MB/s over gigabit never converges (LAB.md)
VIRSH_EXIT_AFTER_ABORT_S = 30
ENGINE_TIMEOUT_S = 240  # the engine's own completion timeout is 60 s for 1 GiB; plus checks
ENGINE_EXIT_AFTER_CANCEL_S = 60
GUEST_READY_TIMEOUT_S = 180
LAB_UP_TIMEOUT_S = 900
MANAGE_TIMEOUT_S = 120
SETTLE_S = 2.0  # before each migration: heartbeats steady, dirty rate measured meanwhile
PROBE_LEAD_S = 0.5  # probes run this long before the migration starts...
PROBE_TAIL_S = 1.0  # ...and after it ended (post-copy stalls, echoes in flight)

# The targets.
TARGET_DOWNTIME_MEDIAN_MS = 50
TARGET_CLIENT_GAP_MS = 300
TARGET_400_GIGABIT_TOTAL_MS = 10_000
TARGET_IDLE_FACTOR = 1.2

ENGINE_MODES = {
    # The engine's defaults: pre-copy, auto-converge allowed, post-copy not.
    "pre-copy": [],
    # Post-copy allowed (the engine then does not use auto-converge, see policy.migration_flags_for).
    "post-copy": ["--post-copy"],
}

HEARTBEAT_RATE = re.compile(r"HB seq=\d+ mismatches=\d+ rate_kbs=(\d+)")
READY = b"VMOTION-GUEST READY"


class BenchError(Exception):
    pass


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# Arguments ------------------------------------------------------------------------------------


def parse_cap(text: str) -> int | None:
    text = text.strip().lower()
    if text in ("uncapped", "none", "0", "inf", "-"):
        return UNCAPPED
    return int(text)


def cap_label(cap: int | None) -> str:
    return "uncapped" if cap is UNCAPPED else f"{cap} MiB/s"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0,20,100,400", help="guest dirty rates, MB/s, from 0,20,100,400 (default all)")
    parser.add_argument("--caps", default="110,uncapped", help="bandwidth caps in MiB/s, 'uncapped' for none (default 110,uncapped)")
    parser.add_argument("--cells", help="explicit cells CAP:RATE,... (e.g. 110:400,uncapped:0); overrides --rates/--caps")
    parser.add_argument("--repeat", type=int, default=1, help="migrations per tool per cell (default 1)")
    parser.add_argument(
        "--engine-modes", default="pre-copy,post-copy",
        help="engine configurations to run: pre-copy (defaults: auto-converge allowed) and/or post-copy (--post-copy)",
    )  # fmt: skip
    parser.add_argument("--no-virsh", action="store_true", help="skip plain virsh (engine only)")
    parser.add_argument("--max-downtime", type=int, default=300, help="the engine's --max-downtime SLO, ms (default 300, the CLI's)")
    parser.add_argument("--quiet-wait", type=float, default=60, metavar="S",
                        help="before each migration wait up to S seconds until no other lab's QEMU runs (default 60; 0: don't)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab running at the end")
    parser.add_argument("--output", type=Path, help="JSON results file (default bench/results/migration-<timestamp>.json)")
    parser.add_argument("--lab-dir", type=Path, default=Path("/var/lib/vmotion-bench"))
    parser.add_argument("--netns", default="vmotion-bench")
    args = parser.parse_args(argv)
    if args.cells:
        cells = []
        for item in args.cells.split(","):
            cap, _, rate = item.partition(":")
            if not rate:
                parser.error(f"--cells wants CAP:RATE items, not {item!r}")
            cells.append((parse_cap(cap), int(rate)))
    else:
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
        caps = [parse_cap(c) for c in args.caps.split(",") if c.strip()]
        cells = [(cap, rate) for rate in rates for cap in caps]
    for _, rate in cells:
        if rate not in GUEST_FOR_RATE:
            parser.error(f"dirty rate {rate} is not one of {', '.join(map(str, GUEST_FOR_RATE))}")
    # Group by rate so each guest boots once; keep the order given otherwise.
    order = list(dict.fromkeys(rate for _, rate in cells))
    args.cell_list = sorted(dict.fromkeys(cells), key=lambda cell: order.index(cell[1]))
    args.engine_mode_list = [m.strip() for m in args.engine_modes.split(",") if m.strip()]
    for mode in args.engine_mode_list:
        if mode not in ENGINE_MODES:
            parser.error(f"engine mode {mode!r} is not one of {', '.join(ENGINE_MODES)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


# Processes and commands -----------------------------------------------------------------------


def run(command: list[str], timeout: float = VIRSH_CALL_TIMEOUT_S, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"{' '.join(command)} did not finish within {timeout:g} s") from error
    if check and result.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
    return result


def virsh(uri: str, *args: str, timeout: float = VIRSH_CALL_TIMEOUT_S, check: bool = True) -> subprocess.CompletedProcess:
    return run(["virsh", "-c", uri, *args], timeout=timeout, check=check)


class ManagedProcess:
    """A long-running process this bench starts in its own session and stops by its pid's group."""

    def __init__(self, name: str, command: list[str], env: dict, log_path: Path):
        self.name, self.log_path = name, log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        log(f"{name} started (pid {self.process.pid}, log {log_path})")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        # The group is the one this process leads (start_new_session): it and the RQ work horse it forks.
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        self._log.close()
        log(f"{self.name} stopped (pid {self.process.pid})")


# The lab --------------------------------------------------------------------------------------


@dataclass
class Hosts:
    uri: dict[str, str]  # name -> management URI (unix socket, from here)
    peer_uri: dict[str, str]  # name -> how the other host's libvirtd reaches it

    @property
    def names(self) -> list[str]:
        return sorted(self.uri)

    def other(self, name: str) -> str:
        return next(h for h in self.names if h != name)


def bring_lab_up(config) -> object:
    from lab import control as lab_control

    outcome: dict = {}

    def up():
        try:
            outcome["state"] = lab_control.up(config, log=lambda line: log(f"lab: {line}"))
        except BaseException as error:  # reported below, in the main thread
            outcome["error"] = error

    thread = threading.Thread(target=up, name="lab up", daemon=True)
    thread.start()
    thread.join(LAB_UP_TIMEOUT_S)
    if thread.is_alive():
        raise BenchError(f"the lab did not come up within {LAB_UP_TIMEOUT_S} s")
    if "error" in outcome:
        raise BenchError(f"the lab did not come up: {outcome['error']}") from outcome["error"]
    return outcome["state"]


def domains_on(uri: str, all_domains: bool = False) -> set[str]:
    args = ["list", "--name"] + (["--all"] if all_domains else [])
    return {line.strip() for line in virsh(uri, *args).stdout.splitlines() if line.strip()}


def running_on(hosts: Hosts, guest: str) -> list[str]:
    return [h for h in hosts.names if guest in domains_on(hosts.uri[h])]


def defined_on(hosts: Hosts, guest: str) -> list[str]:
    return [h for h in hosts.names if guest in domains_on(hosts.uri[h], all_domains=True)]


def check_guest_definition(hosts: Hosts, host: str, guest: str, rate: int) -> None:
    """The guest's workload is on its kernel command line, fixed when first defined: check it."""
    xml = virsh(hosts.uri[host], "dumpxml", "--inactive", guest).stdout
    cmdline = re.search(r"<cmdline>(.*?)</cmdline>", xml)
    memory = re.search(r"<memory unit='KiB'>(\d+)</memory>", xml)
    expected = f"dirty_mb={WORKING_SET_MIB} dirty_rate={rate}"
    if not cmdline or expected not in cmdline[1] or not memory or int(memory[1]) != GUEST_MEMORY_MIB * 1024:
        raise BenchError(
            f"{guest} on {host} is not the bench's guest (wants {GUEST_MEMORY_MIB} MiB and '{expected}', has "
            f"{int(memory[1]) // 1024 if memory else '?'} MiB and {cmdline[1] if cmdline else 'no cmdline'!r}): "
            "this lab dir was set up differently; use another --lab-dir or bring it down and remove its guests' definitions"
        )


def only_guest_running(hosts: Hosts, guest: str, serial_log: Path, rate: int) -> str:
    """Destroy every other guest, start this one if it is not running; returns its host."""
    for host in hosts.names:
        for other in domains_on(hosts.uri[host]):
            if other != guest:
                result = virsh(hosts.uri[host], "destroy", other, check=False)
                log(f"{other}: destroyed on {host} (one guest at a time)" if result.returncode == 0 else f"{other}: destroy on {host}: {result.stderr.strip()}")
    where = running_on(hosts, guest)
    if len(where) > 1:
        raise BenchError(f"{guest} runs on {', '.join(where)} at once")
    if where:
        check_guest_definition(hosts, where[0], guest, rate)
        return where[0]
    defined = defined_on(hosts, guest)
    if len(defined) != 1:
        raise BenchError(f"{guest} should be defined on exactly one host, is on {defined or 'none'}")
    host = defined[0]
    check_guest_definition(hosts, host, guest, rate)
    offset = serial_log.stat().st_size if serial_log.exists() else 0
    virsh(hosts.uri[host], "start", guest)
    log(f"{guest}: started on {host}; waiting for READY and heartbeats")
    wait_until_ready(serial_log, offset)
    return host


def wait_until_ready(serial_log: Path, offset: int) -> None:
    deadline = time.monotonic() + GUEST_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if serial_log.exists():
            with serial_log.open("rb") as f:
                f.seek(offset)
                text = f.read()
            ready = text.find(READY)
            if ready >= 0 and text.count(b"HB seq=", ready) >= 10:  # about 1 s of heartbeats
                return
        time.sleep(0.2)
    raise BenchError(f"no READY line and heartbeats in {serial_log} within {GUEST_READY_TIMEOUT_S} s")


def measure_guest(serial_log: Path, seconds: float) -> float | None:
    """Waits `seconds`, returns the guest's own dirty rate meanwhile (MB/s, from its heartbeats)."""
    offset = serial_log.stat().st_size
    time.sleep(seconds)
    with serial_log.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    rates = [int(m[1]) for m in HEARTBEAT_RATE.finditer(text)]
    return round(statistics.mean(rates) / 1000, 1) if rates else None


def resident_bytes(uri: str, guest: str) -> int | None:
    """QEMU's resident memory for the guest: the memory in use a first pre-copy pass sends."""
    result = virsh(uri, "dommemstat", guest, check=False)
    match = re.search(r"^rss (\d+)", result.stdout, re.MULTILINE)
    return int(match[1]) * 1024 if match else None


# Runs -----------------------------------------------------------------------------------------


@dataclass
class Run:
    cap_mib_s: int | None
    rate_mb_s: int
    repeat: int
    tool: str  # "virsh", "engine pre-copy", "engine post-copy"
    guest: str
    source: str
    destination: str
    started_at: str = ""
    converged: bool = False
    outcome: str = ""  # what happened, in a few words
    total_ms: int | None = None  # libvirt's job time (time_elapsed)
    wall_ms: int | None = None  # virsh: the command; engine: task submitted -> finished
    downtime_ms: int | None = None
    bytes: int | None = None  # data processed
    iterations: int | None = None
    predicted_total_ms: int | None = None
    predicted_downtime_ms: int | None = None
    prediction: str = ""
    task: int | None = None
    error: str = ""
    memory_in_use_bytes: int | None = None
    guest_dirty_rate_mb_s: float | None = None  # what the guest achieved just before, by its heartbeats
    client_gap_ms: float | None = None
    client_intact: bool | None = None
    client_reconnects: int | None = None
    client_error: str | None = None
    serial_gap_ms: float | None = None
    guest_kept_running: bool | None = None
    guest_mismatches: int | None = None
    code: str = ""  # code_fingerprint() when the migration started
    code_changed_during: bool = False
    loadavg_1m: float | None = None
    foreign_qemu: int | None = None  # other QEMU processes on the machine (other labs) at the start
    foreign_qemu_after: int | None = None  # and at the end

    @property
    def contended(self) -> bool:
        """Other labs' guests shared the two CPUs during this migration."""
        return bool(self.foreign_qemu or self.foreign_qemu_after)
    libvirt_stats: dict = field(default_factory=dict)
    engine_json: dict = field(default_factory=dict)
    timeline: str = ""

    @property
    def mib_moved(self) -> float | None:
        return None if self.bytes is None else self.bytes / 2**20


class Bench:
    def __init__(self, args, hosts: Hosts, netns: str, serial_logs: dict, guest_ips: dict, env: dict, lab_dir: Path):
        self.args, self.hosts, self.netns = args, hosts, netns
        self.serial_logs, self.guest_ips, self.env, self.lab_dir = serial_logs, guest_ips, env, lab_dir
        self.runs: list[Run] = []
        self._virsh_process: subprocess.Popen | None = None
        self._virsh_source: tuple[str, str] | None = None
        self.workers: list[ManagedProcess] = []
        self.worker_code = ""
        self.code_history: list[dict] = []

    # The worker and the scheduler ------------------------------------------------------------

    def start_workers(self) -> None:
        log_dir = self.lab_dir / "bench-logs"
        log_dir.mkdir(exist_ok=True)
        self.worker_code = code_fingerprint()
        self.code_history.append({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "code": self.worker_code, "git": git_revision()})
        generation = len(self.code_history)
        self.workers = [
            ManagedProcess("rqworker", [str(VENV_PYTHON), "manage.py", "rqworker", "high", "default", "low",
                                        "--worker-class", "migrations_app.worker.VmotionWorker"], self.env, log_dir / f"worker-{generation}.log"),
            ManagedProcess("scheduler", [str(VENV_PYTHON), "manage.py", "scheduler"], self.env, log_dir / f"scheduler-{generation}.log"),
        ]  # fmt: skip

    def stop_workers(self) -> None:
        for process in reversed(self.workers):
            process.stop()
        self.workers = []

    def workers_on_current_code(self) -> None:
        current = code_fingerprint()
        if current != self.worker_code or not all(p.alive() for p in self.workers):
            log(f"  engine code changed ({self.worker_code} -> {current}) or a worker died: restarting the worker and the scheduler")
            self.stop_workers()
            self.start_workers()

    # One migration, probes around it ---------------------------------------------------------

    def measure(self, run: Run, migrate) -> Run:
        from lab.probes import EchoProbe, SerialWatcher

        uri = self.hosts.uri[run.source]
        self.wait_for_quiet()
        run.memory_in_use_bytes = resident_bytes(uri, run.guest)
        run.guest_dirty_rate_mb_s = measure_guest(self.serial_logs[run.guest], SETTLE_S)
        run.loadavg_1m = os.getloadavg()[0]
        run.code = code_fingerprint()
        run.foreign_qemu = foreign_qemu_count(self.lab_dir)
        run.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        watcher = SerialWatcher(self.serial_logs[run.guest]).start()
        echo = None
        try:
            try:
                echo = EchoProbe(self.netns, self.guest_ips[run.guest]).start()
            except Exception as error:  # noqa: BLE001 - the migration is still worth measuring
                run.client_error = f"echo probe did not start: {error}"
            time.sleep(PROBE_LEAD_S)
            migrate(run)
            run.code_changed_during = code_fingerprint() != run.code
            run.foreign_qemu_after = foreign_qemu_count(self.lab_dir)
            time.sleep(PROBE_TAIL_S)
        finally:
            if echo is not None:
                try:
                    report = echo.stop()
                    run.client_gap_ms, run.client_intact, run.client_reconnects = report.longest_gap_ms, report.intact, report.reconnects
                    run.client_error = report.error
                except Exception as error:  # noqa: BLE001
                    run.client_error = f"echo probe failed: {error}"
            try:
                serial = watcher.stop()
                run.serial_gap_ms, run.guest_kept_running, run.guest_mismatches = serial.longest_gap_ms, serial.kept_running, serial.mismatches
            except Exception as error:  # noqa: BLE001
                run.error = (run.error + f"; serial watcher failed: {error}").strip("; ")
        return run

    def wait_for_quiet(self) -> None:
        deadline = time.monotonic() + self.args.quiet_wait
        foreign = foreign_qemu_count(self.lab_dir)
        if foreign and self.args.quiet_wait > 0:
            log(f"  {foreign} QEMU processes of other labs run: waiting up to {self.args.quiet_wait:g} s for them to end")
            while foreign and time.monotonic() < deadline:
                time.sleep(2)
                foreign = foreign_qemu_count(self.lab_dir)
            log("  quiet" if not foreign else f"  still {foreign}: measuring anyway (the run is marked contended)")

    # Plain virsh -----------------------------------------------------------------------------

    def migrate_virsh(self, run: Run) -> None:
        source_uri = self.hosts.uri[run.source]
        # --persistent but not --undefinesource: the completed job's figures are read on the
        # source (as the engine does), then its inactive definition is removed by hand.
        command = ["virsh", "-c", source_uri, "migrate", "--live", "--p2p", "--persistent", run.guest, self.hosts.peer_uri[run.destination]]
        if run.cap_mib_s is not UNCAPPED:
            command += ["--bandwidth", str(run.cap_mib_s)]
        log(f"  $ {' '.join(command)}")
        started = time.monotonic()
        self._virsh_process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._virsh_source = (source_uri, run.guest)
        aborted = False
        try:
            try:
                out, err = self._virsh_process.communicate(timeout=VIRSH_ABORT_AFTER_S)
            except subprocess.TimeoutExpired:
                aborted = True
                run.libvirt_stats = rawstats(source_uri, run.guest)  # the running job, just before the abort
                log(f"  not done after {VIRSH_ABORT_AFTER_S} s (iteration {run.libvirt_stats.get('memory_iteration')}): virsh domjobabort")
                virsh(source_uri, "domjobabort", run.guest, check=False)
                try:
                    out, err = self._virsh_process.communicate(timeout=VIRSH_EXIT_AFTER_ABORT_S)
                except subprocess.TimeoutExpired:
                    self._virsh_process.kill()
                    out, err = self._virsh_process.communicate(timeout=10)
            run.wall_ms = round((time.monotonic() - started) * 1000)
            returncode = self._virsh_process.returncode
        finally:
            self._virsh_process = self._virsh_source = None
        on_destination = run.guest in domains_on(self.hosts.uri[run.destination])
        on_source = run.guest in domains_on(source_uri)
        run.converged = returncode == 0 and on_destination and not on_source and not aborted
        if aborted:
            run.outcome = f"aborted after {VIRSH_ABORT_AFTER_S} s"
            run.total_ms = run.libvirt_stats.get("time_elapsed", run.wall_ms)
            run.error = (err or out or "").strip()
        elif returncode != 0:
            run.outcome = "failed"
            run.error = (err or out or "").strip()
        else:
            run.libvirt_stats = rawstats(source_uri, run.guest, completed=True)
            if not run.libvirt_stats:  # read on the destination instead
                run.libvirt_stats = rawstats(self.hosts.uri[run.destination], run.guest, completed=True)
            run.total_ms = run.libvirt_stats.get("time_elapsed")
            run.downtime_ms = run.libvirt_stats.get("downtime")
            run.outcome = "converged" if run.converged else "exit 0 but not running on the destination alone"
        run.bytes = run.libvirt_stats.get("data_processed")
        run.iterations = run.libvirt_stats.get("memory_iteration")
        if on_destination and run.guest in domains_on(source_uri, all_domains=True) and not on_source:
            virsh(source_uri, "undefine", run.guest, check=False)

    def abort_running_virsh(self) -> None:
        if self._virsh_process is not None and self._virsh_process.poll() is None:
            uri, guest = self._virsh_source
            virsh(uri, "domjobabort", guest, check=False)
            try:
                self._virsh_process.wait(timeout=VIRSH_EXIT_AFTER_ABORT_S)
            except subprocess.TimeoutExpired:
                self._virsh_process.kill()

    # The engine ------------------------------------------------------------------------------

    def migrate_engine(self, run: Run, mode: str) -> None:
        from inventory.sync import sync_all_hosts
        from django.db import connection

        self.workers_on_current_code()
        sync_all_hosts()  # plain virsh moved the guest behind the inventory's back
        connection.close()
        command = [str(VENV_PYTHON), "manage.py", "vmotion", "migrate", run.guest, "--to", run.destination,
                   "--max-downtime", str(self.args.max_downtime), "--wait", "--json", *ENGINE_MODES[mode]]  # fmt: skip
        if run.cap_mib_s is not UNCAPPED:
            command += ["--bandwidth", str(run.cap_mib_s)]
        log(f"  $ {' '.join(command[1:])}")
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue = queue.Queue()
        output: list[str] = []

        def read():
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + ENGINE_TIMEOUT_S
        cancelled_at = None
        while True:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                output.append(line)
                if not line.startswith("{"):
                    log(f"  engine: {line.strip()}")
                task = re.match(r"task #(\d+) queued", line)
                if task:
                    run.task = int(task[1])
            now = time.monotonic()
            if now > deadline and cancelled_at is None:
                cancelled_at = now
                run.error = f"the engine did not finish within {ENGINE_TIMEOUT_S} s; cancelled"
                log(f"  {run.error}")
                if run.task:
                    run_manage(self.env, "vmotion", "cancel", str(run.task), check=False)
            if cancelled_at is not None and now - cancelled_at > ENGINE_EXIT_AFTER_CANCEL_S:
                process.kill()
        process.wait(timeout=30)
        result = next((json.loads(line) for line in reversed(output) if line.startswith("{")), None)
        if result is None:
            run.outcome = "no result"
            run.error = (run.error + " " + "\n".join(output[-10:])).strip()
        else:
            run.engine_json = result
            run.task = result.get("task", run.task)
            run.converged = result.get("state") == "succeeded"
            run.outcome = result.get("state", "?")
            run.total_ms, run.downtime_ms = result.get("total_ms"), result.get("downtime_ms")
            run.bytes, run.iterations = result.get("bytes"), result.get("iterations")
            run.predicted_total_ms, run.predicted_downtime_ms = result.get("predicted_total_ms"), result.get("predicted_downtime_ms")
            run.error = result.get("error") or run.error
        if run.task:
            self._read_task(run)

    def _read_task(self, run: Run) -> None:
        from django.db import connection
        from migrations_app.models import MigrationTask

        task = MigrationTask.objects.filter(pk=run.task).first()
        if task is not None:
            if task.finished_at:
                run.wall_ms = round((task.finished_at - task.created_at).total_seconds() * 1000)
            run.prediction = task.prediction
        connection.close()
        run.timeline = run_manage(self.env, "vmotion", "show", str(run.task), check=False).stdout.strip()

    # Cells -----------------------------------------------------------------------------------

    def tools(self) -> list[str]:
        return ([] if self.args.no_virsh else ["virsh"]) + [f"engine {mode}" for mode in self.args.engine_mode_list]

    def run_cells(self, results_path: Path) -> None:
        cells = self.args.cell_list
        total = len(cells) * self.args.repeat * len(self.tools())
        done = 0
        for cap, rate in cells:
            guest = GUEST_FOR_RATE[rate]
            host = only_guest_running(self.hosts, guest, self.serial_logs[guest], rate)
            for repeat in range(1, self.args.repeat + 1):
                for tool in self.tools():
                    done += 1
                    source = running_on(self.hosts, guest)
                    if len(source) != 1:
                        raise BenchError(f"{guest} runs on {source or 'no host'} before a migration")
                    host = source[0]
                    run = Run(cap, rate, repeat, tool, guest, host, self.hosts.other(host))
                    log(f"[{done}/{total}] {cap_label(cap)}, {rate} MB/s, {tool}: {guest} {run.source} -> {run.destination}")
                    if tool == "virsh":
                        self.measure(run, self.migrate_virsh)
                    else:
                        self.measure(run, lambda r, mode=tool.split(" ", 1)[1]: self.migrate_engine(r, mode))
                    self.runs.append(run)
                    log("  " + describe(run))
                    write_results(results_path, self, complete=False)


def rawstats(uri: str, guest: str, completed: bool = False) -> dict:
    """`virsh domjobinfo [--completed] --rawstats`, as numbers where they are numbers."""
    args = ["domjobinfo", guest, "--rawstats"] + (["--completed"] if completed else [])
    result = virsh(uri, *args, check=False)
    stats = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        try:
            stats[key] = int(value)
        except ValueError:
            try:
                stats[key] = float(value)
            except ValueError:
                stats[key] = value
    return stats


def foreign_qemu_count(lab_dir: Path) -> int:
    """QEMU processes not of this bench's lab: other labs running on the same two cores."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system" in cmdline.split(b"\0", 1)[0] and str(lab_dir).encode() not in cmdline:
            count += 1
    return count


CODE_DIRS = ("migrations_app", "inventory", "vmotion")


def code_fingerprint() -> str:
    """A hash of the engine's Python sources: others edit them while the bench runs, and an RQ
    worker started before an edit keeps some modules old while its work horses import others anew."""
    digest = hashlib.sha1()
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git_revision() -> str:
    head = run(["git", "rev-parse", "--short", "HEAD"], check=False).stdout.strip() or "?"
    dirty = run(["git", "status", "--porcelain", "--", *CODE_DIRS], check=False).stdout.strip()
    return head + (" + uncommitted changes" if dirty else "")


def run_manage(env: dict, *args: str, check: bool = True, timeout: float = MANAGE_TIMEOUT_S) -> subprocess.CompletedProcess:
    return run([str(VENV_PYTHON), "manage.py", *args], timeout=timeout, check=check, env=env)


def describe(run: Run) -> str:
    parts = [run.outcome or "?"]
    if run.total_ms is not None:
        parts.append(f"{run.total_ms / 1000:.1f} s")
    if run.downtime_ms is not None:
        parts.append(f"downtime {run.downtime_ms} ms")
    if run.mib_moved is not None:
        parts.append(f"{run.mib_moved:.0f} MiB")
    if run.iterations is not None:
        parts.append(f"{run.iterations} iterations")
    parts.append(f"client gap {run.client_gap_ms:.0f} ms" if run.client_gap_ms is not None else f"client: {run.client_error}")
    if run.guest_kept_running is False or run.guest_mismatches:
        parts.append(f"GUEST kept_running={run.guest_kept_running} mismatches={run.guest_mismatches}")
    if run.error and not run.converged:
        parts.append(run.error.splitlines()[0][:200])
    return ", ".join(parts)


# Report ---------------------------------------------------------------------------------------


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(runs: list[Run]) -> str:
    header = ["cap", "MB/s", "#", "tool", "conv", "total ms", "wall ms", "down ms", "MiB", "iter", "pred total", "pred down",
              "client gap", "serial gap", "guest ok", "rss MiB", "achieved MB/s", "quiet"]  # fmt: skip
    rows = [header]
    for r in runs:
        guest_ok = None if r.guest_kept_running is None else bool(r.guest_kept_running and not r.guest_mismatches)
        client = fmt(r.client_gap_ms) if r.client_gap_ms is not None else "ERR"
        if r.client_gap_ms is not None and (r.client_intact is False or r.client_reconnects):
            client += "!"  # connection broken or reconnected
        rows.append([
            "uncapped" if r.cap_mib_s is UNCAPPED else str(r.cap_mib_s), str(r.rate_mb_s), str(r.repeat), r.tool, fmt(r.converged),
            fmt(r.total_ms), fmt(r.wall_ms), fmt(r.downtime_ms), fmt(r.mib_moved), fmt(r.iterations),
            fmt(r.predicted_total_ms), fmt(r.predicted_downtime_ms), client, fmt(r.serial_gap_ms), fmt(guest_ok),
            fmt(r.memory_in_use_bytes / 2**20 if r.memory_in_use_bytes else None), fmt(r.guest_dirty_rate_mb_s),
            "no" if r.contended else "yes",
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i != 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@dataclass
class Verdict:
    target: str
    met: bool | None  # None: not measured in this run
    figure: str
    offenders: list[Run] = field(default_factory=list)


def idle_limit_ms(run: Run, all_runs: list[Run]) -> tuple[float, int] | None:
    """1.2 x memory in use / bandwidth, and the memory in use it took, for a capped idle run.

    Memory in use: the fewest bytes any tool moved in this cell. An idle guest's pre-copy sends
    each non-zero page once (later passes are a few MiB), so that is the guest's memory in use;
    QEMU's resident set (what the engine's prediction starts from) also counts QEMU's own heap
    and translation cache, and would make the target about 20 % easier.
    """
    if run.cap_mib_s is UNCAPPED or run.rate_mb_s != 0:
        return None
    moved = [r.bytes for r in all_runs if (r.cap_mib_s, r.rate_mb_s) == (run.cap_mib_s, run.rate_mb_s) and r.converged and r.bytes]
    if not moved:
        return None
    in_use = min(moved)
    return TARGET_IDLE_FACTOR * in_use / (run.cap_mib_s * 2**20) * 1000, in_use


def verdicts(runs: list[Run], all_runs: list[Run]) -> list[Verdict]:
    """The issue's targets, judged on the given runs (one tool)."""
    result = []
    if not runs:
        return result
    not_converged = [r for r in runs if not r.converged]
    result.append(Verdict(
        "converges in every cell", not not_converged,
        f"{len(runs) - len(not_converged)}/{len(runs)} converged"
        + (": not " + ", ".join(cell_name(r) for r in not_converged) if not_converged else ""),
        not_converged,
    ))  # fmt: skip
    downtimes = [r.downtime_ms for r in runs if r.converged and r.downtime_ms is not None]
    if downtimes:
        median = statistics.median(downtimes)
        over = [r for r in runs if r.downtime_ms is not None and r.downtime_ms > TARGET_DOWNTIME_MEDIAN_MS]
        result.append(Verdict(
            f"libvirt downtime median <= {TARGET_DOWNTIME_MEDIAN_MS} ms", median <= TARGET_DOWNTIME_MEDIAN_MS,
            f"median {median:g} ms of {len(downtimes)} (range {min(downtimes)}-{max(downtimes)} ms)", over if median > TARGET_DOWNTIME_MEDIAN_MS else [],
        ))  # fmt: skip
    else:
        result.append(Verdict(f"libvirt downtime median <= {TARGET_DOWNTIME_MEDIAN_MS} ms", None, "no converged run"))
    gaps = [(r.client_gap_ms, r) for r in runs]
    bad = [r for gap, r in gaps if gap is None or gap > TARGET_CLIENT_GAP_MS or r.client_intact is False or r.client_reconnects]
    worst = max((gap for gap, _ in gaps if gap is not None), default=None)
    result.append(Verdict(
        f"longest client gap <= {TARGET_CLIENT_GAP_MS} ms in every cell", not bad,
        f"worst {fmt(worst)} ms" + (": over in " + ", ".join(f"{cell_name(r)} ({fmt(r.client_gap_ms)} ms"
                                                             + (", connection broken" if r.client_intact is False or r.client_reconnects else "")
                                                             + ")" for r in bad) if bad else ""),
        bad,
    ))  # fmt: skip
    hard = [r for r in runs if r.cap_mib_s == GIGABIT_MIB_S and r.rate_mb_s == 400]
    if hard:
        slow = [r for r in hard if not r.converged or r.total_ms is None or r.total_ms > TARGET_400_GIGABIT_TOTAL_MS]
        figure = ", ".join(
            (f"{r.total_ms / 1000:.1f} s" if r.total_ms is not None else "?") + ("" if r.converged else " (not converged)")
            + (f" [wall {r.wall_ms / 1000:.1f} s]" if r.wall_ms else "") for r in hard
        )  # fmt: skip
        result.append(Verdict(f"total at 400 MB/s over gigabit <= {TARGET_400_GIGABIT_TOTAL_MS / 1000:g} s", not slow, figure, slow))
    else:
        result.append(Verdict(f"total at 400 MB/s over gigabit <= {TARGET_400_GIGABIT_TOTAL_MS / 1000:g} s", None, "cell not run"))
    idle = [(r, idle_limit_ms(r, all_runs)) for r in runs if r.rate_mb_s == 0 and r.cap_mib_s is not UNCAPPED]
    if idle:
        slow = [r for r, limit in idle if limit is None or not r.converged or r.total_ms is None or r.total_ms > limit[0]]
        figure = ", ".join(
            f"{fmt(r.total_ms)} ms vs {limit[0]:.0f} ms limit (1.2 x {limit[1] / 2**20:.0f} MiB in use / {r.cap_mib_s} MiB/s)"
            if limit else f"{cell_name(r)}: no converged run to measure memory in use"
            for r, limit in idle
        )
        result.append(Verdict(f"idle total <= {TARGET_IDLE_FACTOR} x memory in use / bandwidth", not slow, figure, slow))
    else:
        result.append(Verdict(f"idle total <= {TARGET_IDLE_FACTOR} x memory in use / bandwidth", None, "no capped idle cell run"))
    return result


def cell_name(run: Run) -> str:
    cap = "uncapped" if run.cap_mib_s is UNCAPPED else f"{run.cap_mib_s}"
    return f"{cap}/{run.rate_mb_s}" + (f"#{run.repeat}" if run.repeat > 1 else "") + (" [contended]" if run.contended else "")


def summary(bench: Bench) -> tuple[str, dict, list[Run]]:
    lines, data, missed = [], {}, []
    for tool in bench.tools():
        runs = [r for r in bench.runs if r.tool == tool]
        judged = verdicts(runs, bench.runs)
        data[tool] = [{"target": v.target, "met": v.met, "figure": v.figure} for v in judged]
        lines.append(f"{tool}:")
        for v in judged:
            mark = "n/a    " if v.met is None else ("met    " if v.met else "NOT MET")
            lines.append(f"  {mark} {v.target}: {v.figure}")
            if tool.startswith("engine"):
                missed += [r for r in v.offenders if r not in missed]
    return "\n".join(lines), data, missed


def write_results(path: Path, bench: Bench, complete: bool, extra: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _, targets, _ = summary(bench) if bench.runs else ("", {}, [])
    document = {
        "complete": complete,
        "command": " ".join([sys.executable, *sys.argv]),
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cells": [{"cap_mib_s": cap, "rate_mb_s": rate, "guest": GUEST_FOR_RATE[rate]} for cap, rate in bench.args.cell_list],
        "tools": bench.tools(),
        "engine_code": bench.code_history,  # git revision and source hash each time the worker (re)started
        "targets": targets,
        "runs": [{**asdict(r), "mib_moved": r.mib_moved, "contended": r.contended} for r in bench.runs],
        **(extra or {}),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2, default=str) + "\n")
    temporary.replace(path)


# Main -----------------------------------------------------------------------------------------


def hold_bench_lock(lab_dir: Path):
    """One bench per lab dir: a second one would destroy the first one's guest, and its cleanup
    would take the lab down under it. Returns the open lock file (keep it open), or None."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    lock = (lab_dir / "bench.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        print(f"another bench runs in {lab_dir} ({holder}): wait for it, or use another --lab-dir and --netns", file=sys.stderr)
        return None
    lock.truncate(0)
    lock.write(f"pid {os.getpid()}, started {datetime.now():%H:%M:%S}: {' '.join(sys.argv)}\n")
    lock.flush()
    return lock


def bench_environment(lab_dir: Path) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vmotion.settings",
        "DEBUG": "1",
        "SECRET_KEY": "bench",
        "DATABASE_URL": f"sqlite:///{lab_dir}/bench.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        "MIGRATION_HOUSEKEEPING_INTERVAL": "0.5",
        "PYTHONUNBUFFERED": "1",
    }


def versions(uri: str) -> dict:
    text = virsh(uri, "version", check=False).stdout
    return {"virsh version": " / ".join(line.strip() for line in text.splitlines() if line.strip()), "kernel": platform.release(), "cpus": os.cpu_count()}


def main(argv: list[str]) -> int:
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and VENV_PYTHON.exists() and not os.environ.get("VMOTION_BENCH_REEXEC"):
        os.environ["VMOTION_BENCH_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *argv])
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench/migration.py runs libvirt hosts: run it as root", file=sys.stderr)
        return 2
    lab_dir = args.lab_dir.absolute()
    bench_lock = hold_bench_lock(lab_dir)  # held until this process exits
    if bench_lock is None:
        return 2
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results_path = (args.output or ROOT / "bench" / "results" / f"migration-{stamp}.json").absolute()
    env = bench_environment(lab_dir)
    os.environ.update({k: env[k] for k in ("DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "MIGRATION_HOUSEKEEPING_INTERVAL")})
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)

    def terminate(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)

    from lab import control as lab_control
    from lab.config import GuestWorkload, LabConfig

    config = LabConfig(
        lab_dir=lab_dir, netns=args.netns, host_count=2, guest_count=len(GUEST_FOR_RATE), guest_memory_mib=GUEST_MEMORY_MIB,
        workloads={guest: GuestWorkload(dirty_mb=WORKING_SET_MIB, dirty_rate=rate) for rate, guest in GUEST_FOR_RATE.items()},
    )  # fmt: skip
    log(f"cells: {', '.join(f'{cap_label(c)} x {r} MB/s' for c, r in args.cell_list)}; repeat {args.repeat}; results -> {results_path}")
    bench = None
    started = time.monotonic()
    status = 1
    extra: dict = {"lab_dir": str(lab_dir), "netns": args.netns}
    try:
        run(["bash", "scripts/services.sh"], timeout=60)  # Redis, if none answers
        log(f"bringing the lab up in {lab_dir} (netns {args.netns}); the first time builds the guest image")
        state = bring_lab_up(config)
        hosts = Hosts({h.name: h.uri for h in state.hosts}, {h.name: h.peer_uri for h in state.hosts})
        extra.update(accel=state.accel, versions=versions(hosts.uri[hosts.names[0]]))
        log(f"lab up: {', '.join(hosts.names)}; guests under {state.accel}")
        # Only one guest runs at a time: stop the others now, before they compete for the CPUs.
        first_guest = GUEST_FOR_RATE[args.cell_list[0][1]]
        for host in hosts.names:
            for guest in domains_on(hosts.uri[host]):
                if guest != first_guest:
                    virsh(hosts.uri[host], "destroy", guest, check=False)

        database = lab_dir / "bench.sqlite3"
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)  # a fresh inventory and task history per run
        log("database: manage.py migrate")
        run_manage(env, "migrate", "--noinput", timeout=300)
        import django

        django.setup()
        import django_rq
        from django.db import connection
        from devsupport.register import register_lab

        for name in ("high", "default", "low"):
            django_rq.get_queue(name).empty()
        register_lab(lab_control.status(config))
        connection.close()
        bench = Bench(
            args, hosts, state.netns,
            serial_logs={g.name: Path(g.serial_log) for g in state.guests},
            guest_ips={g.name: g.ip for g in state.guests}, env=env, lab_dir=lab_dir,
        )  # fmt: skip
        bench.start_workers()
        bench.run_cells(results_path)
        status = 0
    except KeyboardInterrupt as interrupt:
        log(f"interrupted ({interrupt}): cleaning up")
        extra["interrupted"] = str(interrupt)
        status = 130
    except Exception as error:  # noqa: BLE001 - report, clean up, keep the partial results
        log(f"FAILED: {error}")
        extra["failure"] = traceback.format_exc()
    finally:
        if bench is not None:
            bench.abort_running_virsh()
            bench.stop_workers()
        extra["duration_s"] = round(time.monotonic() - started)
        if bench is not None:
            report(bench, results_path, complete=status == 0, extra=extra)
        if args.keep_lab:
            log(f"lab kept: python -m lab down with VMOTION_LAB_DIR={lab_dir} VMOTION_LAB_NETNS={args.netns} stops it")
        else:
            try:
                lab_control.down(config, log=lambda line: log(f"lab: {line}"))
            except Exception as error:  # noqa: BLE001
                log(f"lab down failed: {error}")
                status = status or 1
    return status


def report(bench: Bench, results_path: Path, complete: bool, extra: dict) -> None:
    write_results(results_path, bench, complete=complete, extra=extra)
    if not bench.runs:
        log(f"no run finished; {results_path}")
        return
    print()
    print("Migrations (total = libvirt's job time; wall = virsh command / engine task submitted->finished;")
    print("client gap = longest stall a TCP client of the guest saw, '!' = connection broken; achieved = guest's own dirty rate; rss = QEMU's resident memory before;")
    print("quiet = no other lab's QEMU ran on the machine at the start or the end of the migration)")
    print(table(bench.runs))
    contended = [r for r in bench.runs if r.contended]
    loads = [r.loadavg_1m for r in bench.runs if r.loadavg_1m is not None]
    if contended:
        print(f"Note: {len(contended)} of {len(bench.runs)} migrations ran while other labs' QEMU processes shared the "
              f"{os.cpu_count()} CPUs (quiet = no; 1-min load {min(loads):.1f}-{max(loads):.1f}): their figures include that contention.")
    versions_seen = list(dict.fromkeys(r.code for r in bench.runs if r.code))
    changed = [r for r in bench.runs if r.code_changed_during]
    if len(versions_seen) > 1 or changed:
        print(f"WARNING: the engine's code changed during this bench ({len(versions_seen)} versions: {', '.join(versions_seen)}"
              + (f"; during {', '.join(f'{r.tool} {cell_name(r)}' for r in changed)}" if changed else "")
              + "): see engine_code and each run's code in the JSON.")
    text, _, missed = summary(bench)
    print()
    print("Targets:")
    print(text)
    if missed:
        print()
        print("Engine timelines of the runs that missed a target:")
        for run in missed:
            print(f"--- {run.tool}, {cell_name(run)} (task #{run.task}) ---")
            print(run.timeline or "(no timeline)")
    print()
    print(f"JSON: {results_path}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
