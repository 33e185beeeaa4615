"""What the inventory reads from a host: its facts, storage pools, networks and domains."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import libvirt

from .busy_domains import BUSY_DOMAIN_SECONDS, busy_domains, within
from .connection import call_with_timeout, close_soon, open_connection, with_connection
from .uris import redact
from .cpu import arch_of, features_of
from .datastore_keys import DIRECTORY_KINDS, datastore_source_key, names_shared_storage
from .datastore_markers import directory_marker
from .sampling import DIRTY_RATE_SAMPLE_SECONDS, WORKING_SET_WINDOW_SECONDS
from .states import DomainPower, is_incoming_copy, power_of

T = TypeVar("T")


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
    # Every feature its CPU has (its model's and the extra ones); None where libvirt cannot tell.
    cpu_features: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PoolFacts:
    name: str
    kind: str
    source_key: str
    target_path: str
    active: bool
    capacity_bytes: int
    available_bytes: int
    # Its key names storage only this host reaches (see datastore_keys): a local datastore.
    local: bool = False


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
    # Its volume's size as the guest sees it and what it takes on its datastore (what a copy
    # moves); None where no storage pool holds it.
    capacity_bytes: int | None = None
    allocation_bytes: int | None = None


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
    power: DomainPower
    vcpus: int
    memory_bytes: int
    cpu_mode: str
    cpu_model: str
    persistent: bool
    disks: tuple[DiskFacts, ...] = ()
    # Its load, from libvirt's domain statistics: the vCPUs' busy time so far, and the memory
    # its QEMU process holds (what a live migration first copies). None where not reported.
    cpu_time_ns: int | None = None
    memory_in_use_bytes: int | None = None
    nics: tuple[NicFacts, ...] = ()
    # The features its CPU definition asks for, for a definition that names a model (custom
    # mode); None for host-model, host-passthrough and the hypervisor's default.
    cpu_features: tuple[str, ...] | None = None
    # libvirt's ID of the running instance (new at each start); None when it does not run.
    instance_id: int | None = None
    # Distinct bytes it dirtied per second in the last completed page-sampling measurement;
    # None when none has completed in this QEMU process.
    dirty_rate_bytes_s: int | None = None
    # Distinct bytes it dirtied within the last completed WORKING_SET_WINDOW_SECONDS
    # measurement; None likewise.
    dirtied_in_window_bytes: int | None = None


@dataclass(frozen=True)
class CpuBaseline:
    model: str
    xml: str  # a guest <cpu> element that asks for exactly this CPU
    features: tuple[str, ...] | None


@dataclass(frozen=True)
class HostSnapshot:
    facts: HostFacts
    pools: tuple[PoolFacts, ...] = ()
    networks: tuple[NetworkFacts, ...] = ()
    domains: tuple[DomainFacts, ...] = field(default_factory=tuple)
    # Domains whose reading did not end within BUSY_DOMAIN_SECONDS (uuid, name): their QEMU
    # does not answer libvirt, which holds their reads (see busy_domains).
    busy: tuple[tuple[str, str], ...] = ()


def read_host(uri: str, timeout: float, start_measurements: bool = True) -> HostSnapshot:
    """Everything the inventory needs to know about one host, in one connection. With
    `start_measurements`, each running guest's next dirty-rate measurement starts too."""

    def connect_and_read() -> HostSnapshot:
        conn = open_connection(uri, timeout)
        snapshot = None
        try:
            snapshot = _read_snapshot(conn, start_measurements)
            return snapshot
        finally:
            close_soon(conn, waiting=snapshot is not None and bool(snapshot.busy))

    return call_with_timeout(connect_and_read, timeout, what=f"libvirt at {redact(uri)}", uris=(uri,))


def baseline_cpu(uri: str, host_cpu_xmls: list[str], timeout: float) -> CpuBaseline:
    """The CPU every given host can offer, computed by libvirt on `uri`."""

    def compute(conn: libvirt.virConnect) -> CpuBaseline:
        xml = conn.baselineCPU(host_cpu_xmls, libvirt.VIR_CONNECT_BASELINE_CPU_MIGRATABLE)
        model = ET.fromstring(xml).findtext("model", default="")
        return CpuBaseline(model, xml, _sorted(features_of(conn, xml, arch_of(host_cpu_xmls[0]))))

    return with_connection(uri, timeout, compute)


