"""Warnings for allowing post-copy, from the libvirt versions the inventory recorded for each
host (the web tier and the API never open libvirt). Post-copy is only allowed, not forced, so
these warn rather than refuse: the operator decides."""

from __future__ import annotations

from collections.abc import Iterable

from inventory.models import Host, VirtualMachine

from migrations_app.convergence.post_copy_recovery import HostLibvirt, hosts_warning, post_copy_warning


def _libvirt(host: Host) -> HostLibvirt:
    return HostLibvirt(host.name, host.libvirt_version)


def move_warnings(moves: Iterable[tuple[VirtualMachine, Host | None]]) -> list[str]:
    """One warning per pair of hosts among these moves that cannot resume a broken post-copy."""
    warnings: dict[str, None] = {}
    for vm, destination in moves:
        if destination is None or vm.host is None:
            continue
        warning = post_copy_warning(_libvirt(vm.host), _libvirt(destination))
        if warning:
            warnings[warning] = None
    return list(warnings)


def hosts_of_warning(hosts: Iterable[Host]) -> list[str]:
    """The warning for moves among these hosts when the destinations are chosen later."""
    warning = hosts_warning([_libvirt(host) for host in sorted(set(hosts), key=lambda host: host.name)])
    return [warning] if warning else []
