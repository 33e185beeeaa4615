"""Bring the lab up and down, report on it, and stop or start one host's libvirtd.

Every process the lab starts is recorded in <lab dir>/state.json, so `down` stops exactly
those and nothing else.
"""

import fcntl
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from vmotion.lab import guests, hosts, netns
from vmotion.lab.config import (
    LabConfig,
    LabError,
    guest_ip,
    guest_mac,
    host_address,
    is_guest_name,
    peer_uri,
)
from vmotion.lab.hosts import LabProcess

Log = Callable[[str], None]

# Among copies of one guest on several hosts (mid-migration, or left persistent on the
# source), the one that best tells where the guest lives.
_STATE_PREFERENCE = ("running", "paused", "in shutdown", "pmsuspended", "shut off", "crashed")


@dataclass
class HostStatus:
    name: str
    uri: str  # management URI, from the root namespace
    peer_uri: str  # as the other hosts reach it, for peer-to-peer migration
    address: str
    daemon_running: bool  # its libvirtd process is alive
    reachable: bool  # its libvirtd answered


@dataclass
class GuestStatus:
    name: str
    uuid: str
    host: str | None  # None when no reachable host has it
    ip: str
    mac: str
    state: str  # virsh's word ("running", "paused", "shut off", ...) or "undefined"
    serial_log: Path


@dataclass
class LabState:
    lab_dir: Path
    netns: str
    netns_exists: bool
    accel: str  # "kvm" or "tcg"
    accel_reason: str
    hosts: list[HostStatus]
    guests: list[GuestStatus]

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=str))


def up(config: LabConfig, log: Log = print) -> LabState:
    """Bring every host and guest of config up; whatever already runs is left alone."""
    hosts.require_programs()
    for directory in (config.lab_dir, config.hosts_dir, config.datastore_dir, config.serial_dir, config.image_dir):
        directory.mkdir(parents=True, exist_ok=True)
    with _lab_lock(config):
        state = _load_state(config)
        state["netns"] = config.netns
        started = time.monotonic()
        image = guests.guest_image(config, log)
        accel, accel_reason = guests.detect_accel(config, image)
        log(f"guest image {image.kernel_release}, {accel}: {accel_reason}")
        netns.create_netns(config)
        for name in config.host_names():
            state["hosts"][name] = _bring_up_host(config, name, state["hosts"].get(name, {}), log)
            _save_state(config, state)
        for name in config.host_names():
            hosts.ensure_lab_network(config, name)
            hosts.ensure_datastore_pool(config, name)
        _bring_up_guests(config, image, accel, log)
        state["guests"] = _running_guest_processes(config, state)
        _save_state(config, state)
        log(f"lab up in {time.monotonic() - started:.1f} s")
    return status(config)


def down(config: LabConfig, log: Log = print) -> None:
    """Stop every guest, daemon and namespace the lab started; disks and definitions stay."""
    with _lab_lock(config):
        state = _load_state(config)
        started = time.monotonic()
        for name in state["hosts"]:
            _destroy_running_domains(config, name, log)
        # Guests of hosts whose libvirtd was down: libvirt cleans up after them on its next start.
        leftover_guests = _recorded(state["guests"]) + list(_running_guest_processes(config, state).values())
        hosts.stop_processes([LabProcess.from_dict(p) for p in leftover_guests])
        for role in ("libvirtd", "virtlogd", "anchor"):
            hosts.stop_processes([
                LabProcess.from_dict(record[role]) for record in state["hosts"].values() if role in record
            ])
        netns.delete_netns(state.get("netns", config.netns))
        config.state_file.unlink(missing_ok=True)
        log(f"lab down in {time.monotonic() - started:.1f} s")


def status(config: LabConfig) -> LabState:
    state = _load_state(config)
    host_names = list(state["hosts"]) or config.host_names()
    host_statuses = []
    domains_by_host = {}
    for name in host_names:
        uri = config.management_uri(name)
        libvirtd = _recorded_process(state, name, "libvirtd")
        reachable = hosts.is_reachable(uri)
        if reachable:
            domains_by_host[name] = guests.list_domains(uri)
        host_statuses.append(HostStatus(
            name=name, uri=uri, peer_uri=peer_uri(name), address=host_address(name),
            daemon_running=libvirtd is not None and libvirtd.is_alive(), reachable=reachable,
        ))
    guest_names = set(config.guest_names())
    guest_names.update(g for domains in domains_by_host.values() for g in domains if is_guest_name(g))
    accel = guests.read_accel(config)
    return LabState(
        lab_dir=config.lab_dir,
        netns=state.get("netns", config.netns),
        netns_exists=netns.netns_exists(state.get("netns", config.netns)),
        accel=accel.get("accel", "tcg"),
        accel_reason=accel.get("reason", "plain emulation unless a KVM probe boot succeeds"),
        hosts=host_statuses,
        guests=[_guest_status(config, g, domains_by_host) for g in sorted(guest_names, key=_guest_sort_key)],
    )


def stop_host_daemon(config: LabConfig, name: str, log: Log = print) -> None:
    """Stop one host's libvirtd, as if it crashed; its guests keep running."""
    with _lab_lock(config):
        libvirtd = _recorded_process(_load_state(config), name, "libvirtd")
        if libvirtd is None or not libvirtd.is_alive():
            log(f"{name}'s libvirtd is not running")
            return
        hosts.stop_processes([libvirtd])
        log(f"{name}'s libvirtd stopped")