def read_host_cpu(uri: str, timeout: float) -> tuple[str, str, tuple[str, ...] | None]:
    """A host's CPU alone, for judging it before it joins a cluster: (model, XML, features)."""

    def read(conn: libvirt.virConnect) -> tuple[str, str, tuple[str, ...] | None]:
        host_cpu = ET.fromstring(conn.getCapabilities()).find("host/cpu")
        if host_cpu is None:
            return "", "", None
        cpu_xml = ET.tostring(host_cpu, encoding="unicode")
        return host_cpu.findtext("model", default=""), cpu_xml, _sorted(features_of(conn, cpu_xml, arch_of(cpu_xml)))

    return with_connection(uri, timeout, read)


def _read_snapshot(conn: libvirt.virConnect, start_measurements: bool) -> HostSnapshot:
    # The first statistics call after a guest's QEMU hangs waits on that QEMU for good; later
    # ones skip it (_WITHOUT_WAITING). The statistics are then missing for one sync.
    load = within(BUSY_DOMAIN_SECONDS, lambda: _domain_load(conn), {})
    for uuid, measured in within(BUSY_DOMAIN_SECONDS, lambda: _dirty_rates_then_sample_again(conn, start_measurements), {}).items():
        load.setdefault(uuid, {}).update(measured)
    expanded: dict[tuple[str, str], tuple[str, ...] | None] = {}

    def cpu_features(cpu_xml: str, arch: str) -> tuple[str, ...] | None:
        # VMs of one host mostly share a handful of CPU definitions: expand each once.
        if (cpu_xml, arch) not in expanded:
            expanded[cpu_xml, arch] = _sorted(features_of(conn, cpu_xml, arch))
        return expanded[cpu_xml, arch]

    # Pools first: reading them refreshes their volumes, whose sizes the disks then take.
    pools = tuple(_pool_facts(pool) for pool in conn.listAllStoragePools(0))
    domains, busy = busy_domains(conn.listAllDomains(0), lambda dom: _domain_facts(dom, cpu_features))
    return HostSnapshot(
        facts=_host_facts(conn),
        pools=pools,
        networks=tuple(_network_facts(network) for network in conn.listAllNetworks(0)),
        domains=tuple(
            replace(domain, disks=_sized(conn, domain.disks), **load.get(domain.uuid.lower(), {}))
            for domain in domains if domain
        ),
        busy=tuple((dom.UUIDString(), dom.name()) for dom in busy),
    )


def _sized(conn: libvirt.virConnect, disks: tuple[DiskFacts, ...]) -> tuple[DiskFacts, ...]:
    """The disks with their volumes' sizes, read from the storage pools (not from QEMU, which
    a busy or frozen guest would keep from answering)."""
    return tuple(replace(disk, **_volume_size(conn, disk)) for disk in disks)


def _volume_size(conn: libvirt.virConnect, disk: DiskFacts) -> dict[str, int]:
    try:
        if disk.pool:
            volume = conn.storagePoolLookupByName(disk.pool).storageVolLookupByName(disk.source.split("/", 1)[-1])
        elif disk.source.startswith("/"):
            volume = conn.storageVolLookupByPath(disk.source)
        else:
            return {}
        _kind, capacity, allocation = volume.info()
    except libvirt.libvirtError:
        return {}  # not in a pool libvirt knows
    return {"capacity_bytes": capacity, "allocation_bytes": allocation}


# Statistics that need a word with a domain's QEMU are skipped for a domain whose QEMU is
# busy answering someone else, instead of waiting up to 30 s for it: a guest whose QEMU hangs
# would otherwise hold up its whole host's sync past the call's deadline, round after round.
_WITHOUT_WAITING = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT


def _domain_load(conn: libvirt.virConnect) -> dict[str, dict]:
    """Every running domain's CPU time and resident memory, in one call for the whole host;
    a domain whose QEMU is busy has its CPU time only."""
    flags = libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
    load = {}
    for dom, stats in _optional(lambda: conn.getAllDomainStats(flags, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | _WITHOUT_WAITING), []):
        rss_kib = stats.get("balloon.rss")
        load[dom.UUIDString().lower()] = {
            "cpu_time_ns": stats.get("cpu.time"),
            "memory_in_use_bytes": rss_kib * 1024 if rss_kib is not None else None,
        }
    return load


