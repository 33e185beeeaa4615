"""Each lab host's own names for its guests' tap devices, and the qemu hook that applies them.

Every lab host's libvirtd creates its guests' taps in the one network namespace they all share.
Left to itself, each daemon names them vnet0, vnet1, ... on a count of its own, checking only
that the name is free a moment before it creates the tap: two daemons creating a tap at the same
moment (one receiving a migrating guest, another starting or receiving one) can pick the same
name, and one of them then fails ("Unable to create tap device vnet3"). So every lab guest's
interface names its tap, from the host's number and the end of the interface's MAC address:
lab-vm1 (52:54:00:77:00:0b) has `lab2-77000b` on lab-host2. No daemon then generates a name,
and no two hosts ever create the same one.

libvirt carries that name to the destination of a migration, where the source's tap still
exists ("The lab1-77000b interface already exists"). So each host has a qemu hook: libvirt runs
`/etc/libvirt/hooks/qemu GUEST migrate begin -` on the destination with the incoming guest's
XML on stdin, and takes the XML the hook prints instead. The hook runs this file (copied into the
host's own /etc/libvirt/hooks, standard library only) to give the incoming guest the
destination's names. The hook sees only the running guest's XML: the definition that
`--persistent` leaves on the destination is the source's, so the lab renames a guest's taps
for the host it is about to start on (`lab.guests.start_guest`).
"""

import sys
from xml.dom import minidom

# Never vnet, vif, macvtap or macvlan: libvirt drops names with those prefixes as its own.
TAP_PREFIX = "lab"
# Interfaces for which libvirt creates a tap (a network of the lab's is a bridge).
TAP_INTERFACE_TYPES = ("bridge", "network")
MAX_NAME_LENGTH = 15  # IFNAMSIZ - 1


def tap_name(host_index: int, mac: str) -> str:
    """The tap on host `host_index` of the interface with this MAC: the MAC's last three bytes
    (QEMU's 52:54:00 prefix is the same for every guest)."""
    name = f"{TAP_PREFIX}{host_index}-{mac.lower().replace(':', '')[-6:]}"
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"tap name {name!r} is longer than {MAX_NAME_LENGTH} characters")
    return name


def with_host_taps(domain_xml: str, host_index: int) -> str:
    """The domain XML with each tap interface's `<target dev>` named for host `host_index`;
    everything else as it was."""
    document = minidom.parseString(domain_xml)
    for interface in _tap_interfaces(document):
        macs = _children(interface, "mac")
        if not macs or not macs[0].getAttribute("address"):
            continue  # libvirt generates a MAC (and so the name) only when it defines the domain
        targets = _children(interface, "target")
        target = targets[0] if targets else interface.appendChild(document.createElement("target"))
        target.setAttribute("dev", tap_name(host_index, macs[0].getAttribute("address")))
    return document.documentElement.toxml()


def tap_names(domain_xml: str) -> list[str]:
    """The `<target dev>` of each tap interface in the domain XML ("" where none is named)."""
    document = minidom.parseString(domain_xml)
    return [
        (_children(interface, "target") or [document.createElement("target")])[0].getAttribute("dev")
        for interface in _tap_interfaces(document)
    ]


def _tap_interfaces(document: minidom.Document) -> list[minidom.Element]:
    return [
        interface
        for devices in _children(document.documentElement, "devices")
        for interface in _children(devices, "interface")
        if interface.getAttribute("type") in TAP_INTERFACE_TYPES
    ]


def _children(element: minidom.Element, tag: str) -> list[minidom.Element]:
    return [child for child in element.childNodes if child.nodeType == child.ELEMENT_NODE and child.tagName == tag]


def hook_script(host_index: int, interpreter: str, filter_path: str) -> str:
    """The host's /etc/libvirt/hooks/qemu: a shell script, so that the many calls that change
    nothing (prepare, start, stopped, release, ...) start no Python."""
    return (
        "#!/bin/sh\n"
        f"# lab-host{host_index}: an incoming migrating guest's taps get this host's names ({filter_path}).\n"
        'if [ "$2" = migrate ]; then\n'
        f'    exec "{interpreter}" -I -S "{filter_path}" {host_index}\n'
        "fi\n"
        "exit 0\n"
    )


def main(argv: list[str]) -> int:
    """The hook's filter: argv is the host's number, stdin the incoming guest's XML."""
    sys.stdout.write(with_host_taps(sys.stdin.read(), int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
