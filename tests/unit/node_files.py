"""Builds files for libvirt's test driver (`test:///path/node.xml`): a fake host whose
domains, pools and networks a test chooses. Each connection reads the file afresh."""

from dataclasses import dataclass, field
from pathlib import Path

RUNSTATE = {"running": 1, "paused": 3, "shutting_down": 4, "shut_off": 5}


@dataclass
class DomainSpec:
    name: str
    uuid: str
    state: str = "running"
    memory_mib: int = 256
    vcpus: int = 1
    disk_path: str = "/srv/nfs1/disk.qcow2"
    mac: str = "52:54:00:00:00:01"
    network: str = "prod"
    cpu: str = ""  # a <cpu> element, or none: the hypervisor's default


@dataclass
class DirPoolSpec:
    """A directory pool; `marker` names the id of the marker volume vmotion left in it (the
    file holds the marker so that each connection, reading it afresh, finds it)."""

    name: str
    path: str
    marker: str | None = None
    volumes: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (capacity, allocation)

    def xml(self) -> str:
        volumes = dict(self.volumes)
        if self.marker:
            volumes[f".vmotion-datastore-{self.marker}"] = (0, 0)
        return f"""<pool type='dir'><name>{self.name}</name><target><path>{self.path}</path></target>
    {"".join(_volume_xml(name, *sizes) for name, sizes in volumes.items())}</pool>"""


@dataclass
class NodeSpec:
    domains: list[DomainSpec] = field(default_factory=list)
    network: str = "prod"
    nfs_export: str = "/export/vms"
    nfs_volumes: dict[str, tuple[int, int]] = field(default_factory=dict)  # name: (capacity, allocation)
    dir_pools: list[DirPoolSpec] = field(default_factory=list)

    def xml(self) -> str:
        domains = "\n".join(_domain_xml(d) for d in self.domains)
        nfs_volumes = "".join(_volume_xml(name, *sizes) for name, sizes in self.nfs_volumes.items())
        return f"""<node>
  <cpu><mhz>2000</mhz><model>i686</model><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>
  <memory>8388608</memory>
  {domains}
  <network><name>{self.network}</name><bridge name='br-{self.network}'/><forward mode='bridge'/></network>
  <pool type='netfs'><name>nfs1</name><source><host name='filer.example'/><dir path='{self.nfs_export}'/><format type='nfs'/></source><target><path>/srv/nfs1</path></target>{nfs_volumes}</pool>
  {"".join(pool.xml() for pool in self.dir_pools)}
</node>"""

    def write(self, path: Path) -> str:
        path.write_text(self.xml())
        return f"test://{path}"


def _volume_xml(name: str, capacity: int, allocation: int) -> str:
    return f"<volume><name>{name}</name><capacity unit='bytes'>{capacity}</capacity><allocation unit='bytes'>{allocation}</allocation></volume>"


def _domain_xml(d: DomainSpec) -> str:
    return f"""<domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{d.name}</name><uuid>{d.uuid}</uuid><memory unit='MiB'>{d.memory_mib}</memory><vcpu>{d.vcpus}</vcpu>
    <os><type>hvm</type></os>
    {d.cpu}
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{d.disk_path}'/><target dev='vda' bus='virtio'/></disk>
      <interface type='network'><mac address='{d.mac}'/><source network='{d.network}'/><model type='virtio'/></interface>
    </devices>
    <test:runstate>{RUNSTATE[d.state]}</test:runstate>
  </domain>"""
