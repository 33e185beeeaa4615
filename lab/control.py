"""Bring the lab up and down, report on it, and stop or start one host's libvirtd.

Every process the lab starts is recorded in <lab dir>/state.json, so `down` stops exactly
those and nothing else.
"""

import fcntl
import os
import signal
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lab import credentials, guests, hosts, netns
from lab.config import (
    LabConfig,
    LabError,
    guest_index,
    guest_ip,
    guest_mac,
    is_guest_name,
)
from lab.guest_image import GuestImage
from lab.processes import LabProcess, stop_processes

Log = Callable[[str], None]

# Among copies of one guest on several hosts (mid-migration, or left persistent on the
# source), the one that best tells where the guest lives comes first.
_STATE_PREFERENCE = ("running", "paused", "in shutdown", "pmsuspended", "shut off", "crashed")
_STATE_RANK = {state: rank for rank, state in enumerate(_STATE_PREFERENCE)}


@dataclass
class HostStatus:
    name: str
    uri: str  # management URI, from the root namespace
    peer_uri: str  # as the other hosts reach it, for peer-to-peer migration
    address: str  # on the lab's management network, which the root namespace reaches
    daemon_running: bool  # its libvirtd process is alive
    reachable: bool  # its libvirtd answered
    ssh_uri: str  # the same libvirtd through the host's sshd, from the root namespace
    tls_uri: str  # the same libvirtd through its TLS listener, from the root namespace
    migration_tls: bool  # its QEMU has certificates for an encrypted migration stream


@dataclass
class GuestStatus:
    name: str
    uuid: str
    host: str | None  # None when no reachable host has it
    ip: str
    mac: str
    # virsh's word ("running", "paused", "shut off", ...); "undefined" when no host has it,
    # "unknown" when no answering host has it but some host did not answer.
    state: str
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
    for directory in (config.hosts_dir, config.datastore_dir, config.serial_dir, config.image_dir):
        directory.mkdir(parents=True, exist_ok=True)
    with _lab_lock(config):
        state = _load_state(config)
        if state["hosts"] and state["netns"] != config.netns and netns.netns_exists(state["netns"]):
            raise LabError(
                f"the lab in {config.lab_dir} runs in network namespace {state['netns']}: "
                f"use that one, or bring it down first"
            )
        state["netns"] = config.netns
        started = time.monotonic()
        image = guests.guest_image(config, log)
        credentials.ensure_lab_credentials(config)
        with ThreadPoolExecutor(max_workers=1) as background:
            # A KVM probe boot can take 15 s (once per lab dir): run it while the hosts start.
            accel_probe = background.submit(guests.detect_accel, config, image)
            netns.create_netns(config)
            for name in config.host_names():
                _bring_up_host(config, name, state, log)
            accel, accel_reason = accel_probe.result()
        log(f"guests: {accel} ({accel_reason})")
        for name in config.guest_names():
            guests.ensure_guest_disk(config, name)
        for name in config.host_names():
            hosts.ensure_lab_network(config, name)
            hosts.ensure_datastore_pool(config, name)
        # Every host of the lab, not only config's: a guest may have been migrated anywhere.
        _bring_up_guests(config, list(state["hosts"]), image, accel, log)
        state["guests"] = sorted(set(state["guests"]) | set(config.guest_names()), key=guest_index)
        state["qemu"] = _running_guest_processes(config, state)
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
        # QEMU that libvirt could not destroy, its host's libvirtd being stopped; that libvirtd
        # tidies its records of them when it next starts.
        leftover_guests = {**state["qemu"], **_running_guest_processes(config, state)}
        stop_processes([LabProcess.from_dict(p) for p in leftover_guests.values()])
        for role in ("libvirtd", "sshd", "virtlogd", "reapers", "anchor"):
            stop_processes([p for record in state["hosts"].values() for p in _host_processes(record, role)])
        netns.delete_netns(state["netns"])
        config.state_file.unlink(missing_ok=True)
        log(f"lab down in {time.monotonic() - started:.1f} s")


