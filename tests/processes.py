"""Real worker and scheduler processes for tests, sharing the test's database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def process_env(**extra: str) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, **extra}


def start_manage(*args: str, log_name: str, **extra_env: str) -> subprocess.Popen:
    log = open(f"/tmp/vmotion-test-{log_name}.log", "w")
    return subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=process_env(**extra_env),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def start_worker(index: int = 0) -> subprocess.Popen:
    return start_manage("rqworker", "high", "default", "low", "--worker-class", "migrations_app.worker.VmotionWorker", log_name=f"worker{index}")


def start_scheduler() -> subprocess.Popen:
    return start_manage("scheduler", log_name="scheduler", INVENTORY_SYNC_INTERVAL="30", MIGRATION_HOUSEKEEPING_INTERVAL="0.5", MIGRATION_WORKER_LOST_AFTER="10")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process this test started, and its children (an RQ work horse), by process group."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
