"""Cutting the migration link to a lab host and restoring it, as a pulled cable or a
firewall does: the packets of QEMU's migration streams to and from the host's migration
address are dropped without a reset, in the lab's namespace, so neither end learns of it
from the network. The hosts' management connections (libvirt, SSH) are on another network
and stay up.

`isolate` takes the whole host off the lab's networks instead: every packet to or from its
migration address and its management address (where the other hosts' libvirtd and the
control plane's TLS and SSH connections reach it) is dropped, as when the host's network
namespace is removed or its switch port dies. Only its unix socket still answers, which no
network carries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from .commands import run_command
from .config import LabConfig, migration_address

# libvirt's default ports for incoming migration streams (migration_port_min/max in qemu.conf).
MIGRATION_PORTS = "49152:49215"
COMMENT = ["-m", "comment", "--comment", "vmotion lab: migration link cut"]
ISOLATED = ["-m", "comment", "--comment", "vmotion lab: host off the network"]


def _rules(address: str) -> list[list[str]]:
    return [
        ["INPUT", "-p", "tcp", "-d", address, "--dport", MIGRATION_PORTS, *COMMENT, "-j", "DROP"],
        ["INPUT", "-p", "tcp", "-s", address, "--sport", MIGRATION_PORTS, *COMMENT, "-j", "DROP"],
    ]


def cut(config: LabConfig, host: str) -> None:
    """Drop every migration stream to `host` from now on, open ones included."""
    for rule in _rules(migration_address(host)):
        run_command(["ip", "netns", "exec", config.netns, "iptables", "-I", *rule])


def restore(config: LabConfig, host: str) -> None:
    for rule in _rules(migration_address(host)):
        run_command(["ip", "netns", "exec", config.netns, "iptables", "-D", *rule], check=False)


def down(config: LabConfig, host: str) -> AbstractContextManager[float]:
    """The migration link to `host` cut for the block and restored after it, however the block
    ends; yields when it was cut (time.monotonic)."""
    return _for_the_block(cut, restore, config, host)


def _isolation_rules(config: LabConfig, host: str) -> list[list[str]]:
    # Dropped on the way in, which every packet in the namespace passes (loopback and the veth
    # from the root namespace alike); each direction of a connection carries the address.
    return [
        ["INPUT", direction, address, *ISOLATED, "-j", "DROP"]
        for address in (migration_address(host), config.host_address(host))
        for direction in ("-d", "-s")
    ]


def isolate(config: LabConfig, host: str) -> None:
    """Drop every packet to and from `host`'s addresses from now on, open connections included."""
    for rule in _isolation_rules(config, host):
        run_command(["ip", "netns", "exec", config.netns, "iptables", "-I", *rule])


def rejoin(config: LabConfig, host: str) -> None:
    for rule in _isolation_rules(config, host):
        run_command(["ip", "netns", "exec", config.netns, "iptables", "-D", *rule], check=False)


def isolated(config: LabConfig, host: str) -> AbstractContextManager[float]:
    """`host` off the network for the block and back after it, however the block ends; yields
    when it went (time.monotonic)."""
    return _for_the_block(isolate, rejoin, config, host)


@contextmanager
def _for_the_block(
    inject: Callable[[LabConfig, str], None], undo: Callable[[LabConfig, str], None], config: LabConfig, host: str
) -> Iterator[float]:
    at = time.monotonic()
    inject(config, host)
    try:
        yield at
    finally:
        undo(config, host)