def status(config: LabConfig) -> LabState:
    """What runs where, as the hosts themselves report it."""
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
        host_statuses.append(
            HostStatus(
                name=name,
                uri=uri,
                peer_uri=config.peer_uri(name),
                address=config.host_address(name),
                daemon_running=libvirtd is not None and libvirtd.is_alive(),
                reachable=reachable,
                ssh_uri=config.ssh_uri(name),
                tls_uri=config.tls_uri(name),
                migration_tls=credentials.has_migration_tls(config, name),
            )
        )
    guest_names = set(state["guests"] or config.guest_names())
    guest_names.update(g for domains in domains_by_host.values() for g in domains if is_guest_name(g))
    all_hosts_answered = len(domains_by_host) == len(host_names)
    accel = guests.read_accel(config)
    return LabState(
        lab_dir=config.lab_dir,
        netns=state["netns"],
        netns_exists=netns.netns_exists(state["netns"]),
        accel=accel.get("accel", "tcg"),
        accel_reason=accel.get("reason", "plain emulation unless a KVM probe boot succeeds"),
        hosts=host_statuses,
        guests=[
            _guest_status(config, g, domains_by_host, all_hosts_answered) for g in sorted(guest_names, key=guest_index)
        ],
    )


def stop_host_daemon(config: LabConfig, name: str, log: Log = print, *, kill: bool = False) -> None:
    """Stop one host's libvirtd, its guests running on: with SIGTERM, or with `kill` with
    SIGKILL, as a crash would, leaving it no moment to clean up."""
    with _lab_lock(config):
        state = _load_state(config)
        _require_running_host(config, state, name)
        libvirtd = _recorded_process(state, name, "libvirtd")
        if libvirtd is None or not libvirtd.is_alive():
            log(f"{name}'s libvirtd is not running")
            return
        stop_processes([libvirtd], signals=(signal.SIGKILL,) if kill else (signal.SIGTERM, signal.SIGKILL))
        log(f"{name}'s libvirtd {'killed' if kill else 'stopped'}")


def signal_host_daemon(config: LabConfig, name: str, sig: signal.Signals) -> int:
    """Send one host's libvirtd a signal (SIGSTOP freezes it: it accepts connections and
    answers nothing, while its guests' QEMU run on; SIGCONT lets it go on); returns its pid."""
    with _lab_lock(config):
        state = _load_state(config)
        _require_running_host(config, state, name)
        libvirtd = _recorded_process(state, name, "libvirtd")
        if libvirtd is None or not libvirtd.is_alive():
            raise LabError(f"{name}'s libvirtd is not running")
        os.kill(libvirtd.pid, sig)
        return libvirtd.pid


def start_host_daemon(config: LabConfig, name: str, log: Log = print) -> None:
    """Start one host's libvirtd again; it picks up the guests still running there."""
    with _lab_lock(config):
        state = _load_state(config)
        _require_running_host(config, state, name)
        _bring_up_host(config, name, state, log)
        state["qemu"] = _running_guest_processes(config, state)
        _save_state(config, state)


# Hosts ----------------------------------------------------------------------------------------


def _bring_up_host(config: LabConfig, name: str, state: dict, log: Log) -> None:
    """Start whatever of the host's anchor, virtlogd and libvirtd is not running.

    Each process is recorded as soon as it runs, so `down` stops it even if a later step fails.
    """
    record = state["hosts"].setdefault(name, {})
    # A reaper outlives its daemon while it still has guests' QEMU processes to reap.
    record["reapers"] = [p.to_dict() for p in _host_processes(record, "reapers") if p.is_alive()]
    netns.add_host_address(config, name)
    credentials.ensure_host_credentials(config, name)
    # Daemons read their configuration when they start, so rewriting it disturbs no running one.
    hosts.prepare_host_dir(config, name)
    anchor = _recorded_process(state, name, "anchor")
    if anchor is None or not anchor.is_alive():
        # Daemons still running from a lost anchor keep working: a new anchor mounts the same
        # directories, and virtlogd must live on, or running guests lose their serial logs.
        anchor = hosts.start_anchor(config, name)
        record["anchor"] = anchor.to_dict()
        _save_state(config, state)
    for program in hosts.HOST_DAEMONS:
        daemon = _recorded_process(state, name, program)
        if daemon is None or not daemon.is_alive():
            daemon, reaper = hosts.start_daemon(config, name, anchor, program)
            record[program] = daemon.to_dict()
            record["reapers"].append(reaper.to_dict())
            _save_state(config, state)
            log(f"{name}: {program} started (pid {daemon.pid})")
        elif program == "libvirtd" and not hosts.wait_until_reachable(config, name, daemon):
            raise LabError(
                f"{name}'s libvirtd (pid {daemon.pid}) runs but does not answer: "
                f"python -m lab stop-daemon {name}, then up again"
            )


