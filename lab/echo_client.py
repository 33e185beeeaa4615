"""A TCP echo client that shows whether one connection to a guest survives a live migration.

Run inside the lab's network namespace (EchoProbe does that):

    python -m lab.echo_client 10.77.0.11 --port 7 --interval-ms 10

It holds one TCP connection, sends a small numbered message every interval, and checks that
every echo comes back byte for byte, in order. It prints CONNECTED once connected; on SIGTERM,
stdin closing, or after --max-seconds it stops sending, waits briefly for the echoes still
outstanding, prints one JSON line of results and exits 0 (1 if it never connected).

All times are taken here, on the client's clock: the guest's own clock stops while it is paused.
"""

import argparse
import json
import os
import select
import signal
import socket
import string
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field

CONNECT_TIMEOUT_S = 5.0
RECONNECT_DELAY_S = 0.1
# After the stop request: how long echoes still on their way may take to come back.
DRAIN_TIMEOUT_S = 3.0
PATTERN = (string.ascii_letters + string.digits).encode()
PATTERN_LENGTH = 16


def encode_message(seq: int) -> bytes:
    """A fixed-size message whose every byte follows from its number, so an echo is checkable."""
    rotation = seq % len(PATTERN)
    filler = (PATTERN[rotation:] + PATTERN[:rotation])[:PATTERN_LENGTH]
    return b"VME %010d %s\n" % (seq, filler)


MESSAGE_SIZE = len(encode_message(0))


@dataclass
class EchoResults:
    connected: bool = False
    messages_sent: int = 0
    messages_echoed: int = 0
    # Every byte sent came back unchanged and in order, and nothing was lost to a broken connection.
    intact: bool = True
    # Longest time with messages outstanding and no echo arriving.
    longest_gap_ms: float = 0.0
    gaps: list[tuple[float, float]] = field(default_factory=list)  # (seconds since connected, gap ms)
    reconnects: int = 0
    error: str | None = None


