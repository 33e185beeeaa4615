"""What a lab looks like: where it lives, how many hosts and guests, their names and addresses."""

import ipaddress
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# libvirtd's fixed paths, each replaced by a per-host directory inside the host's mount namespace.
LIBVIRT_PATHS = {
    "run": Path("/run/libvirt"),
    "lib": Path("/var/lib/libvirt"),
    "cache": Path("/var/cache/libvirt"),
    "log": Path("/var/log/libvirt"),
    "etc": Path("/etc/libvirt"),
}

BRIDGE_NAME = "vmbr0"
BRIDGE_ADDRESS = "10.77.0.1"
BRIDGE_PREFIX = 24
NETWORK_NAME = "lab-net"
POOL_NAME = "lab-datastore"
# Each host's own directory pool, which no other host mounts: its local datastore.
LOCAL_POOL_NAME = "lab-local"

MAX_HOSTS = 200  # hosts listen on .2 ... .201 of the lab's management network, 127.0.0.2 ... 127.0.0.201
# The lab's end of the veth pair that links the root namespace to the lab's: the control plane
# reaches every host through it (the root namespace's end is named after the subnet).
MANAGEMENT_LINK = "mgmt0"
MAX_GUESTS = 240  # guests use 10.77.0.11 ... 10.77.0.250


class LabError(Exception):
    """Something the operator has to fix; the message says what."""


@dataclass(frozen=True)
class GuestWorkload:
    """How hard the guest's init rewrites its memory (passed on the kernel command line)."""

    dirty_mb: int = 16
    dirty_rate: int = 1


def _default_lab_dir() -> Path:
    return Path(os.environ.get("VMOTION_LAB_DIR", "/var/lib/vmotion-lab"))


def _default_netns() -> str:
    return os.environ.get("VMOTION_LAB_NETNS", "vmotion-lab")


