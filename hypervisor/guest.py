"""One domain on one host: its state and the calls a migration makes on it.

`Guest` works through a held `Connection`, so a monitor loop pays for one connection, not
one per call. Every call has the connection's time limit.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import libvirt

from . import nonzero
from .connection import Connection, describe, with_connection
from .cpu import features_of
from .errors import HypervisorError
from .job import JobSample
from .states import DomainState, domain_state_of, is_incoming_copy, is_post_copy, is_post_copy_failed, job_is_active

T = TypeVar("T")

# Namespaces a definition may carry, under the prefixes libvirt writes, so a redefinition
# reads as the original did.
ET.register_namespace("qemu", "http://libvirt.org/schemas/domain/qemu/1.0")
ET.register_namespace("test", "http://libvirt.org/schemas/domain/test/1.0")


@dataclass(frozen=True)
class DomainCpu:
    xml: str  # the <cpu> element, empty when the guest takes the hypervisor's default
    virt_type: str  # "kvm" or "qemu" (plain emulation)
    arch: str
    machine: str


@dataclass(frozen=True)
class CpuOffer:
    compatible: bool
    detail: str  # libvirt's words when it refuses
    missing: tuple[str, ...] = ()  # features the guest's CPU asks for that the host's CPU lacks


class Guest:
    def __init__(self, connection: Connection, uuid: str):
        self.connection, self.uuid = connection, uuid

    def _on_domain(self, action: Callable[[libvirt.virDomain], T], what: str, extra_seconds: float = 0) -> T:
        return self.connection.call(lambda conn: action(conn.lookupByUUIDString(self.uuid)), what, extra_seconds)

    def state(self, ask_job: bool = True) -> DomainState:
        """Where the domain stands on this host; ABSENT when it is not defined here. Without
        `ask_job`, from its state and reason alone: libvirt answers those even while a job holds
        the domain (its migration job opening the stream, for one), where the job's statistics
        wait for that job to end."""

        def read(conn: libvirt.virConnect) -> DomainState:
            dom = _domain_or_none(conn, self.uuid)
            if dom is None:
                return DomainState.ABSENT
            state, reason = dom.state(0)
            # Only a running source can hide a migration behind its state. Asking a domain
            # paused for an incoming migration would wait for that migration's job, and the
            # destination of a broken post-copy has no statistics to give (its state says it).
            asks_job = ask_job and state == libvirt.VIR_DOMAIN_RUNNING and not is_post_copy_failed(state, reason)
            job = dom.jobStats(0) if asks_job else {}
            return domain_state_of(state, reason, job)

        return self.connection.call(read, "reading the domain's state")

    def job_sample(self, completed: bool = False) -> JobSample:
        """The migration job's statistics now, or those of the last completed job."""
        flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0

        def read(dom: libvirt.virDomain) -> JobSample:
            stats = dom.jobStats(flags)
            state, reason = dom.state(0)
            return JobSample.from_stats(
                stats, active=job_is_active(stats), post_copy=is_post_copy(state, reason), post_copy_failed=is_post_copy_failed(state, reason)
            )

        return self._on_domain(read, "reading job stats")

    def on_pass_end(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call `callback(pass number)` each time a pre-copy pass of this domain's migration
        ends, from libvirt's migration-iteration event; returns what stops it. Needs the
        event loop (hypervisor.events) running before the connection was opened."""

        def register(conn: libvirt.virConnect) -> int:
            dom = conn.lookupByUUIDString(self.uuid)
            event = libvirt.VIR_DOMAIN_EVENT_ID_MIGRATION_ITERATION
            return conn.domainEventRegisterAny(dom, event, lambda _conn, _dom, iteration, _opaque: callback(iteration), None)

        registration = self.connection.call(register, "subscribing to the migration's pass ends")

        def stop() -> None:
            try:
                self.connection.call(lambda conn: conn.domainEventDeregisterAny(registration), "unsubscribing from the pass ends")
            except HypervisorError:
                pass  # the connection closes with the monitor anyway

        return stop

    def set_max_downtime(self, downtime_ms: int) -> None:
        self._on_domain(lambda dom: dom.migrateSetMaxDowntime(downtime_ms, 0), "setting max downtime")

    def set_max_speed(self, mib_s: int, post_copy: bool = False) -> None:
        """The migration's bandwidth from now on; in post-copy, also the page requests' one."""

        def apply(dom: libvirt.virDomain) -> None:
            dom.migrateSetMaxSpeed(mib_s, 0)
            if post_copy:
                dom.migrateSetMaxSpeed(mib_s, libvirt.VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY)

        self._on_domain(apply, "setting the migration bandwidth")

    def start_post_copy(self) -> None:
        self._on_domain(lambda dom: dom.migrateStartPostCopy(0), "switching to post-copy")

    def abort_job(self) -> None:
        self._on_domain(lambda dom: dom.abortJob(), "aborting the migration")

    def interrupt_post_copy(self) -> None:
        """Stop a post-copy migration's stream on the source (libvirt 8.5.0 and later): QEMU
        pauses the migration and libvirt marks the source "post-copy failed", where a resume
        (VIR_MIGRATE_POSTCOPY_RESUME) could pick it up again. A post-copy cannot be aborted."""
        self._on_domain(lambda dom: dom.abortJobFlags(libvirt.VIR_DOMAIN_ABORT_JOB_POSTCOPY), "interrupting the post-copy migration")

    def resident_bytes(self) -> int:
        """Memory the guest has touched (QEMU's resident set): what a first pre-copy pass sends."""
        return self._on_domain(lambda dom: dom.memoryStats().get("rss", 0) * 1024, "reading memory stats")

    def nonzero_memory_bytes(self, chunks: int = nonzero.SAMPLED_CHUNKS) -> int | None:
        """The guest's RAM that is not all zeros, estimated from a sample of its physical
        memory (`nonzero`): what a first pre-copy pass sends. None where libvirt cannot read
        the guest's memory (another job holds the domain, a driver without memory peeks, an
        architecture whose RAM layout is not known here)."""

        def sample(dom: libvirt.virDomain) -> int | None:
            root = ET.fromstring(dom.XMLDesc(0))
            os_type = root.find("os/type")
            memory = dom.info()[2] * 1024  # the RAM it runs with now, in KiB
            arch, machine = (os_type.get("arch", ""), os_type.get("machine", "")) if os_type is not None else ("", "")
            try:
                read = [dom.memoryPeek(address, nonzero.CHUNK, libvirt.VIR_MEMORY_PHYSICAL)
                        for address in nonzero.sample_addresses(nonzero.guest_ram_ranges(memory, arch, machine), chunks)]  # fmt: skip
            except libvirt.libvirtError:
                return None
            return nonzero.nonzero_bytes(read, memory)

        return self._on_domain(sample, "sampling the guest's memory", extra_seconds=chunks * 0.1)

    def measure_dirty_rate(self, seconds: int = 1) -> int | None:
        """Distinct bytes the guest dirties per second, by page sampling (the dirty-bitmap mode
        reads 0 under emulation). None when the hypervisor cannot measure it now."""

        def measure(conn: libvirt.virConnect) -> int | None:
            dom = conn.lookupByUUIDString(self.uuid)

            def status() -> dict:
                return dict(conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1])

            try:
                dom.startDirtyRateCalc(seconds, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
            except libvirt.libvirtError:
                # The inventory's background measurement is under way: its result will do if
                # it samples as long. A longer one (its working-set window) is not waited for.
                running = status()
                if running.get("dirtyrate.calc_status") != libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING:
                    return None
                if running.get("dirtyrate.calc_period") != seconds:
                    return None
            deadline = time.monotonic() + seconds + 3
            while time.monotonic() < deadline:
                time.sleep(0.2)
                stats = status()
                if stats.get("dirtyrate.calc_status") == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
                    return stats.get("dirtyrate.megabytes_per_second", 0) * 1024 * 1024
            return None

        return self.connection.call(measure, "measuring the dirty rate", extra_seconds=seconds + 3)

    def dirty_rate_measurement_ended(self, limit_seconds: float) -> float:
        """Wait, up to `limit_seconds`, for a dirty-rate measurement under way in the guest's
        QEMU to end; the seconds waited. QEMU 10.0 can deadlock when that measurement's
        thread exits during a migration's completion (both exits wait on RCU's registry lock
        while RCU waits on them: the guest stays paused on the source, its migration
        "cancelling" for good), so no migration starts while one runs."""

        def wait(conn: libvirt.virConnect) -> float:
            dom = conn.lookupByUUIDString(self.uuid)
            started = time.monotonic()
            while time.monotonic() - started < limit_seconds:
                stats = dict(conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1])
                if stats.get("dirtyrate.calc_status") != libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING:
                    break
                time.sleep(0.1)
            return time.monotonic() - started

        return self.connection.call(wait, "waiting for the dirty-rate measurement", extra_seconds=limit_seconds)

    def cpu(self) -> DomainCpu:
        def read(dom: libvirt.virDomain) -> DomainCpu:
            root = ET.fromstring(dom.XMLDesc(0))
            cpu = root.find("cpu")
            os_type = root.find("os/type")
            return DomainCpu(
                xml=ET.tostring(cpu, encoding="unicode") if cpu is not None and cpu.find("model") is not None else "",
                virt_type=root.get("type", ""),
                arch=os_type.get("arch", "") if os_type is not None else "",
                machine=os_type.get("machine", "") if os_type is not None else "",
            )

        return self._on_domain(read, "reading the domain's CPU")

    def destroy_incoming(self) -> DomainState:
        """Stop this host's incoming copy of a migration, which has never run the guest, and
        only that: ends a migration whose source's libvirtd has stopped answering (its QEMU's
        stream then fails, and the guest runs on there). Returns the domain's state here
        afterwards: ABSENT once the incoming copy is gone; any other state was left alone."""
        return self.connection.call(lambda conn: _stop_if_incoming_copy(conn, self.uuid)[1], "stopping the incoming copy")

    def undefine_if_inactive(self) -> bool:
        """Remove the definition from a host where the domain no longer runs (the source, after
        a migration). Never touches a running domain. Returns whether it removed one."""

        def undefine(conn: libvirt.virConnect) -> bool:
            dom = _domain_or_none(conn, self.uuid)
            if dom is None or dom.isActive():
                return False
            dom.undefine()
            return True

        return self.connection.call(undefine, "undefining the domain")


def offers_cpu(connection: Connection, cpu: DomainCpu) -> CpuOffer:
    """Whether this host's hypervisor can give a guest its CPU, for the guest's own
    virtualisation type (plain emulation offers more than KVM would); when it cannot, the
    features that stand in the way."""

    def compare(conn: libvirt.virConnect) -> CpuOffer:
        try:
            result = conn.compareHypervisorCPU(
                None, cpu.arch or None, cpu.machine or None, cpu.virt_type or None, cpu.xml,
                libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE,
            )
        except libvirt.libvirtError as error:
            if error.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE:
                return CpuOffer(False, describe(error), _missing_features(conn, cpu))
            raise
        if result == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
            return CpuOffer(False, "", _missing_features(conn, cpu))
        return CpuOffer(True, "")

    return connection.call(compare, "comparing CPUs")


def _missing_features(conn: libvirt.virConnect, cpu: DomainCpu) -> tuple[str, ...]:
    """The guest's CPU features that this host's CPU lacks; empty when libvirt cannot expand either."""
    host_cpu = ET.fromstring(conn.getCapabilities()).find("host/cpu")
    arch = cpu.arch or "x86_64"
    wanted = features_of(conn, cpu.xml, arch)
    offered = features_of(conn, ET.tostring(host_cpu, encoding="unicode"), arch) if host_cpu is not None else None
    if wanted is None or offered is None:
        return ()
    return tuple(sorted(wanted - offered))


def set_next_boot_cpu(uri: str, uuid: str, cpu_xml: str, timeout: float) -> int | None:
    """Give the domain's persistent definition this <cpu> (its model, vendor and features),
    keeping the topology, NUMA cells and cache it had. A running domain keeps the CPU it
    started with until it is powered off and started again: returns that running instance's
    ID, or None when the domain does not run."""

    def redefine(conn: libvirt.virConnect) -> int | None:
        dom = conn.lookupByUUIDString(uuid)
        if not dom.isPersistent():
            raise HypervisorError(f"{dom.name()} is transient: it has no definition for its next boot to change.")
        # SECURE keeps the console passwords, which a definition read without it would lose.
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        root_cpu = root.find("cpu")
        wanted = ET.fromstring(cpu_xml)
        if root_cpu is not None:
            kept = [child for child in root_cpu if child.tag in ("topology", "numa", "cache")]
            wanted.extend(kept)
            root.remove(root_cpu)
        root.insert(_cpu_position(root), wanted)
        conn.defineXML(ET.tostring(root, encoding="unicode"))
        return dom.ID() if dom.isActive() else None

    return with_connection(uri, timeout, redefine)


def _cpu_position(root: ET.Element) -> int:
    """libvirt accepts <cpu> anywhere; after <features> (or <os>) is where it writes it."""
    names = [child.tag for child in root]
    for anchor in ("features", "os"):
        if anchor in names:
            return names.index(anchor) + 1
    return len(names)


def domain_state(uri: str, uuid: str, timeout: float, ask_job: bool = True) -> DomainState:
    """Where the domain stands on the host at `uri` (see Guest.state); UNREACHABLE when the
    host does not answer."""
    try:
        with Connection(uri, timeout) as connection:
            return Guest(connection, uuid).state(ask_job)
    except HypervisorError:
        return DomainState.UNREACHABLE


def _domain_or_none(conn: libvirt.virConnect, uuid: str) -> libvirt.virDomain | None:
    """The domain, or None where it is not defined on this host."""
    try:
        return conn.lookupByUUIDString(uuid)
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def stop_incoming_copy(uri: str, uuid: str, timeout: float) -> bool:
    """Stop the domain on this host if it is a copy waiting for an incoming migration's stream
    (transient, paused for the migration): before libvirt's finish step resumes it, such a copy
    has never run the guest, which still runs on its source. Returns whether it stopped one."""
    return with_connection(uri, timeout, lambda conn: _stop_if_incoming_copy(conn, uuid)[0])


def _stop_if_incoming_copy(conn: libvirt.virConnect, uuid: str) -> tuple[bool, DomainState]:
    """Destroy the domain only if it is an incoming copy that never ran the guest; returns
    whether it did and the domain's state here afterwards (ABSENT once gone)."""
    dom = _domain_or_none(conn, uuid)
    if dom is None:
        return False, DomainState.ABSENT
    state, reason = dom.state(0)
    if not is_incoming_copy(state, reason, bool(dom.isPersistent())):
        return False, domain_state_of(state, reason, {})
    dom.destroy()
    return True, DomainState.ABSENT