def _require_running_host(config: LabConfig, state: dict, name: str) -> None:
    if not netns.netns_exists(state["netns"]):
        raise LabError(f"the lab in {config.lab_dir} is down: run `python -m lab up` first")
    if name not in state["hosts"]:
        raise LabError(f"{name} is not a host of the lab in {config.lab_dir}: {', '.join(state['hosts'])}")


def _host_processes(record: dict, role: str) -> list[LabProcess]:
    """A host's recorded processes in one role: "anchor", "virtlogd", "libvirtd", "sshd" or "reapers"."""
    recorded = record.get(role, [])
    return [LabProcess.from_dict(p) for p in (recorded if isinstance(recorded, list) else [recorded])]


def _recorded_process(state: dict, host: str, role: str) -> LabProcess | None:
    processes = _host_processes(state["hosts"].get(host, {}), role)
    return processes[0] if processes else None


# Guests ---------------------------------------------------------------------------------------


def _bring_up_guests(config: LabConfig, host_names: list[str], image: GuestImage, accel: str, log: Log) -> None:
    """Start the guests wherever they are defined (missing ones on their home host); wait
    until the ones started have booted."""
    placement = _find_guests(config, host_names)
    log_offsets = {}
    disk_cache = "none" if guests.supports_direct_io(config.datastore_dir) else "writeback"
    for name in config.guest_names():
        host, state = placement.get(name, (None, "undefined"))
        if host is None:
            host = config.home_host(name)
            guests.define_guest(config, host, name, guests.guest_domain_xml(config, host, name, image, accel, disk_cache))
            log(f"{name}: defined on {host}")
        if state in ("undefined", "shut off", "crashed"):
            log_offsets[name] = guests.serial_log_size(config, name)
            guests.start_guest(config, host, name)
            log(f"{name}: started on {host}")
        elif state != "running":
            log(f"{name}: left {state} on {host}")
    guests.wait_until_ready(config, log_offsets)


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
    unranked = len(_STATE_RANK)
    return _STATE_RANK.get(state, unranked) < _STATE_RANK.get(than, unranked)


def _guest_status(
    config: LabConfig, name: str, domains_by_host: dict[str, dict[str, str]], all_hosts_answered: bool
) -> GuestStatus:
    host, state = None, "undefined" if all_hosts_answered else "unknown"
    for candidate, domains in domains_by_host.items():
        if name in domains and (host is None or _better_copy(domains[name], state)):
            host, state = candidate, domains[name]
    return GuestStatus(
        name=name,
        uuid=guests.guest_uuid(name),
        host=host,
        ip=guest_ip(name),
        mac=guest_mac(name),
        state=state,
        serial_log=guests.serial_log(config, name),
    )


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
        raise LabError(
            f"{config.state_file} is corrupt ({error}): check with ps what still runs, then delete it"
        ) from error
    state.setdefault("netns", config.netns)
    state.setdefault("hosts", {})  # host -> {"anchor"/"virtlogd"/"libvirtd": process, "reapers": [...]}
    state.setdefault("guests", [])  # names of the guests `up` was asked for
    state.setdefault("qemu", {})  # "host/guest" -> QEMU process, as last seen
    return state


def _save_state(config: LabConfig, state: dict) -> None:
    temporary = config.state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(config.state_file)


@contextmanager
def _lab_lock(config: LabConfig):
    # One lab operation at a time (say, a test's stop-daemon while `up` runs).
    config.lab_dir.mkdir(parents=True, exist_ok=True)
    with config.lock_file.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
