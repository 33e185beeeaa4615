"""The one door to libvirt: every other module sees plain dataclasses and HypervisorError.

Each public function opens its own connection, runs in a worker thread and gives up after
`timeout` seconds, because a libvirt call to a host that stopped answering can block forever.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import libvirt

from .datastore_keys import datastore_source_key

T = TypeVar("T")

# libvirt prints every error to stderr unless a handler takes it; ours are raised instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class HypervisorError(Exception):
    """libvirt failed; the message says what an operator can do about it."""


class HypervisorTimeout(HypervisorError):
    pass


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    arch: str
    cpu_model: str
    cpu_count: int
    cpu_mhz: int
    cpu_xml: str
    memory_total_bytes: int
    memory_free_bytes: int
    cpu_times: dict[str, int]
    libvirt_version: str
    hypervisor_version: str


@dataclass(frozen=True)
class PoolFacts:
    name: str
    kind: str
    source_key: str
    target_path: str
    active: bool
    capacity_bytes: int
    available_bytes: int


@dataclass(frozen=True)
class NetworkFacts:
    name: str
    bridge: str
    active: bool


@dataclass(frozen=True)
class DiskFacts:
    target: str
    source: str
    format: str
    pool: str = ""


@dataclass(frozen=True)
class NicFacts:
    mac: str
    network: str
    bridge: str
    model: str


@dataclass(frozen=True)
class DomainFacts:
    uuid: str
    name: str
    state: str
    vcpus: int
    memory_bytes: int
    cpu_mode: str
    cpu_model: str
    persistent: bool
    disks: tuple[DiskFacts, ...] = ()
    nics: tuple[NicFacts, ...] = ()


@dataclass(frozen=True)
class HostSnapshot:
    facts: HostFacts
    pools: tuple[PoolFacts, ...] = ()
    networks: tuple[NetworkFacts, ...] = ()
    domains: tuple[DomainFacts, ...] = field(default_factory=tuple)


def read_host(uri: str, timeout: float) -> HostSnapshot:
    """Everything the inventory needs to know about one host, in one connection."""
    return _with_connection(uri, timeout, _read_snapshot)


def baseline_cpu(uri: str, host_cpu_xmls: list[str], timeout: float) -> tuple[str, str]:
    """The CPU every given host can offer, computed by libvirt on `uri`: (model, XML)."""

    def compute(conn: libvirt.virConnect) -> tuple[str, str]:
        xml = conn.baselineCPU(host_cpu_xmls, libvirt.VIR_CONNECT_BASELINE_CPU_MIGRATABLE)
        model = ET.fromstring(xml).findtext("model", default="")
        return model, xml

    return _with_connection(uri, timeout, compute)


def _with_connection(uri: str, timeout: float, work: Callable[[libvirt.virConnect], T]) -> T:
    def connect_and_work() -> T:
        conn = libvirt.open(uri)
        try:
            return work(conn)
        finally:
            try:
                conn.close()
            except libvirt.libvirtError:
                pass

    return _call_with_timeout(connect_and_work, timeout, what=f"libvirt at {uri}")


def _call_with_timeout(func: Callable[[], T], timeout: float, what: str) -> T:
    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["value"] = func()
        except BaseException as exc:  # handed to the caller's thread below
            result["error"] = exc

    # A daemon thread, not a pool: a call that never returns must not hold a pool slot.
    worker = threading.Thread(target=run, name=f"libvirt-call {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise HypervisorTimeout(f"{what} did not answer within {timeout:g} s")
    if "error" in result:
        error = result["error"]
        if isinstance(error, libvirt.libvirtError):
            raise HypervisorError(_describe(error)) from error
        raise error  # type: ignore[misc]
    return result["value"]  # type: ignore[return-value]


def _describe(error: libvirt.libvirtError) -> str:
    message = error.get_error_message() or str(error)
    return message.strip()


def _read_snapshot(conn: libvirt.virConnect) -> HostSnapshot:
    return HostSnapshot(
        facts=_host_facts(conn),
        pools=tuple(_pool_facts(pool) for pool in conn.listAllStoragePools(0)),
        networks=tuple(_network_facts(network) for network in conn.listAllNetworks(0)),
        domains=tuple(filter(None, (_domain_facts(dom) for dom in conn.listAllDomains(0)))),
    )


def _host_facts(conn: libvirt.virConnect) -> HostFacts:
    model, memory_mib, cpus, mhz, *_ = conn.getInfo()
    capabilities = ET.fromstring(conn.getCapabilities())
    host_cpu = capabilities.find("host/cpu")
    cpu_xml = ET.tostring(host_cpu, encoding="unicode") if host_cpu is not None else ""
    cpu_model = host_cpu.findtext("model", default=model) if host_cpu is not None else model
    memory = _optional(lambda: conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0), None)
    if memory:
        # Page cache and buffers are given back on demand, so they count as free for VMs.
        free_bytes = 1024 * (memory.get("free", 0) + memory.get("buffers", 0) + memory.get("cached", 0))
        # getInfo() sums the NUMA nodes' memory, which some machines under-report.
        total_bytes = 1024 * memory.get("total", 0) or memory_mib * 1024 * 1024
    else:
        free_bytes = conn.getFreeMemory()
        total_bytes = memory_mib * 1024 * 1024
    return HostFacts(
        hostname=conn.getHostname(),
        arch=capabilities.findtext("host/cpu/arch", default=""),
        cpu_model=cpu_model,
        cpu_count=cpus,
        cpu_mhz=mhz,
        cpu_xml=cpu_xml,
        memory_total_bytes=total_bytes,
        memory_free_bytes=free_bytes,
        cpu_times=dict(_optional(lambda: conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS, 0), {})),
        libvirt_version=_version_string(conn.getLibVersion()),
        hypervisor_version=_version_string(conn.getVersion()),
    )


def _optional(call: Callable[[], T], default: T) -> T:
    """A call some drivers do not implement (the test driver, some remote drivers)."""
    try:
        return call()
    except libvirt.libvirtError as error:
        if error.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return default
        raise


def _version_string(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def _pool_facts(pool: libvirt.virStoragePool) -> PoolFacts:
    root = ET.fromstring(pool.XMLDesc(0))
    active = bool(pool.isActive())
    capacity, available = 0, 0
    if active:
        _state, capacity, _allocation, available = pool.info()
    kind = root.get("type", "")
    target_path = root.findtext("target/path", default="")
    return PoolFacts(
        name=pool.name(),
        kind=kind,
        source_key=datastore_source_key(kind, root.find("source"), target_path),
        target_path=target_path,
        active=active,
        capacity_bytes=capacity,
        available_bytes=available,
    )


def _network_facts(network: libvirt.virNetwork) -> NetworkFacts:
    root = ET.fromstring(network.XMLDesc(0))
    bridge_element = root.find("bridge")
    bridge = bridge_element.get("name", "") if bridge_element is not None else ""
    return NetworkFacts(name=network.name(), bridge=bridge, active=bool(network.isActive()))


_DOMAIN_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutting_down",
    libvirt.VIR_DOMAIN_SHUTOFF: "shut_off",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}


def _domain_facts(dom: libvirt.virDomain) -> DomainFacts | None:
    try:
        state, reason = dom.state(0)
        persistent = bool(dom.isPersistent())
        if not persistent and state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_MIGRATION:
            return None  # an incoming migration: the VM still runs on its source
        # The inactive definition has the disks, NICs and CPU, and reading it takes no domain
        # job: the live one waits for a running migration job and the sync would time out.
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError as error:
        # Gone between listing and reading (a migration finished, a transient VM stopped).
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
    cpu = root.find("cpu")
    return DomainFacts(
        uuid=dom.UUIDString(),
        name=dom.name(),
        state=_DOMAIN_STATES.get(state, "unknown"),
        vcpus=int(root.findtext("vcpu", default="0")),
        memory_bytes=_memory_bytes(root.find("memory")),
        cpu_mode=cpu.get("mode", "") if cpu is not None else "",
        cpu_model=cpu.findtext("model", default="") if cpu is not None else "",
        persistent=persistent,
        disks=tuple(_disk_facts(disk) for disk in root.findall("devices/disk[@device='disk']")),
        nics=tuple(_nic_facts(nic) for nic in root.findall("devices/interface")),
    )


_MEMORY_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}


def _memory_bytes(element: ET.Element | None) -> int:
    if element is None or not element.text:
        return 0
    return int(element.text) * _MEMORY_UNITS.get(element.get("unit", "KiB").lower(), 1024)


def _disk_facts(disk: ET.Element) -> DiskFacts:
    source = disk.find("source")
    attributes = source.attrib if source is not None else {}
    pool = attributes.get("pool", "")
    if "file" in attributes or "dev" in attributes:
        path = attributes.get("file") or attributes.get("dev", "")
    elif "protocol" in attributes:
        path = f"{attributes['protocol']}:{attributes.get('name', '')}"
    else:
        path = f"{pool}/{attributes.get('volume', '')}" if pool else ""
    driver = disk.find("driver")
    return DiskFacts(
        target=disk.find("target").get("dev", "") if disk.find("target") is not None else "",
        source=path,
        format=driver.get("type", "") if driver is not None else "",
        pool=pool,
    )


def _nic_facts(nic: ET.Element) -> NicFacts:
    source = nic.find("source")
    attributes = source.attrib if source is not None else {}
    mac = nic.find("mac")
    model = nic.find("model")
    return NicFacts(
        mac=(mac.get("address", "") if mac is not None else "").lower(),
        network=attributes.get("network", ""),
        bridge=attributes.get("bridge", ""),
        model=model.get("type", "") if model is not None else "",
    )


# Migration ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStats:
    """libvirt's statistics of a domain's migration job, in bytes, ms and bytes/s."""

    active: bool
    elapsed_ms: int = 0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_dirty_rate_bytes_s: int = 0
    memory_iteration: int = 0
    memory_bps: int = 0
    downtime_ms: int | None = None
    auto_converge_throttle: int = 0
    post_copy: bool = False
    error_message: str = ""

    @classmethod
    def from_libvirt(cls, job_type: int, stats: dict, post_copy: bool = False) -> "JobStats":
        page_size = stats.get("memory_page_size", 4096) or 4096
        return cls(
            active=job_type in (libvirt.VIR_DOMAIN_JOB_BOUNDED, libvirt.VIR_DOMAIN_JOB_UNBOUNDED),
            elapsed_ms=stats.get("time_elapsed", 0),
            data_total=stats.get("data_total", 0),
            data_processed=stats.get("data_processed", 0),
            data_remaining=stats.get("data_remaining", 0),
            memory_dirty_rate_bytes_s=stats.get("memory_dirty_rate", 0) * page_size,
            memory_iteration=stats.get("memory_iteration", 0),
            memory_bps=stats.get("memory_bps", 0),
            downtime_ms=stats.get("downtime"),
            auto_converge_throttle=stats.get("auto_converge_throttle", 0),
            post_copy=post_copy,
            error_message=stats.get("errmsg", ""),
        )


@dataclass(frozen=True)
class MigrationRequest:
    uuid: str
    destination_uri: str  # as the source's libvirtd reaches the destination
    bandwidth_mib_s: int | None = None
    auto_converge: bool = False
    auto_converge_initial: int = 20
    auto_converge_increment: int = 10
    post_copy: bool = False


class MigrationRun:
    """A peer-to-peer live migration running in its own thread and connection.

    libvirt's migrate call blocks until the migration ends; the caller polls `finished`
    and monitors the job through a DomainControl meanwhile.
    """

    def __init__(self, source_uri: str, request: MigrationRequest):
        self.source_uri = source_uri
        self.request = request
        self.error: HypervisorError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"migrate {request.uuid}", daemon=True)

    def start(self) -> "MigrationRun":
        self._thread.start()
        return self

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            conn = libvirt.open(self.source_uri)
            try:
                dom = conn.lookupByUUIDString(self.request.uuid)
                dom.migrateToURI3(self.request.destination_uri, _migration_params(self.request), _migration_flags(self.request))
            finally:
                conn.close()
        except libvirt.libvirtError as error:
            self.error = HypervisorError(_describe(error))
        except Exception as error:  # never leave the caller waiting on a thread that died silently
            self.error = HypervisorError(f"migration thread failed: {error!r}")
        finally:
            self._done.set()


def _migration_flags(request: MigrationRequest) -> int:
    # No VIR_MIGRATE_UNDEFINE_SOURCE: the completed job's statistics are read on the source
    # (the destination has none after post-copy), so the caller undefines it afterwards.
    flags = (
        libvirt.VIR_MIGRATE_LIVE
        | libvirt.VIR_MIGRATE_PEER2PEER
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
    )
    if request.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if request.post_copy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    return flags


def _migration_params(request: MigrationRequest) -> dict:
    params: dict = {}
    if request.bandwidth_mib_s:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = request.bandwidth_mib_s
        if request.post_copy:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = request.bandwidth_mib_s
    if request.auto_converge:
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = request.auto_converge_initial
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = request.auto_converge_increment
    return params


class DomainControl:
    """One connection to a host, held open for the short, repeated calls of a monitor loop."""

    def __init__(self, uri: str, timeout: float):
        self.uri, self.timeout = uri, timeout
        self._conn: libvirt.virConnect | None = None

    def __enter__(self) -> "DomainControl":
        self._conn = _call_with_timeout(lambda: libvirt.open(self.uri), self.timeout, what=f"libvirt at {self.uri}")
        return self

    def __exit__(self, *exc) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                _call_with_timeout(conn.close, self.timeout, what=f"libvirt at {self.uri}")
            except HypervisorError:
                pass

    def _on_domain(self, uuid: str, action: Callable, what: str):
        def call():
            return action(self._conn.lookupByUUIDString(uuid))

        return _call_with_timeout(call, self.timeout, what=f"{what} at {self.uri}")

    def job_stats(self, uuid: str, completed: bool = False) -> JobStats:
        flags = libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED if completed else 0

        def read(dom):
            stats = dom.jobStats(flags)
            # The source pauses with this reason once the guest runs on the destination.
            state, reason = dom.state(0)
            post_copy = state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY
            return JobStats.from_libvirt(stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE), stats, post_copy)

        return self._on_domain(uuid, read, "reading job stats")

    def set_max_downtime(self, uuid: str, downtime_ms: int) -> None:
        self._on_domain(uuid, lambda dom: dom.migrateSetMaxDowntime(downtime_ms, 0), "setting max downtime")

    def start_post_copy(self, uuid: str) -> None:
        self._on_domain(uuid, lambda dom: dom.migrateStartPostCopy(0), "switching to post-copy")

    def abort_job(self, uuid: str) -> None:
        self._on_domain(uuid, lambda dom: dom.abortJob(), "aborting the migration")

    def resident_bytes(self, uuid: str) -> int:
        """Memory the guest has touched (QEMU's resident set): what a first pre-copy pass sends."""
        return self._on_domain(uuid, lambda dom: dom.memoryStats().get("rss", 0) * 1024, "reading memory stats")

    def measure_dirty_rate(self, uuid: str, seconds: int = 1) -> int | None:
        """Distinct bytes the guest dirties per second, by page sampling (the dirty-bitmap mode
        reads 0 under emulation). None when the hypervisor cannot measure it."""

        def measure(dom):
            try:
                dom.startDirtyRateCalc(seconds, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
            except libvirt.libvirtError:
                return None
            deadline = time.monotonic() + seconds + 3
            while time.monotonic() < deadline:
                time.sleep(0.2)
                stats = dict(self._conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_DIRTYRATE)[0][1])
                if stats.get("dirtyrate.calc_status") == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
                    return stats.get("dirtyrate.megabytes_per_second", 0) * 1024 * 1024
            return None

        return _call_with_timeout(
            lambda: measure(self._conn.lookupByUUIDString(uuid)), self.timeout + seconds + 3, what=f"measuring dirty rate at {self.uri}"
        )

    def domain_state(self, uuid: str) -> str | None:
        """The domain's state on this host ("running", "shut_off", ...), or None if it is not here."""

        def read():
            try:
                dom = self._conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return None
                raise
            state, reason = dom.state(0)
            # Paused for a migration is neither running here nor stopped: the move is unfinished.
            if state == libvirt.VIR_DOMAIN_PAUSED and reason in (libvirt.VIR_DOMAIN_PAUSED_MIGRATION, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY):
                return "migrating"
            return _DOMAIN_STATES.get(state, "unknown")

        return _call_with_timeout(read, self.timeout, what=f"libvirt at {self.uri}")

    def compare_cpu(self, cpu: "DomainCpu") -> tuple[bool, str]:
        """Whether this host's hypervisor can give a guest its CPU, for the guest's own
        virtualisation type (plain emulation offers more than KVM would): (ok, detail)."""

        def compare():
            try:
                result = self._conn.compareHypervisorCPU(
                    None, cpu.arch or None, cpu.machine or None, cpu.virt_type or None, cpu.xml,
                    libvirt.VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE,
                )
            except libvirt.libvirtError as error:
                if error.get_error_code() == libvirt.VIR_ERR_CPU_INCOMPATIBLE:
                    return False, _describe(error)
                raise
            return result != libvirt.VIR_CPU_COMPARE_INCOMPATIBLE, ""

        return _call_with_timeout(compare, self.timeout, what=f"comparing CPUs at {self.uri}")

    def undefine_if_inactive(self, uuid: str) -> bool:
        """Remove a domain's definition from a host where it no longer runs (the source, after
        a migration). Never touches a running domain. Returns whether it removed one."""

        def undefine():
            try:
                dom = self._conn.lookupByUUIDString(uuid)
            except libvirt.libvirtError as error:
                if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    return False
                raise
            if dom.isActive():
                return False
            dom.undefine()
            return True

        return _call_with_timeout(undefine, self.timeout, what=f"undefining at {self.uri}")

    def domain_cpu(self, uuid: str) -> "DomainCpu":
        def read(dom):
            root = ET.fromstring(dom.XMLDesc(0))
            cpu = root.find("cpu")
            os_type = root.find("os/type")
            return DomainCpu(
                xml=ET.tostring(cpu, encoding="unicode") if cpu is not None and cpu.find("model") is not None else "",
                virt_type=root.get("type", ""),
                arch=os_type.get("arch", "") if os_type is not None else "",
                machine=os_type.get("machine", "") if os_type is not None else "",
            )

        return self._on_domain(uuid, read, "reading the domain's CPU")


@dataclass(frozen=True)
class DomainCpu:
    xml: str  # the <cpu> element, empty when the guest takes the hypervisor's default
    virt_type: str  # "kvm" or "qemu" (plain emulation)
    arch: str
    machine: str


def domain_state(uri: str, uuid: str, timeout: float) -> str | None:
    with DomainControl(uri, timeout) as control:
        return control.domain_state(uuid)


def domain_state_or_unreachable(uri: str, uuid: str, timeout: float) -> str | None:
    """Like domain_state, but a host that does not answer reads "unreachable"."""
    try:
        return domain_state(uri, uuid, timeout)
    except HypervisorError:
        return "unreachable"