@dataclass(frozen=True)
class LabConfig:
    lab_dir: Path = field(default_factory=_default_lab_dir)
    netns: str = field(default_factory=_default_netns)
    host_count: int = 3
    guest_count: int = 4
    guest_memory_mib: int = 128
    default_workload: GuestWorkload = GuestWorkload()
    # Per-guest overrides, keyed by guest name ("lab-vm2"). Like memory, a guest's workload is
    # fixed when `up` first defines it (it is on the kernel command line).
    workloads: dict[str, GuestWorkload] = field(default_factory=dict)
    # Hosts whose QEMU gets no migration certificates, like a real host nobody set up for
    # encrypted migration: its libvirt refuses a TLS migration stream.
    hosts_without_migration_tls: frozenset[str] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "lab_dir", Path(self.lab_dir).absolute())
        object.__setattr__(self, "hosts_without_migration_tls", frozenset(self.hosts_without_migration_tls))
        for name in self.hosts_without_migration_tls:
            host_index(name)  # a LabError for a name that is not a lab host's
        if not 1 <= self.host_count <= MAX_HOSTS:
            raise LabError(f"host count must be between 1 and {MAX_HOSTS}, not {self.host_count}")
        if not 0 <= self.guest_count <= MAX_GUESTS:
            raise LabError(f"guest count must be between 0 and {MAX_GUESTS}, not {self.guest_count}")
        for hidden in LIBVIRT_PATHS.values():
            if self.lab_dir == hidden or hidden in self.lab_dir.parents:
                raise LabError(
                    f"lab dir {self.lab_dir} is inside {hidden}, which every lab host hides "
                    "behind its own copy: choose another VMOTION_LAB_DIR"
                )

    # Paths shared by all hosts.
    @property
    def hosts_dir(self) -> Path:
        return self.lab_dir / "hosts"

    @property
    def datastore_dir(self) -> Path:
        return self.lab_dir / "datastore"

    @property
    def serial_dir(self) -> Path:
        return self.lab_dir / "serial"

    @property
    def image_dir(self) -> Path:
        return self.lab_dir / "image"

    @property
    def state_file(self) -> Path:
        return self.lab_dir / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.lab_dir / "lab.lock"

    @property
    def accel_file(self) -> Path:
        return self.lab_dir / "accel.json"

    # What the control plane authenticates with, and what it trusts (keys are mode 0600).
    @property
    def pki_dir(self) -> Path:
        """The lab's certificate authority, and the control plane's client certificate in
        `client/`, laid out as a libvirt `pkipath` wants it."""
        return self.lab_dir / "pki"

    @property
    def client_pki_dir(self) -> Path:
        return self.pki_dir / "client"

    @property
    def peer_pki_dir(self) -> Path:
        """The client certificate a host's libvirtd presents to another's in a peer-to-peer
        migration (one for all hosts, from the same CA)."""
        return self.pki_dir / "peer"

    @property
    def ssh_dir(self) -> Path:
        """The control plane's SSH key, the hosts' known keys and the ssh command that uses them."""
        return self.lab_dir / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def ssh_command(self) -> Path:
        return self.ssh_dir / "ssh"

    # The management network -------------------------------------------------------------------

    @property
    def management_network(self) -> ipaddress.IPv4Network:
        """The lab's own /24, which only the veth pair between the root namespace and the lab's
        carries. Derived from the namespace's name, so a demo lab and a test lab can run side by
        side (`netns.create_netns` refuses a subnet that something else routes already)."""
        return ipaddress.IPv4Network(f"10.78.{_subnet_octet(self.netns)}.0/24")

    @property
    def gateway_address(self) -> str:
        """The root namespace's address on the management network."""
        return str(self.management_network.network_address + 1)

    @property
    def root_link(self) -> str:
        return root_link_name(self.netns)

    def host_address(self, name: str) -> str:
        """The host's address on the management network: lab-host1 is .2. Its libvirtd's TLS
        listener and its sshd listen there, both of which authenticate whoever connects."""
        return str(self.management_network.network_address + host_index(name) + 1)

    def peer_uri(self, name: str) -> str:
        """How other hosts reach this one (the source of a peer-to-peer migration dials it):
        over TLS, with the peers' client certificate."""
        return f"qemu+tls://{self.host_address(name)}/system?pkipath={self.peer_pki_dir}"

    def ssh_uri(self, name: str) -> str:
        """How a control plane reaches the host over SSH, as `root` with the lab's key. The
        `command` is the lab's ssh, which trusts only the lab's known_hosts: libvirt's ssh
        transport takes no known_hosts parameter (a real deployment puts the hosts' keys in the
        known_hosts of the user vmotion runs as)."""
        return f"qemu+ssh://root@{self.host_address(name)}/system?keyfile={self.ssh_key}&command={self.ssh_command}"

    def tls_uri(self, name: str) -> str:
        """How a control plane reaches the host's TLS listener with the lab's client certificate."""
        return f"qemu+tls://{self.host_address(name)}/system?pkipath={self.client_pki_dir}"

    def has_migration_tls(self, name: str) -> bool:
        return name not in self.hosts_without_migration_tls

    def host_names(self) -> list[str]:
        return [host_name(i) for i in range(1, self.host_count + 1)]

    def guest_names(self) -> list[str]:
        return [guest_name(j) for j in range(1, self.guest_count + 1)]

    def host_dir(self, name: str) -> Path:
        return self.hosts_dir / name

    def local_datastore_dir(self, name: str) -> Path:
        return self.host_dir(name) / "local"

    def management_uri(self, host: str) -> str:
        """How the root namespace (web server, workers, tests) reaches the host."""
        return f"qemu+unix:///system?socket={self.host_dir(host)}/run/libvirt-sock"

    def workload_for(self, guest: str) -> GuestWorkload:
        return self.workloads.get(guest, self.default_workload)

    def home_host(self, guest: str) -> str:
        """Where a new guest is placed: round-robin over the hosts."""
        return host_name((guest_index(guest) - 1) % self.host_count + 1)


def root_link_name(netns: str) -> str:
    """The root namespace's end of the veth pair to the lab in `netns` (at most 15 characters)."""
    return f"vmlab{_subnet_octet(netns)}"


def _subnet_octet(netns: str) -> int:
    return zlib.crc32(netns.encode()) % 250 + 1


def host_name(i: int) -> str:
    return f"lab-host{i}"


def host_index(name: str) -> int:
    return _index_after(name, "lab-host")


def migration_address(name: str) -> str:
    """Where the host's QEMU takes incoming migration streams: an address of the lab
    namespace's own loopback (lab-host1 is 127.0.0.2), which nothing outside it reaches, and
    where the copy runs as fast as the machine allows."""
    return f"127.0.0.{host_index(name) + 1}"


def guest_name(j: int) -> str:
    return f"lab-vm{j}"


def guest_index(name: str) -> int:
    return _index_after(name, "lab-vm")


def guest_ip(name: str) -> str:
    return f"10.77.0.{10 + guest_index(name)}"


def guest_mac(name: str) -> str:
    return f"52:54:00:77:00:{10 + guest_index(name):02x}"


def is_guest_name(name: str) -> bool:
    return name.startswith("lab-vm") and name[len("lab-vm") :].isdigit()


def _index_after(name: str, prefix: str) -> int:
    suffix = name[len(prefix) :] if name.startswith(prefix) else ""
    if not suffix.isdigit() or int(suffix) < 1:
        raise LabError(f"{name!r} is not a lab name like {prefix}1")
    return int(suffix)
