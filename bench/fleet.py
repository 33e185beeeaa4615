"""What the benches that run several migrations at once share: a PostgreSQL database (several
workers write at once, which SQLite does not take well), several workers and the scheduler,
and each guest's serial log as the judge of its memory."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench import control_plane
from bench.lab_setup import BenchLab
from lab.commands import run_command, virsh
from lab.processes import start_in_session, stop_session
from lab.probes import READY_MARKER

ROOT = Path(__file__).resolve().parents[1]


def environment(lab_dir: Path, database: str, redis_db: int) -> dict:
    return {
        **control_plane.bench_environment(lab_dir),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}", "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
    }  # fmt: skip


def fresh_database(env: dict, database: str) -> None:
    for sql in (f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", f"CREATE DATABASE {database}"):
        run_command(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", sql], cwd=ROOT, timeout=60)
    control_plane.run_manage(env, "migrate", "--noinput", timeout=300)


def start_control_plane(env: dict, lab_dir: Path, workers: int, name: str) -> list[subprocess.Popen]:
    """`workers` migration workers and the scheduler, logs in <lab dir>/bench-logs/."""
    logs = lab_dir / "bench-logs"
    logs.mkdir(exist_ok=True)
    worker = ["rqworker", *control_plane.QUEUES, "--worker-class", "migrations_app.engine.worker.VmotionWorker"]
    started = [start_in_session(control_plane.manage_command(*worker), cwd=ROOT, env=env, log_path=logs / f"{name}-worker-{i}.log") for i in range(workers)]
    return started + [start_in_session(control_plane.manage_command("scheduler"), cwd=ROOT, env=env, log_path=logs / f"{name}-scheduler.log")]


def stop_control_plane(processes: list[subprocess.Popen]) -> None:
    for process in reversed(processes):
        stop_session(process)


def move_with_virsh(lab: BenchLab, guest: str, host: str) -> None:
    """The guest running on `host`, moved there with plain virsh if it runs elsewhere."""
    for elsewhere in lab.running_on(guest):
        if elsewhere != host:
            virsh(lab.uri[elsewhere], "migrate", "--live", "--p2p", "--persistent", "--undefinesource", guest, lab.peer_uri[host], timeout=180)


def serial_offsets(lab: BenchLab) -> dict[str, int]:
    return {guest: path.stat().st_size for guest, path in lab.serial_logs.items()}


def guest_problem(lab: BenchLab, guest: str, offset: int) -> str:
    """'' when the guest kept running with its memory intact since `offset`, else what went wrong."""
    path = lab.serial_logs[guest]
    with path.open("rb") as serial:
        serial.seek(offset if path.stat().st_size >= offset else 0)
        text = serial.read().decode(errors="replace")
    if "HB seq=" not in text:
        return "no heartbeat"
    if "MISMATCH" in text:
        return "memory mismatch"
    if READY_MARKER in text:
        return "booted again"
    return ""
