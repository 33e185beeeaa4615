"""What is measured around one migration: the guest's own dirty rate just before, QEMU's resident
memory, the machine's load and other labs' QEMU processes, libvirt's raw job statistics, and the
probes (a TCP echo client of the guest and a serial-heartbeat watcher) running throughout."""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.config import PROBE_LEAD_S, PROBE_TAIL_S, SETTLE_S, log
from bench.control_plane import code_fingerprint
from bench.lab_setup import BenchLab
from bench.runs import Run
from lab.commands import virsh
from lab.probes import EchoProbe, SerialWatcher

HEARTBEAT_RATE = re.compile(r"HB seq=\d+ mismatches=\d+ rate_kbs=(\d+)")


def measured(run: Run, migrate: Callable[[Run], None], lab: BenchLab, quiet_wait: float) -> Run:
    """Fill `run` with what `migrate(run)` did to the guest and its client, and with the
    conditions it ran under."""
    uri = lab.uri[run.source]
    wait_for_quiet(lab.lab_dir, quiet_wait)
    run.memory_in_use_bytes = resident_bytes(uri, run.guest)
    run.guest_dirty_rate_mb_s = measure_guest(lab.serial_logs[run.guest], SETTLE_S)
    run.loadavg_1m = os.getloadavg()[0]
    run.code = code_fingerprint()
    run.foreign_qemu = foreign_qemu_count(lab.lab_dir)
    run.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    watcher = SerialWatcher(lab.serial_logs[run.guest]).start()
    echo = None
    try:
        try:
            echo = EchoProbe(lab.netns, lab.guest_ips[run.guest]).start()
        except Exception as error:  # noqa: BLE001 - the migration is still worth measuring
            run.client_error = f"echo probe did not start: {error}"
        time.sleep(PROBE_LEAD_S)
        migrate(run)
        run.code_changed_during = code_fingerprint() != run.code
        run.foreign_qemu_after = foreign_qemu_count(lab.lab_dir)
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
            run.guest_heartbeats = serial.heartbeats
        except Exception as error:  # noqa: BLE001
            run.error = (run.error + f"; serial watcher failed: {error}").strip("; ")
    return run


def wait_for_quiet(lab_dir: Path, quiet_wait: float) -> None:
    """Wait up to `quiet_wait` seconds for other labs' QEMU processes to end."""
    deadline = time.monotonic() + quiet_wait
    foreign = foreign_qemu_count(lab_dir)
    if foreign and quiet_wait > 0:
        log(f"  {foreign} QEMU processes of other labs run: waiting up to {quiet_wait:g} s for them to end")
        while foreign and time.monotonic() < deadline:
            time.sleep(2)
            foreign = foreign_qemu_count(lab_dir)
        log("  quiet" if not foreign else f"  still {foreign}: measuring anyway (the run is marked contended)")


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
