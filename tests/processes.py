"""Real worker and scheduler processes for tests, sharing the test's database and Redis, and
the session's directory of metric files (PROMETHEUS_MULTIPROC_DIR, which tests/conftest.py
sets and every process started here inherits), as a deployment's processes share theirs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

from lab.processes import start_in_session, stop_session

ROOT = Path(__file__).resolve().parents[1]


def process_env(**extra: str) -> dict:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {**os.environ, "DATABASE_URL": url, **extra}


def start_manage(*args: str, log_name: str, **extra_env: str) -> subprocess.Popen:
    log_path = Path(f"/tmp/vmotion-test-{log_name}.log")
    return start_in_session([sys.executable, "manage.py", *args], cwd=ROOT, env=process_env(**extra_env), log_path=log_path)


def start_worker(index: int = 0, **extra_env: str) -> subprocess.Popen:
    return start_manage(
        "rqworker", "high", "default", "low", "--worker-class", "migrations_app.engine.worker.VmotionWorker",
        log_name=f"worker{index}", **extra_env,
    )


def start_inventory_worker(index: int = 0, **extra_env: str) -> subprocess.Popen:
    return start_manage(
        "rqworker", "inventory", "--worker-class", "inventory.worker.InventoryWorker", log_name=f"inventory-worker{index}", **extra_env
    )


def start_scheduler(index: int = 0, **extra_env: str) -> subprocess.Popen:
    timing = {
        "INVENTORY_SYNC_INTERVAL": "30", "MIGRATION_HOUSEKEEPING_INTERVAL": "0.5", "MIGRATION_WORKER_LOST_AFTER": "10",
        "EVACUATION_INTERVAL": "1", "SCHEDULE_INTERVAL": "1", "HEALTH_INTERVAL": "1", "BALANCING_INTERVAL": "1",
    }
    return start_manage("scheduler", log_name=f"scheduler{index or ''}", **{**timing, **extra_env})


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process this test started, and its children (an RQ work horse)."""
    stop_session(process, sig)


def stop_all(started: list[subprocess.Popen], sig: int = signal.SIGTERM, grace: float = 30) -> None:
    """Stop several processes this test started, and their children: all are signalled
    first, so that their shutdowns overlap, then each is waited for (and killed, with its
    children, if it outlives the grace period)."""
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
    deadline = time.monotonic() + grace
    for process in started:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def submit_with_cli(vm: str, destination: str, *options: str, **extra_env: str) -> int:
    """`vmotion migrate` in a process of its own, as an operator types it; returns the task's id."""
    result = subprocess.run(
        [sys.executable, "manage.py", "vmotion", "migrate", vm, "--to", destination, *options, "--json"],
        cwd=ROOT, env=process_env(**extra_env), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["task"]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """`predicate()`'s first true value, asked every `interval` s; AssertionError naming
    `what` if none comes within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what}")