def _dirty_rates_then_sample_again(conn: libvirt.virConnect, start_next: bool) -> dict[str, dict[str, int]]:
    """Every running domain's last measurement: its dirty rate, or what it dirtied within the
    longer window; then (`start_next`) the next measurement starts for each, the other kind,
    which runs on in QEMU while nobody waits and is read by the next sync. So a migration's forecast finds both
    recent instead of sampling the guest for a second. Page sampling hashes a few pages per
    GiB: it costs the guest nothing and works under emulation."""
    # Running ones only: a domain paused for an incoming migration is not the guest yet.
    # A rate is a hint for the forecast: a host that cannot measure one still syncs.
    try:
        stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_DIRTYRATE, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING | _WITHOUT_WAITING)
    except libvirt.libvirtError:
        return {}
    measured = {}
    for dom, values in stats:
        if "dirtyrate.calc_status" not in values:
            continue  # its QEMU was busy: starting a measurement would wait for it
        status = values.get("dirtyrate.calc_status")
        period = values.get("dirtyrate.calc_period")
        if status == libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED:
            rate = values.get("dirtyrate.megabytes_per_second", 0) * 1024 * 1024
            if period == WORKING_SET_WINDOW_SECONDS:
                measured[dom.UUIDString().lower()] = {"dirtied_in_window_bytes": rate * period}
            else:
                measured[dom.UUIDString().lower()] = {"dirty_rate_bytes_s": rate}
        if start_next and status != libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING:
            following = DIRTY_RATE_SAMPLE_SECONDS if period == WORKING_SET_WINDOW_SECONDS or status is None else WORKING_SET_WINDOW_SECONDS
            try:
                # Starting one waits for the domain's job lock, which a migration holds for its
                # whole run: a migrating guest is measured again once it has arrived.
                if dom.jobInfo()[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                    dom.startDirtyRateCalc(following, libvirt.VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING)
            except libvirt.libvirtError:
                pass  # measured again at the next sync
    return measured


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
        cpu_features=_sorted(features_of(conn, cpu_xml, arch_of(cpu_xml))) if cpu_xml else None,
    )


def _sorted(features: frozenset[str] | None) -> tuple[str, ...] | None:
    return tuple(sorted(features)) if features is not None else None


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
    kind = root.get("type", "")
    target_path = root.findtext("target/path", default="")
    marker = directory_marker(pool) if active and kind in DIRECTORY_KINDS else None
    capacity, available = 0, 0
    if active:
        _state, capacity, _allocation, available = pool.info()
    return PoolFacts(
        name=pool.name(),
        kind=kind,
        source_key=datastore_source_key(kind, root.find("source"), target_path, marker),
        target_path=target_path,
        active=active,
        capacity_bytes=capacity,
        available_bytes=available,
        local=not names_shared_storage(kind, root.find("source"), marker),
    )


def _network_facts(network: libvirt.virNetwork) -> NetworkFacts:
    root = ET.fromstring(network.XMLDesc(0))
    bridge_element = root.find("bridge")
    bridge = bridge_element.get("name", "") if bridge_element is not None else ""
    return NetworkFacts(name=network.name(), bridge=bridge, active=bool(network.isActive()))


def _domain_facts(dom: libvirt.virDomain, cpu_features: Callable[[str, str], tuple[str, ...] | None]) -> DomainFacts | None:
    try:
        state, reason = dom.state(0)
        persistent = bool(dom.isPersistent())
        if is_incoming_copy(state, reason, persistent):
            return None
        # The inactive definition has the disks, NICs and CPU, and reading it takes no domain
        # job: the live one waits for a running migration job and the sync would time out.
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError as error:
        # Gone between listing and reading (a migration finished, a transient VM stopped).
        if error.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise
    cpu = root.find("cpu")
    cpu_mode = cpu.get("mode", "") if cpu is not None else ""
    names_model = cpu is not None and cpu_mode in ("", "custom") and bool(cpu.findtext("model"))
    os_type = root.find("os/type")
    arch = os_type.get("arch", "") if os_type is not None else ""
    instance_id = dom.ID()  # read from the handle listAllDomains returned: no call to the host
    return DomainFacts(
        uuid=dom.UUIDString(),
        name=dom.name(),
        power=power_of(state),
        vcpus=int(root.findtext("vcpu", default="0")),
        memory_bytes=_memory_bytes(root.find("memory")),
        cpu_mode=cpu_mode,
        cpu_model=cpu.findtext("model", default="") if cpu is not None else "",
        cpu_features=cpu_features(ET.tostring(cpu, encoding="unicode"), arch or "x86_64") if names_model else None,
        instance_id=instance_id if instance_id >= 0 else None,
        persistent=persistent,
        disks=tuple(disk_facts(disk) for disk in root.findall("devices/disk[@device='disk']")),
        nics=tuple(_nic_facts(nic) for nic in root.findall("devices/interface")),
    )


_MEMORY_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}


def _memory_bytes(element: ET.Element | None) -> int:
    if element is None or not element.text:
        return 0
    return int(element.text) * _MEMORY_UNITS.get(element.get("unit", "KiB").lower(), 1024)


def disk_facts(disk: ET.Element) -> DiskFacts:
    """A <disk> of a domain's definition: its target, its image (path, or pool/volume), format and pool."""
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
