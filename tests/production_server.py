"""The app served as production serves it: gunicorn, DEBUG off, collected static files served
by WhiteNoise, on the test's database. Tests that need it use the `app_server` fixture."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.processes import ROOT, process_env, stop
from tests.scrape import TOKEN
from lab.processes import start_in_session

START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class AppServer:
    url: str
    process: subprocess.Popen


def server_env(static_root: Path) -> dict[str, str]:
    return process_env(
        DEBUG="0",
        STATIC_ROOT=str(static_root),
        ALLOWED_HOSTS="127.0.0.1",
        # The tests speak plain HTTP to loopback: no redirect to HTTPS, no Secure cookies.
        HTTPS="0",
        METRICS_TOKEN=TOKEN,
    )


def collect_static(static_root: Path) -> Path:
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
        cwd=ROOT, env=server_env(static_root), check=True, timeout=300,
    )
    return static_root


@contextlib.contextmanager
def production_server(static_root: Path, workdir: Path, env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """gunicorn over the static files collected in static_root, on a free loopback port, until the block ends.

    `env`, when given, is gunicorn's whole environment (a deployment's, say) instead of the tests' own.
    """
    env = server_env(static_root) if env is None else env
    port = _free_port()
    log_path = workdir / "gunicorn.log"
    process = start_in_session(
        [sys.executable, "-m", "gunicorn", "vmotion.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"],
        cwd=ROOT, env=env, log_path=log_path,
    )
    try:
        _wait_until_listening(port, process, log_path)
        yield AppServer(url=f"http://127.0.0.1:{port}", process=process)
    finally:
        stop(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not listen on {port} within {START_TIMEOUT_SECONDS}s:\n{log_path.read_text()}")
