"""`make demo` runs its processes under supervisord (scripts/demo-supervisord.conf): a worker
that dies is started again and its exit and restart are logged, the demo goes on; stopping
supervisord stops every process it started. The real config, with one worker of each kind,
on a Redis of the test's own and the test database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, Worker
from rq.job import JobStatus

from lab.processes import start_in_session, stop_session
from tests.processes import process_env, wait_until
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "scripts" / "demo-supervisord.conf"
SUPERVISORCTL = Path(sys.executable).parent / "supervisorctl"
SUPERVISORD = Path(sys.executable).parent / "supervisord"



def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_that_dies_is_started_again_and_logged_and_stopping_the_demo_stops_all(own_redis, tmp_path):
    env = process_env(
        REDIS_URL=own_redis.url, VMOTION_DEMO_STATE=str(tmp_path), VMOTION_DEMO_PORT=str(free_port()),
        VMOTION_WORKERS="1", VMOTION_INVENTORY_WORKERS="1", DEBUG="1",  # as scripts/demo.sh runs the web server
    )

    def ctl(*args: str) -> str:
        return subprocess.run([SUPERVISORCTL, "-c", CONFIG, *args], env=env, capture_output=True, text=True, timeout=30).stdout

    def running_pid(name: str) -> int:
        status = ctl("status", name)
        return int(re.search(r"RUNNING\s+pid (\d+)", status).group(1)) if "RUNNING" in status else 0

    supervisord = start_in_session([SUPERVISORD, "-c", CONFIG], cwd=ROOT, env=env, log_path=tmp_path / "supervisord.out")
    try:
        redis = Redis.from_url(own_redis.url)
        worker = wait_until(lambda: running_pid("worker:worker1"), 180, "supervisord starts the worker")
        wait_until(lambda: worker in {w.pid for w in Worker.all(connection=redis)}, 180, "the worker waits for work")
        programs = {name: wait_until(lambda: running_pid(name), 180, f"supervisord starts {name}") for name in ("inventory-worker:inventory-worker1", "scheduler", "web")}

        os.kill(worker, signal.SIGKILL)
        restarted = wait_until(lambda: (pid := running_pid("worker:worker1")) not in (0, worker) and pid, 180, "supervisord starts the worker again")

        log = (tmp_path / "supervisord.log").read_text()
        assert re.search(r"exited: worker1 \(terminated by SIGKILL; not expected\)[\s\S]*spawned: 'worker1' with pid " + str(restarted), log), log
        assert all(running_pid(name) == pid for name, pid in programs.items()), "another process was restarted with the worker"
        job = Queue("default", connection=redis).enqueue("tests.queue_jobs.nap", 0, "after the restart", result_ttl=600)
        wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 180, "the new worker runs a job")

        os.kill(supervisord.pid, signal.SIGTERM)
        supervisord.wait(timeout=60)
        for pid in [restarted, *programs.values()]:
            wait_until(lambda: not alive(pid), 10, f"process {pid} stops with supervisord")
    finally:
        stop_session(supervisord)
