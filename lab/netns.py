"""The lab's network namespace: a management network for the hosts and a bridge for the guests.

Each host's sshd and libvirt TLS listener listen on its address of the lab's management
network (a /24 of its own), which a veth pair links to the root namespace: the control plane
there (web server, workers, tests) reaches them as it would a real host's, by address. Why a
veth pair rather than running each client through `ip netns exec` (an ssh ProxyCommand,
libvirt's `command=`): libvirt's TLS transport opens its TCP connection itself and has no such
hook, so only a route reaches it; and one link serves SSH and TLS alike. The root namespace
gets one connected route, to the lab's /24 and nothing else, with no forwarding: traffic stays
between the two namespaces. Only listeners that authenticate the client are on that network
(no plain TCP libvirt); migration streams flow over the namespace's own loopback
(127.0.0.x), which the root namespace cannot reach. The pair is created with the namespace
and goes when the namespace is deleted. Guests talk over the bridge, which nothing routes.
"""

import ipaddress
import json
from pathlib import Path

from lab.config import BRIDGE_ADDRESS, BRIDGE_NAME, BRIDGE_PREFIX, MANAGEMENT_LINK, LabConfig, LabError, root_link_name
from lab.commands import run_command


def netns_exists(netns: str) -> bool:
    # Where `ip netns add` pins the namespace.
    return Path("/run/netns", netns).exists()


def create_netns(config: LabConfig) -> None:
    """Create the namespace, its loopback and the guests' bridge; leaves what exists alone."""
    if not netns_exists(config.netns):
        run_command(["ip", "netns", "add", config.netns])
    ip = ["ip", "-n", config.netns]
    run_command([*ip, "link", "set", "lo", "up"])
    if run_command([*ip, "link", "show", BRIDGE_NAME], check=False).returncode != 0:
        run_command([*ip, "link", "add", BRIDGE_NAME, "type", "bridge", "stp_state", "0", "forward_delay", "0"])
    run_command([*ip, "addr", "replace", f"{BRIDGE_ADDRESS}/{BRIDGE_PREFIX}", "dev", BRIDGE_NAME])
    run_command([*ip, "link", "set", BRIDGE_NAME, "up"])
    _shorten_retransmit_timeout(ip)
    _create_management_link(config)


def _create_management_link(config: LabConfig) -> None:
    subnet = config.management_network
    _refuse_taken_subnet(config)
    if run_command(["ip", "link", "show", config.root_link], check=False).returncode != 0:
        run_command(["ip", "link", "add", config.root_link, "type", "veth", "peer", "name", MANAGEMENT_LINK, "netns", config.netns])
    run_command(["ip", "addr", "replace", f"{config.gateway_address}/{subnet.prefixlen}", "dev", config.root_link])
    run_command(["ip", "link", "set", config.root_link, "up"])
    run_command(["ip", "-n", config.netns, "link", "set", MANAGEMENT_LINK, "up"])


def _refuse_taken_subnet(config: LabConfig) -> None:
    """Another link routing the lab's /24 (another lab whose namespace name hashes alike, or
    a real network) would get the hosts' traffic: say so rather than share it."""
    routes = json.loads(run_command(["ip", "-j", "route", "show", "root", str(config.management_network)]).stdout or "[]")
    others = sorted({route.get("dev", "?") for route in routes} - {config.root_link})
    if others:
        raise LabError(
            f"the lab's management network {config.management_network} (from namespace name {config.netns}) "
            f"is already routed through {', '.join(others)}: choose another VMOTION_LAB_NETNS"
        )


def add_host_address(config: LabConfig, name: str) -> None:
    """Give a host its address on the management network (before its daemons bind it)."""
    address = f"{config.host_address(name)}/{config.management_network.prefixlen}"
    run_command(["ip", "-n", config.netns, "addr", "replace", address, "dev", MANAGEMENT_LINK])


def tap_devices(netns: str) -> dict[str, str | None]:
    """Every tap in the namespace (the guests' network devices, whichever host's libvirtd
    created it): name -> the bridge it is a port of, or None."""
    links = json.loads(run_command(["ip", "-n", netns, "-j", "-d", "link", "show", "type", "tun"]).stdout or "[]")
    return {link["ifname"]: link.get("master") for link in links}


def _shorten_retransmit_timeout(ip: list[str]) -> None:
    """A segment lost while a guest is paused for switchover can wait out TCP's minimum
    retransmit timeout (200 ms), stretching the stall a client sees well beyond the downtime;
    an operator would lower it on a low-latency migration network the same way. It matters for
    sparse traffic (measured in the lab: a gap of ~230 ms became ~165 ms); for a client sending every 10 ms
    it made no measurable difference (its gap stayed 40-65 ms over the downtime either way)."""
    subnet = ipaddress.ip_interface(f"{BRIDGE_ADDRESS}/{BRIDGE_PREFIX}").network
    # Replace the kernel's own route for the bridge's subnet, with the option added.
    run_command([
        *ip, "route", "replace", str(subnet), "dev", BRIDGE_NAME, "proto", "kernel", "scope", "link",
        "src", BRIDGE_ADDRESS, "rto_min", "10ms",
    ])  # fmt: skip


def delete_netns(netns: str) -> None:
    """Delete the namespace; the bridge, any leftover taps and the veth pair go with it."""
    if netns_exists(netns):
        run_command(["ip", "netns", "delete", netns])
    # Deleting the lab's end takes the root namespace's end along, but not at once.
    root_link = root_link_name(netns)
    if run_command(["ip", "link", "show", root_link], check=False).returncode == 0:
        run_command(["ip", "link", "delete", root_link], check=False)
