"""What NBD clients ask of NBD servers in the lab, read off the wire: the lab's hosts take
migration streams on addresses of its network namespace's loopback (127.0.0.x), so a disk
copied with a migration crosses that `lo`. An NBD client sends its options as "IHAVEOPT" and
the option's number; NBD_OPT_STARTTLS (5) is how it asks to turn the connection into TLS
before any data moves."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import threading

NBD_OPT_MAGIC = b"IHAVEOPT"
NBD_OPT_STARTTLS = 5
# libvirt's default range for the ports of the NBD servers of migrations.
NBD_PORTS = range(49152, 49216)
ETH_P_ALL = 0x0003
CLONE_NEWNET = 0x40000000


class NbdOptions:
    """Collect the options NBD clients send to ports in NBD_PORTS while it runs (root only)."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.options: list[int] = []
        self._stop, self._listening = threading.Event(), threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._listen, name="nbd options", daemon=True)

    def __enter__(self) -> NbdOptions:
        self._thread.start()
        self._listening.wait(5)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _listen(self) -> None:
        """On its own thread, which alone enters the lab's namespace (a thread's namespace is
        its own), so its socket sees that namespace's loopback."""
        try:
            with open(f"/var/run/netns/{self.netns}") as namespace:
                if ctypes.CDLL(None, use_errno=True).setns(namespace.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {self.netns}: {os.strerror(ctypes.get_errno())}")
            self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
            self._socket.bind(("lo", 0))
            self._socket.settimeout(0.2)
        except BaseException as error:  # raised by __enter__
            self._error = error
            self._listening.set()
            return
        self._listening.set()
        try:
            self._read()
        finally:
            self._socket.close()

    @property
    def asked_for_tls(self) -> bool:
        return NBD_OPT_STARTTLS in self.options

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._socket.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            payload = _tcp_payload_to_nbd(frame[14:])  # after lo's ethernet header
            at = payload.find(NBD_OPT_MAGIC) if payload else -1
            while at >= 0 and at + 12 <= len(payload):
                self.options.append(struct.unpack("!I", payload[at + 8 : at + 12])[0])
                at = payload.find(NBD_OPT_MAGIC, at + 12)


def _tcp_payload_to_nbd(packet: bytes) -> bytes:
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_TCP:
        return b""
    ip_header = (packet[0] & 0x0F) * 4
    tcp = packet[ip_header:]
    if len(tcp) < 20 or struct.unpack("!H", tcp[2:4])[0] not in NBD_PORTS:
        return b""
    return tcp[(tcp[12] >> 4) * 4 :]
