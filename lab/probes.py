"""What a guest went through during a migration, seen from the host side.

SerialWatcher tails a guest's serial log and timestamps each heartbeat as it arrives; EchoProbe
holds one TCP connection to the guest's echo service from inside the lab's network namespace.
Both take their times on the host: the guest's own clock stops while it is paused.

    watcher, echo = SerialWatcher(guest.serial_log), EchoProbe(lab.netns, guest.ip)
    watcher.start(); echo.start()
    ... migrate ...
    serial, network = watcher.stop(), echo.stop()
"""

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


# A line may start with junk (firmware escape codes): find the markers anywhere in it.
HEARTBEAT = re.compile(r"HB seq=(\d+) mismatches=(\d+)")
READY_MARKER = "VMOTION-GUEST READY"
MISMATCH_MARKER = "MISMATCH"  # MISMATCH page=... and MISMATCH-SUPPRESSED count=...
SERIAL_GAP_REPORT_MS = 300.0

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ECHO_CONNECT_TIMEOUT_S = 15.0
# The client drains outstanding echoes for up to 3 s and may be mid-connect for 5 s.
ECHO_STOP_TIMEOUT_S = 10.0


class ProbeError(Exception):
    """A probe could not start or did not report."""


# Serial log -----------------------------------------------------------------------------------


@dataclass
class SerialReport:
    heartbeats: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    missing_seqs: list[int] = field(default_factory=list)
    seq_resets: int = 0  # times a seq was not above the previous one: the guest started over
    ready_lines: int = 0  # READY is printed once per boot
    longest_gap_ms: float = 0.0  # between consecutive heartbeat arrivals
    # Gaps over 300 ms: (when the gap began, in s since start(), its length in ms).
    gaps: list[tuple[float, float]] = field(default_factory=list)
    mismatches: int = 0  # the highest mismatches= count seen
    mismatch_lines: list[str] = field(default_factory=list)

    @property
    def kept_running(self) -> bool:
        """Heartbeats came and the guest never started over (no reboot)."""
        return self.heartbeats > 0 and self.seq_resets == 0 and self.ready_lines == 0