def start_host_daemon(config: LabConfig, name: str, log: Log = print) -> None:
    """Start one host's libvirtd again; it picks up the guests still running there."""
    with _lab_lock(config):
        state = _load_state(config)
        if name not in state["hosts"] or not netns.netns_exists(state["netns"]):
            raise LabError(f"{name} is not part of a running lab: run `python -m vmotion.lab up` first")
        state["hosts"][name] = _bring_up_host(config, name, state["hosts"][name], log)
        state["guests"] = _running_guest_processes(config, state)
        _save_state(config, state)


# Hosts ----------------------------------------------------------------------------------------


def _bring_up_host(config: LabConfig, name: str, record: dict, log: Log) -> dict:
    """Start whatever of the host's anchor, virtlogd and libvirtd is not running."""
    processes = {role: LabProcess.from_dict(p) for role, p in record.items()}
    alive = {role: p for role, p in processes.items() if p.is_alive()}
    if "anchor" not in alive:
        # Daemons outside a live anchor cannot be restarted in place: start the host afresh.
        hosts.stop_processes(list(alive.values()))
        hosts.prepare_host_dir(config, name)
        alive = {"anchor": hosts.start_anchor(config, name)}
    for program in ("virtlogd", "libvirtd"):
        if program not in alive:
            alive[program] = hosts.start_daemon(config, name, alive["anchor"], program)
            log(f"{name}: {program} started (pid {alive[program].pid})")
    hosts.wait_until_reachable(config, name, alive["libvirtd"])
    return {role: p.to_dict() for role, p in alive.items()}


def _recorded_process(state: dict, host: str, role: str) -> LabProcess | None:
    record = state["hosts"].get(host, {}).get(role)
    return LabProcess.from_dict(record) if record else None


# Guests ---------------------------------------------------------------------------------------


def _bring_up_guests(config: LabConfig, image, accel: str, log: Log) -> None:
    """Start the guests wherever they are defined; define missing ones on their home host."""
    placement = _find_guests(config, config.host_names())
    disk_cache = "none" if guests.supports_direct_io(config.datastore_dir) else "writeback"
    for name in config.guest_names():
        host, state = placement.get(name, (None, "undefined"))
        if host is None:
            host = config.home_host(name)
            guests.ensure_guest_disk(config, name)
            guests.define_guest(config, host, name, guests.guest_domain_xml(config, name, image, accel, disk_cache))
            log(f"{name}: defined on {host}")
        if state in ("undefined", "shut off", "crashed"):
            guests.start_guest(config, host, name)
            log(f"{name}: started on {host}")
        elif state != "running":
            log(f"{name}: left {state} on {host}")


def _find_guests(config: LabConfig, host_names: list[str]) -> dict[str, tuple[str, str]]:
    """guest name -> (host, state) for every lab guest on the reachable hosts."""
    found = {}
    for host in host_names:
        uri = config.management_uri(host)
        if not hosts.is_reachable(uri):
            continue
        for name, state in guests.list_domains(uri).items():
            if is_guest_name(name) and _better_copy(state, found.get(name, (None, None))[1]):
                found[name] = (host, state)
    return found


def _better_copy(state: str, than: str | None) -> bool:
    if than is None:
        return True
    rank = {s: i for i, s in enumerate(_STATE_PREFERENCE)}
    return rank.get(state, len(rank)) < rank.get(than, len(rank))


def _guest_status(config: LabConfig, name: str, domains_by_host: dict[str, dict[str, str]]) -> GuestStatus:
    host, state = None, "undefined"
    for candidate, domains in domains_by_host.items():
        if name in domains and (host is None or _better_copy(domains[name], state)):
            host, state = candidate, domains[name]
    return GuestStatus(
        name=name, uuid=guests.guest_uuid(name), host=host, ip=guest_ip(name), mac=guest_mac(name),
        state=state, serial_log=guests.serial_log(config, name),
    )


def _guest_sort_key(name: str) -> int:
    return int(name[len("lab-vm"):])


def _destroy_running_domains(config: LabConfig, host: str, log: Log) -> None:
    uri = config.management_uri(host)
    if not hosts.is_reachable(uri):
        return
    for name, state in guests.list_domains(uri).items():
        if state != "shut off":
            guests.destroy_guest(config, host, name)
            log(f"{name}: destroyed on {host}")


def _running_guest_processes(config: LabConfig, state: dict) -> dict[str, dict]:
    return {
        f"{host}/{guest}": process.to_dict()
        for host in state["hosts"]
        for guest, process in guests.guest_processes(config, host).items()
    }


# State file -----------------------------------------------------------------------------------


def _load_state(config: LabConfig) -> dict:
    try:
        state = json.loads(config.state_file.read_text())
    except FileNotFoundError:
        state = {}
    except ValueError as error:
        raise LabError(f"{config.state_file} is corrupt ({error}): check with ps what still runs, then delete it")
    state.setdefault("netns", config.netns)
    state.setdefault("hosts", {})
    state.setdefault("guests", {})
    return state


def _save_state(config: LabConfig, state: dict) -> None:
    temporary = config.state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(config.state_file)


def _recorded(records: dict[str, dict]) -> list[dict]:
    return list(records.values())


@contextmanager
def _lab_lock(config: LabConfig):
    # One lab operation at a time (say, a test's stop-daemon while `up` runs).
    config.lab_dir.mkdir(parents=True, exist_ok=True)
    with config.lock_file.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
