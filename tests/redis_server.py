"""A Redis server of a test's own, on a free loopback port, that the test may stop, restart
and freeze without touching the Redis every other test shares."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from lab.processes import start_in_session, stop_session


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """`persist`: a restart keeps the data (SHUTDOWN SAVE, loaded again at start), as a Redis
    that saves does; without it a restart forgets every key, as docker-compose runs Redis."""

    def __init__(self, directory: Path, persist: bool = False):
        self.directory = directory
        self.persist = persist
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, timeout=10).stdout.strip()

    def start(self) -> None:
        command = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
            "--dir", str(self.directory), "--dbfilename", "dump.rdb",
        ]
        self.process = start_in_session(command, cwd=self.directory, env={}, log_path=self.directory / f"redis-{time.monotonic_ns()}.log")
        for _ in range(200):
            if self.cli("ping") == "PONG":
                return
            time.sleep(0.05)
        raise AssertionError("the test's Redis did not start")

    def stop(self) -> None:
        """Shut it down as its supervisor would; its port refuses connections until `start`."""
        self.cli("shutdown", "save" if self.persist else "nosave")
        self.process.wait(timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """Stop it answering while its connections stay open (SIGSTOP), until `thaw`."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            stop_session(self.process)