class SerialWatcher:
    """Tails a guest's serial log from its end at start(), timestamping lines as they arrive.

    After a migration the destination's QEMU appends to the same file, so one open file keeps
    seeing everything; a file replaced or truncated underneath is reopened from its start.
    """

    def __init__(self, path: Path, poll_s: float = 0.005):
        self.path = Path(path)
        self.poll_s = poll_s
        self.report = SerialReport()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._file = None
        self._partial = b""
        self._started_at = 0.0
        self._last_heartbeat_at: float | None = None
        self._failure: Exception | None = None

    def start(self) -> "SerialWatcher":
        self._started_at = time.monotonic()
        self._file = self.path.open("rb")
        self._file.seek(0, os.SEEK_END)
        self._thread = threading.Thread(target=self._tail, name=f"serial-watcher {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> SerialReport:
        self._stopping.set()
        self._thread.join()
        self._file.close()
        if self._failure is not None:
            raise ProbeError(f"watching {self.path} failed: {self._failure}") from self._failure
        return self.report

    def _tail(self) -> None:
        try:
            while not self._stopping.is_set():
                self._read_new_lines()
                self._stopping.wait(self.poll_s)
            self._read_new_lines()  # lines written just before stop()
        except OSError as error:
            self._failure = error

    def _read_new_lines(self) -> None:
        self._reopen_if_replaced()
        data = self._file.read()
        if not data:
            return
        arrived_at = time.monotonic()
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._take_line(line.decode(errors="replace"), arrived_at)

    def _reopen_if_replaced(self) -> None:
        try:
            on_disk = self.path.stat()
        except FileNotFoundError:
            return
        opened = os.fstat(self._file.fileno())
        if on_disk.st_ino != opened.st_ino or on_disk.st_size < self._file.tell():
            self._file.close()
            self._file = self.path.open("rb")
            self._partial = b""

    def _take_line(self, line: str, arrived_at: float) -> None:
        report = self.report
        heartbeat = HEARTBEAT.search(line)
        if heartbeat:
            self._take_heartbeat(int(heartbeat[1]), int(heartbeat[2]), arrived_at)
        elif READY_MARKER in line:
            report.ready_lines += 1
        elif MISMATCH_MARKER in line:
            report.mismatch_lines.append(line[line.index(MISMATCH_MARKER) :])

    def _take_heartbeat(self, seq: int, mismatches: int, arrived_at: float) -> None:
        report = self.report
        report.heartbeats += 1
        report.mismatches = max(report.mismatches, mismatches)
        if report.last_seq is None:
            report.first_seq = seq
        elif seq <= report.last_seq:
            report.seq_resets += 1
        else:
            report.missing_seqs.extend(range(report.last_seq + 1, seq))
        report.last_seq = seq
        if self._last_heartbeat_at is not None:
            self._record_gap(arrived_at - self._last_heartbeat_at, arrived_at)
        self._last_heartbeat_at = arrived_at

    def _record_gap(self, gap_s: float, arrived_at: float) -> None:
        gap_ms = round(gap_s * 1000, 1)
        self.report.longest_gap_ms = max(self.report.longest_gap_ms, gap_ms)
        if gap_ms > SERIAL_GAP_REPORT_MS:
            self.report.gaps.append((round(arrived_at - gap_s - self._started_at, 3), gap_ms))


# TCP echo -------------------------------------------------------------------------------------


@dataclass
class EchoReport:
    connected: bool
    messages_sent: int
    messages_echoed: int
    intact: bool  # every byte came back unchanged and in order, none lost
    longest_gap_ms: float  # longest wait with messages outstanding and no echo arriving
    gaps: list[tuple[float, float]]  # over 100 ms: (when it began, in s since connecting; ms)
    reconnects: int  # 0 when one TCP connection lasted throughout
    error: str | None

    @classmethod
    def from_json(cls, line: str) -> "EchoReport":
        results = json.loads(line)
        results["gaps"] = [tuple(gap) for gap in results["gaps"]]
        return cls(**results)


class EchoProbe:
    """Runs lab.echo_client inside the lab's network namespace against a guest."""

    def __init__(self, netns: str, ip: str, port: int = 7, interval_ms: int = 10):
        self.netns = netns
        self.ip = ip
        self.port = port
        self.interval_ms = interval_ms
        self._process: subprocess.Popen | None = None
        self._stdout_lines: queue.Queue[str | None] = queue.Queue()
        self._stderr = None

    def start(self) -> "EchoProbe":
        command = [
            "ip", "netns", "exec", self.netns,
            sys.executable, "-m", "lab.echo_client", self.ip,
            "--port", str(self.port), "--interval-ms", str(self.interval_ms),
        ]  # fmt: skip
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,  # closing it asks the client to stop
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=PROJECT_ROOT,
            env=self._client_environment(),
        )
        threading.Thread(target=self._read_stdout, name=f"echo-probe {self.ip}", daemon=True).start()
        self._wait_until_connected()
        return self

    def stop(self) -> EchoReport:
        self._process.stdin.close()
        if not self._exited_within(ECHO_STOP_TIMEOUT_S):
            self._process.send_signal(signal.SIGTERM)
            if not self._exited_within(ECHO_STOP_TIMEOUT_S):
                self._process.kill()
                self._process.wait()
        results = next((line for line in self._remaining_stdout() if line.startswith("{")), None)
        if results is None:
            raise ProbeError(f"the echo client reported nothing (exit {self._process.returncode}): {self._client_stderr()}")
        self._stderr.close()
        return EchoReport.from_json(results)

    def _client_environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        inherited = environment.get("PYTHONPATH")
        environment["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{inherited}" if inherited else str(PROJECT_ROOT)
        return environment

    def _read_stdout(self) -> None:
        for line in self._process.stdout:
            self._stdout_lines.put(line.strip())
        self._stdout_lines.put(None)  # the client exited

    def _wait_until_connected(self) -> None:
        try:
            line = self._stdout_lines.get(timeout=ECHO_CONNECT_TIMEOUT_S)
        except queue.Empty:
            line = f"no word within {ECHO_CONNECT_TIMEOUT_S:g} s"
        if line == "CONNECTED":
            return
        self._process.kill()
        self._process.wait()
        if line is None:
            reason = f"exited with status {self._process.returncode}"
        elif line.startswith("{"):
            reason = EchoReport.from_json(line).error  # it gave up and reported why
        else:
            reason = line
        raise ProbeError(
            f"echo client for {self.ip}:{self.port} in {self.netns} did not connect: {reason}; "
            f"its stderr: {self._client_stderr()}"
        )

    def _exited_within(self, timeout_s: float) -> bool:
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _remaining_stdout(self) -> list[str]:
        lines = []
        try:
            while (line := self._stdout_lines.get(timeout=ECHO_STOP_TIMEOUT_S)) is not None:
                lines.append(line)
        except queue.Empty:
            pass  # something still holds the pipe open: take what came
        return lines

    def _client_stderr(self) -> str:
        """What the client wrote to stderr; only wanted when it failed, so this closes the file."""
        self._stderr.seek(0)
        text = self._stderr.read().strip()
        self._stderr.close()
        return text or "(no output)"
