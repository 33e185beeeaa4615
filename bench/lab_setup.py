"""The bench's own lab: its configuration (1 GiB guests, one per dirty rate), bringing it up within
a bound, and the one guest a cell needs: checked, running alone, booted and beating."""

from __future__ import annotations

import os
import platform
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.config import (
    GUEST_FOR_RATE,
    GUEST_MEMORY_MIB,
    GUEST_READY_TIMEOUT_S,
    LAB_UP_TIMEOUT_S,
    WORKING_SET_MIB,
    BenchError,
    log,
)
from lab import control as lab_control
from lab.commands import domain_names, virsh
from lab.config import GuestWorkload, LabConfig
from lab.probes import READY_MARKER

READY = READY_MARKER.encode()


def lab_config(lab_dir: Path, netns: str) -> LabConfig:
    return LabConfig(
        lab_dir=lab_dir, netns=netns, host_count=2, guest_count=len(GUEST_FOR_RATE), guest_memory_mib=GUEST_MEMORY_MIB,
        workloads={guest: GuestWorkload(dirty_mb=WORKING_SET_MIB, dirty_rate=rate) for rate, guest in GUEST_FOR_RATE.items()},
    )  # fmt: skip


def lab_log(line: str) -> None:
    log(f"lab: {line}")


def bring_lab_up(config: LabConfig) -> lab_control.LabState:
    """`lab.control.up`, within LAB_UP_TIMEOUT_S; returns its LabState."""
    outcome: dict = {}

    def up():
        try:
            outcome["state"] = lab_control.up(config, log=lab_log)
        except BaseException as error:  # reported below, in the main thread
            outcome["error"] = error

    thread = threading.Thread(target=up, name="lab up", daemon=True)
    thread.start()
    thread.join(LAB_UP_TIMEOUT_S)
    if thread.is_alive():
        raise BenchError(f"the lab did not come up within {LAB_UP_TIMEOUT_S} s")
    if "error" in outcome:
        raise BenchError(f"the lab did not come up: {outcome['error']}") from outcome["error"]
    return outcome["state"]


@dataclass
class BenchLab:
    """What the bench uses of the lab once it is up."""

    lab_dir: Path
    netns: str
    uri: dict[str, str]  # host name -> management URI (unix socket, from here)
    peer_uri: dict[str, str]  # host name -> how the other host's libvirtd reaches it
    serial_logs: dict[str, Path]  # guest name -> its serial log
    guest_ips: dict[str, str]  # guest name -> its address in the lab's network namespace

    @classmethod
    def from_state(cls, state: lab_control.LabState, lab_dir: Path) -> BenchLab:
        return cls(
            lab_dir=lab_dir, netns=state.netns,
            uri={h.name: h.uri for h in state.hosts}, peer_uri={h.name: h.peer_uri for h in state.hosts},
            serial_logs={g.name: Path(g.serial_log) for g in state.guests}, guest_ips={g.name: g.ip for g in state.guests},
        )  # fmt: skip

    @property
    def names(self) -> list[str]:
        return sorted(self.uri)

    def other(self, name: str) -> str:
        return next(h for h in self.names if h != name)

    def running_on(self, guest: str) -> list[str]:
        return [h for h in self.names if guest in domain_names(self.uri[h])]

    def defined_on(self, guest: str) -> list[str]:
        return [h for h in self.names if guest in domain_names(self.uri[h], all_domains=True)]

    def versions(self) -> dict:
        text = virsh(self.uri[self.names[0]], "version", check=False).stdout
        return {"virsh version": " / ".join(line.strip() for line in text.splitlines() if line.strip()), "kernel": platform.release(), "cpus": os.cpu_count()}


def stop_other_guests(lab: BenchLab, guest: str) -> None:
    """Only one guest runs at a time: destroy every other one before it competes for the CPUs."""
    for host in lab.names:
        for other in domain_names(lab.uri[host]):
            if other != guest:
                result = virsh(lab.uri[host], "destroy", other, check=False)
                log(f"{other}: destroyed on {host} (one guest at a time)" if result.returncode == 0 else f"{other}: destroy on {host}: {result.stderr.strip()}")


def check_guest_definition(lab: BenchLab, host: str, guest: str, rate: int) -> None:
    """The guest's workload is on its kernel command line, fixed when first defined: check it."""
    xml = virsh(lab.uri[host], "dumpxml", "--inactive", guest).stdout
    cmdline = re.search(r"<cmdline>(.*?)</cmdline>", xml)
    memory = re.search(r"<memory unit='KiB'>(\d+)</memory>", xml)
    expected = f"dirty_mb={WORKING_SET_MIB} dirty_rate={rate}"
    if not cmdline or expected not in cmdline[1] or not memory or int(memory[1]) != GUEST_MEMORY_MIB * 1024:
        raise BenchError(
            f"{guest} on {host} is not the bench's guest (wants {GUEST_MEMORY_MIB} MiB and '{expected}', has "
            f"{int(memory[1]) // 1024 if memory else '?'} MiB and {cmdline[1] if cmdline else 'no cmdline'!r}): "
            "this lab dir was set up differently; use another --lab-dir or bring it down and remove its guests' definitions"
        )


def only_guest_running(lab: BenchLab, guest: str, rate: int) -> str:
    """Destroy every other guest, start this one if it is not running; returns its host."""
    stop_other_guests(lab, guest)
    where = lab.running_on(guest)
    if len(where) > 1:
        raise BenchError(f"{guest} runs on {', '.join(where)} at once")
    if where:
        check_guest_definition(lab, where[0], guest, rate)
        return where[0]
    defined = lab.defined_on(guest)
    if len(defined) != 1:
        raise BenchError(f"{guest} should be defined on exactly one host, is on {defined or 'none'}")
    host = defined[0]
    check_guest_definition(lab, host, guest, rate)
    serial_log = lab.serial_logs[guest]
    offset = serial_log.stat().st_size if serial_log.exists() else 0
    virsh(lab.uri[host], "start", guest)
    log(f"{guest}: started on {host}; waiting for READY and heartbeats")
    wait_until_ready(serial_log, offset)
    return host


def wait_until_ready(serial_log: Path, offset: int) -> None:
    deadline = time.monotonic() + GUEST_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if serial_log.exists():
            with serial_log.open("rb") as f:
                f.seek(offset)
                text = f.read()
            ready = text.find(READY)
            if ready >= 0 and text.count(b"HB seq=", ready) >= 10:  # about 1 s of heartbeats
                return
        time.sleep(0.2)
    raise BenchError(f"no READY line and heartbeats in {serial_log} within {GUEST_READY_TIMEOUT_S} s")
