"""The product under test: its environment (a SQLite database in the lab dir, Redis database 13),
a fresh database with the lab registered in its inventory, `manage.py` calls, and the RQ worker and
scheduler, restarted when the engine's sources change under them."""

from __future__ import annotations

import hashlib
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.config import MANAGE_TIMEOUT_S, ROOT, VENV_PYTHON, log
from lab.commands import run_command
from lab.processes import start_in_session, stop_session

# The engine's sources (the product's packages): what a worker runs.
CODE_DIRS = ("core", "hypervisor", "inventory", "migrations_app", "vmotion")
# What configure_this_process copies into this process's environment, for Django here.
DJANGO_ENV_KEYS = ("DJANGO_SETTINGS_MODULE", "DEBUG", "HTTPS", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LIBVIRT_LOCAL_INSTALL", "LIBVIRT_URI_DIRS")
QUEUES = ("high", "default", "low")


def bench_environment(lab_dir: Path) -> dict:
    return {
        **os.environ,
        # The engine as deployed: DEBUG off (on, Django keeps every query it runs) and the
        # scheduler's housekeeping at its default interval. No page is served, so plain HTTP.
        "DJANGO_SETTINGS_MODULE": "vmotion.settings",
        "DEBUG": "0",
        "HTTPS": "0",
        "SECRET_KEY": "bench",
        "DATABASE_URL": f"sqlite:///{lab_dir}/bench.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:6379/13",
        # The lab's hosts answer on unix sockets in its directory, whose keys and certificates
        # its URIs name: a lab install.
        "LIBVIRT_LOCAL_INSTALL": "1",
        "LIBVIRT_URI_DIRS": f"~/.ssh,/etc/pki,{lab_dir}",
        "PYTHONUNBUFFERED": "1",
    }


def configure_this_process(env: dict) -> None:
    """This process's Django as the bench's control plane's (`register` sets it up), from the project root."""
    os.environ.update({key: env[key] for key in DJANGO_ENV_KEYS})
    os.chdir(ROOT)


def manage_command(*args: str) -> list[str]:
    return [str(VENV_PYTHON), "manage.py", *args]


def run_manage(env: dict, *args: str, check: bool = True, timeout: float = MANAGE_TIMEOUT_S) -> subprocess.CompletedProcess:
    return run_command(manage_command(*args), timeout=timeout, check=check, cwd=ROOT, env=env)


def fresh_database(lab_dir: Path, env: dict) -> None:
    """A fresh inventory and task history per bench."""
    database = lab_dir / "bench.sqlite3"
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    log("database: manage.py migrate")
    run_manage(env, "migrate", "--noinput", timeout=300)


def register(lab_state) -> None:
    """Django in this process; empty queues; the lab's hosts and guests in the inventory."""
    import django

    django.setup()
    import django_rq
    from django.db import connection

    from devsupport.register import register_lab

    for name in QUEUES:
        django_rq.get_queue(name).empty()
    register_lab(lab_state)
    connection.close()


def code_fingerprint() -> str:
    """A hash of the engine's Python sources: others edit them while the bench runs, and an RQ
    worker started before an edit keeps some modules old while it imports others anew."""
    digest = hashlib.sha1()
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def git_revision() -> str:
    head = run_command(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT).stdout.strip() or "?"
    dirty = run_command(["git", "status", "--porcelain", "--", *CODE_DIRS], check=False, cwd=ROOT).stdout.strip()
    return head + (" + uncommitted changes" if dirty else "")


class Workers:
    """The RQ worker and the scheduler, each in a session of its own (anything they
    fork stops with them), logs in <lab dir>/bench-logs/; `code_history` records each (re)start."""

    def __init__(self, env: dict, lab_dir: Path):
        self.env, self.log_dir = env, lab_dir / "bench-logs"
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.code = ""
        self.code_history: list[dict] = []

    def start(self) -> None:
        self.log_dir.mkdir(exist_ok=True)
        self.code = code_fingerprint()
        self.code_history.append({"at": datetime.now(UTC).isoformat(timespec="seconds"), "code": self.code, "git": git_revision()})
        generation = len(self.code_history)
        worker = ["rqworker", *QUEUES, "--worker-class", "migrations_app.engine.worker.VmotionWorker"]
        self.processes = [
            self._start("rqworker", worker, self.log_dir / f"worker-{generation}.log"),
            self._start("scheduler", ["scheduler"], self.log_dir / f"scheduler-{generation}.log"),
        ]

    def _start(self, name: str, args: list[str], log_path: Path) -> tuple[str, subprocess.Popen]:
        process = start_in_session(manage_command(*args), cwd=ROOT, env=self.env, log_path=log_path)
        log(f"{name} started (pid {process.pid}, log {log_path})")
        return name, process

    def cpu_seconds(self) -> float:
        """CPU time the worker and the scheduler used so far, with their ended children (the
        worker runs each job in a child it waits for)."""
        total = 0.0
        for _, process in self.processes:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue  # gone: on_current_code restarts it before the next run
            # utime, stime, cutime, cstime: the 12th-15th fields after the command's name
            total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        for name, process in reversed(self.processes):
            stop_session(process)
            log(f"{name} stopped (pid {process.pid})")
        self.processes = []

    def on_current_code(self) -> None:
        """Restart both if the engine's sources changed since they started, or one died."""
        current = code_fingerprint()
        if current != self.code or not all(process.poll() is None for _, process in self.processes):
            log(f"  engine code changed ({self.code} -> {current}) or a worker died: restarting the worker and the scheduler")
            self.stop()
            self.start()