class EchoSession:
    """One TCP connection: what is still to be sent, and the echoes still expected, oldest first."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.unsent = b""
        self.received = b""
        self.outstanding: deque[tuple[int, float]] = deque()  # (seq, monotonic send time)

    def close(self) -> None:
        self.sock.close()


class EchoClient:
    def __init__(self, host: str, port: int, interval_ms: int, gap_report_ms: float, max_seconds: float):
        self.address = (host, port)
        self.interval_s = interval_ms / 1000
        self.gap_report_ms = gap_report_ms
        self.stop_sending_at = time.monotonic() + max_seconds
        self.results = EchoResults()
        self.stop_requested = False
        self.watch_stdin = True
        self.next_seq = 0
        self.connected_at = 0.0
        self.last_echo_at = 0.0

    def request_stop(self, *_signal_args) -> None:
        self.stop_requested = True

    def run(self) -> EchoResults:
        try:
            session = self.connect()
        except OSError as error:
            self.results.error = f"connect to {self.address[0]}:{self.address[1]}: {error}"
            return self.results
        self.results.connected = True
        self.connected_at = time.monotonic()
        print("CONNECTED", flush=True)
        session = self.send_until_stopped(session)
        if session is not None:
            self.drain(session)
        return self.results

    def connect(self) -> EchoSession:
        sock = socket.create_connection(self.address, timeout=CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return EchoSession(sock)

    def send_until_stopped(self, session: EchoSession | None) -> EchoSession | None:
        next_send_at = time.monotonic()
        while not self.stop_requested and time.monotonic() < self.stop_sending_at:
            if session is None:
                session = self.reconnect()
                continue
            now = time.monotonic()
            if now >= next_send_at:
                self.queue_message(session, now)
                # Behind schedule (say, the client itself was descheduled): no catch-up burst.
                next_send_at = max(next_send_at + self.interval_s, now)
            if not self.exchange(session, timeout=max(0.0, next_send_at - time.monotonic())):
                session = None
        return session

    def drain(self, session: EchoSession) -> None:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while session.outstanding and time.monotonic() < deadline:
            if not self.exchange(session, timeout=min(0.05, max(0.0, deadline - time.monotonic()))):
                return
        self.abandon_outstanding(session)
        session.close()

    def reconnect(self) -> EchoSession | None:
        time.sleep(RECONNECT_DELAY_S)
        try:
            session = self.connect()
        except OSError:
            return None
        self.results.reconnects += 1
        return session

    def queue_message(self, session: EchoSession, now: float) -> None:
        session.outstanding.append((self.next_seq, now))
        session.unsent += encode_message(self.next_seq)
        self.next_seq += 1
        self.results.messages_sent += 1

    def exchange(self, session: EchoSession, timeout: float) -> bool:
        """Send what the socket takes, take in what arrived; False once the connection broke."""
        want_read = [session.sock, sys.stdin] if self.watch_stdin else [session.sock]
        want_write = [session.sock] if session.unsent else []
        readable, writable, _ = select.select(want_read, want_write, [], timeout)
        if sys.stdin in readable:
            self.read_stdin()
        try:
            if writable:
                self.send_some(session)
            if session.sock in readable:
                self.receive(session)
        except OSError as error:
            self.connection_lost(session, error)
            return False
        return True

    def read_stdin(self) -> None:
        if not os.read(sys.stdin.fileno(), 4096):
            # stdin closed: the probe asks us to stop.
            self.stop_requested = True
            self.watch_stdin = False

    def send_some(self, session: EchoSession) -> None:
        try:
            sent = session.sock.send(session.unsent)
        except BlockingIOError:
            return
        session.unsent = session.unsent[sent:]

    def receive(self, session: EchoSession) -> None:
        try:
            data = session.sock.recv(65536)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("the guest closed the connection")
        self.take_echoes(session, data, time.monotonic())

    def take_echoes(self, session: EchoSession, data: bytes, arrived_at: float) -> None:
        session.received += data
        complete = len(session.received) // MESSAGE_SIZE
        if complete == 0:
            return
        _seq, first_sent_at = session.outstanding[0] if session.outstanding else (None, arrived_at)
        # The wait for this echo began when it was sent or when the previous echo came in.
        self.record_gap(arrived_at - max(self.last_echo_at, first_sent_at), ended_at=arrived_at)
        self.last_echo_at = arrived_at
        for index in range(complete):
            echo = session.received[index * MESSAGE_SIZE : (index + 1) * MESSAGE_SIZE]
            if not session.outstanding or echo != encode_message(session.outstanding.popleft()[0]):
                self.results.intact = False
            self.results.messages_echoed += 1
        session.received = session.received[complete * MESSAGE_SIZE :]

    def record_gap(self, gap_s: float, ended_at: float) -> None:
        gap_ms = gap_s * 1000
        self.results.longest_gap_ms = max(self.results.longest_gap_ms, round(gap_ms, 1))
        if gap_ms > self.gap_report_ms:
            started_s = ended_at - gap_s - self.connected_at
            self.results.gaps.append((round(started_s, 3), round(gap_ms, 1)))

    def abandon_outstanding(self, session: EchoSession) -> None:
        """Echoes that never came back: the stream is not intact, and the wait counts as a gap."""
        if session.outstanding:
            now = time.monotonic()
            self.record_gap(now - max(self.last_echo_at, session.outstanding[0][1]), ended_at=now)
        if session.outstanding or session.received:
            self.results.intact = False
        session.outstanding.clear()
        session.received = b""

    def connection_lost(self, session: EchoSession, error: OSError) -> None:
        self.abandon_outstanding(session)
        self.results.error = f"connection lost after {self.results.messages_echoed} echoes: {error}"
        session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.echo_client", description=__doc__.split("\n")[0])
    parser.add_argument("host")
    parser.add_argument("--port", type=int, default=7)
    parser.add_argument("--interval-ms", type=int, default=10)
    parser.add_argument("--gap-report-ms", type=float, default=100.0, help="list gaps longer than this")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop by itself after this long")
    options = parser.parse_args(argv)
    client = EchoClient(options.host, options.port, options.interval_ms, options.gap_report_ms, options.max_seconds)
    signal.signal(signal.SIGTERM, client.request_stop)
    results = client.run()
    print(json.dumps(asdict(results)), flush=True)
    return 0 if results.connected else 1


if __name__ == "__main__":
    sys.exit(main())
