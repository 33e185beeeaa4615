"""Processes the lab, the tests and the benchmark start, and how they stop them: only their
own, by pid (daemons, recorded with their program and start time against pid reuse) or by
the process group of a process started in a session of its own (a worker and any child it forks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.config import LabError

STOP_GRACE_SECONDS = 10


@dataclass(frozen=True)
class LabProcess:
    """A process the lab started; program and start time guard against pid reuse."""

    pid: int
    program: str
    start_ticks: int

    def is_alive(self) -> bool:
        return _program_of(self.pid) == self.program and _start_ticks_of(self.pid) == self.start_ticks

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LabProcess":
        return cls(**data)


def lab_process(pid: int, program: str) -> LabProcess | None:
    """The record of a live pid, or None if it is gone or runs something other than program."""
    start_ticks = _start_ticks_of(pid)
    if _program_of(pid) != program or start_ticks is None:
        return None
    return LabProcess(pid, program, start_ticks)


def process_from_pidfile(pidfile: Path, program: str) -> LabProcess | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return lab_process(pid, program)


def stop_processes(processes: list[LabProcess], grace: float = STOP_GRACE_SECONDS, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    """Each signal in turn (SIGTERM, then SIGKILL) to whatever still runs after the grace period."""
    for sig in signals:
        alive = [process for process in processes if process.is_alive()]
        for process in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, sig)
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [process for process in alive if process.is_alive()]
        if not alive:
            return
    raise LabError(f"could not stop pids {', '.join(str(p.pid) for p in alive)}")


def _program_of(pid: int) -> str | None:
    # A zombie has an empty cmdline, so it counts as gone.
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return None
    # sshd retitles itself the BSD way: "sshd: /usr/sbin/sshd -f ... [listener] ...".
    program, retitled, _ = argv0.partition(": ")
    return os.path.basename(program if retitled else argv0) or None


def _start_ticks_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name before it may contain spaces, so split after ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def start_in_session(command: list[str], *, cwd: Path, env: dict, log_path: Path) -> subprocess.Popen:
    """Start a long-running process in a session of its own, its output going to `log_path`."""
    with log_path.open("w") as log:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_session(process: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 30) -> None:
    """Stop a process started by `start_in_session`, and its children, by its process group."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass
