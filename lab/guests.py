"""Lab guests: small Linux VMs booted straight from the lab's kernel and initramfs."""

import errno
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from lab.config import (
    BRIDGE_ADDRESS,
    BRIDGE_PREFIX,
    NETWORK_NAME,
    LabConfig,
    LabError,
    guest_ip,
    guest_mac,
    host_index,
)
from lab.commands import run_command, virsh
from lab.guest_image import GuestImage, GuestImageError, build_guest_image
from lab.processes import LabProcess, process_from_pidfile
from lab.tap_names import tap_name, tap_names, with_host_taps

BASE_DISK_SIZE = "64M"
KVM_PROBE_SECONDS = 15
READY_TIMEOUT = 120  # emulated guests booting together on two cores
READY_LINE = b"VMOTION-GUEST READY"
QEMU_PROGRAM = "qemu-system-x86_64"


def guest_uuid(name: str) -> str:
    # Deterministic, so a guest found on any host is recognised as the lab's own.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vmotion-lab:{name}"))


def serial_log(config: LabConfig, name: str) -> Path:
    return config.serial_dir / f"{name}.log"


def guest_disk(config: LabConfig, name: str) -> Path:
    return config.datastore_dir / f"{name}.qcow2"


def guest_image(config: LabConfig, log: Callable[[str], None]) -> GuestImage:
    try:
        return build_guest_image(config.image_dir, log=log)
    except GuestImageError as error:
        raise LabError(str(error)) from error


def kernel_cmdline(config: LabConfig, name: str) -> str:
    workload = config.workload_for(name)
    return (
        f"console=ttyS0 quiet loglevel=1 vm_ip={guest_ip(name)}/{BRIDGE_PREFIX} vm_gw={BRIDGE_ADDRESS} "
        f"dirty_mb={workload.dirty_mb} dirty_rate={workload.dirty_rate} hb_ms=100"
    )


# Disks ----------------------------------------------------------------------------------------


def ensure_guest_disk(config: LabConfig, name: str) -> None:
    """A qcow2 overlay per guest on one shared base, both in the datastore every host sees."""
    base = config.datastore_dir / "base.qcow2"
    if not base.exists():
        run_command(["qemu-img", "create", "-q", "-f", "qcow2", str(base), BASE_DISK_SIZE])
    disk = guest_disk(config, name)
    if not disk.exists():
        run_command(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(disk)])


def supports_direct_io(directory: Path) -> bool:
    """Whether cache='none' (O_DIRECT) works there; tmpfs, for one, refuses it."""
    probe = directory / ".direct-io-probe"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return False
        raise
    os.close(fd)
    probe.unlink()
    return True


# Domains --------------------------------------------------------------------------------------


def guest_domain_xml(config: LabConfig, host: str, name: str, image: GuestImage, accel: str, disk_cache: str) -> str:
    """The guest's definition on `host`, its tap named for that host (lab/tap_names.py says why)."""
    domain_type = "kvm" if accel == "kvm" else "qemu"
    return f"""<domain type='{domain_type}'>
  <name>{name}</name>
  <uuid>{guest_uuid(name)}</uuid>
  <memory unit='MiB'>{config.guest_memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>{escape(str(image.kernel))}</kernel>
    <initrd>{escape(str(image.initrd))}</initrd>
    <cmdline>{kernel_cmdline(config, name)}</cmdline>
  </os>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='{disk_cache}'/>
      <source file={quoteattr(str(guest_disk(config, name)))}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='{NETWORK_NAME}'/>
      <mac address='{guest_mac(name)}'/>
      <target dev='{tap_name(host_index(host), guest_mac(name))}'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <!-- append: after a migration the destination keeps writing the same log -->
      <source path={quoteattr(str(serial_log(config, name)))} append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def list_domains(uri: str) -> dict[str, str]:
    """Every domain on the host, name -> state as virsh words it ("running", "shut off", ...)."""
    domains = {}
    for line in virsh(uri, "list", "--all").stdout.splitlines():
        fields = line.split(None, 2)
        if len(fields) == 3:
            domains[fields[1]] = fields[2].strip()
    return domains


def define_guest(config: LabConfig, host: str, name: str, xml: str) -> None:
    # Not in the datastore: that directory is a storage pool, and every file there a volume.
    xml_file = config.lab_dir / f"{name}.xml"
    xml_file.write_text(xml)
    try:
        virsh(config.management_uri(host), "define", str(xml_file))
    finally:
        xml_file.unlink()


def start_guest(config: LabConfig, host: str, name: str) -> None:
    """Start the guest where it is defined, its taps named for that host first: a definition a
    migration left there still names the host the guest was first defined on."""
    uri = config.management_uri(host)
    defined = virsh(uri, "dumpxml", "--inactive", "--security-info", name).stdout
    renamed = with_host_taps(defined, host_index(host))
    if tap_names(renamed) != tap_names(defined):
        define_guest(config, host, name, renamed)
    virsh(uri, "start", name, timeout=60)


def serial_log_size(config: LabConfig, name: str) -> int:
    path = serial_log(config, name)
    return path.stat().st_size if path.exists() else 0


def wait_until_ready(config: LabConfig, log_offsets: dict[str, int]) -> None:
    """Wait for each guest's READY line past the offset its serial log had when it started."""
    deadline = time.monotonic() + READY_TIMEOUT
    waiting = dict(log_offsets)
    while waiting and time.monotonic() < deadline:
        time.sleep(0.2)
        waiting = {name: offset for name, offset in waiting.items() if not _printed_ready(config, name, offset)}
    if waiting:
        names = ", ".join(sorted(waiting))
        raise LabError(
            f"{names} did not print {READY_LINE.decode()!r} within {READY_TIMEOUT} s: "
            f"see {config.serial_dir}/<guest>.log and {config.hosts_dir}/<host>/log/qemu/<guest>.log"
        )


def _printed_ready(config: LabConfig, name: str, offset: int) -> bool:
    try:
        with serial_log(config, name).open("rb") as log_file:
            log_file.seek(offset)
            return READY_LINE in log_file.read()
    except FileNotFoundError:
        return False


def destroy_guest(config: LabConfig, host: str, name: str) -> None:
    virsh(config.management_uri(host), "destroy", name, timeout=60)


def guest_processes(config: LabConfig, host: str) -> dict[str, LabProcess]:
    """The QEMU processes of the host's running guests, from libvirt's pidfiles."""
    qemu_run_dir = config.host_dir(host) / "run" / "qemu"
    processes = {}
    for pid_path in sorted(qemu_run_dir.glob("*.pid")):
        process = process_from_pidfile(pid_path, QEMU_PROGRAM)
        if process is not None:
            processes[pid_path.stem] = process
    return processes


# Acceleration ---------------------------------------------------------------------------------


def detect_accel(config: LabConfig, image: GuestImage) -> tuple[str, str]:
    """("kvm" or "tcg", why). Plain emulation unless a probe boot proves KVM works here."""
    if not Path("/dev/kvm").exists():
        return "tcg", "/dev/kvm does not exist"
    cached = read_accel(config)
    if cached.get("kernel_release") == image.kernel_release:
        return cached["accel"], cached["reason"]
    accel, reason = _probe_kvm_boot(config, image)
    config.accel_file.write_text(
        json.dumps({"accel": accel, "reason": reason, "kernel_release": image.kernel_release}) + "\n"
    )
    return accel, reason


def read_accel(config: LabConfig) -> dict:
    try:
        return json.loads(config.accel_file.read_text())
    except (OSError, ValueError):
        return {}


def _probe_kvm_boot(config: LabConfig, image: GuestImage) -> tuple[str, str]:
    # Where /dev/kvm lacks hardware virtualisation (nested kvm_pvm, say) a Linux guest hangs.
    log = config.lab_dir / "kvm-probe.log"
    log.unlink(missing_ok=True)
    command = [QEMU_PROGRAM, "-accel", "kvm", "-cpu", "qemu64", "-m", str(config.guest_memory_mib)]
    command += ["-nodefaults", "-display", "none", "-no-reboot", "-serial", f"file:{log}"]
    command += ["-kernel", str(image.kernel), "-initrd", str(image.initrd)]
    command += ["-append", "console=ttyS0 quiet loglevel=1 echo_port=0 hb_ms=1000"]
    probe = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        while time.monotonic() - started < KVM_PROBE_SECONDS:
            if log.exists() and READY_LINE in log.read_bytes():
                return "kvm", f"the guest image booted under KVM in {time.monotonic() - started:.1f} s"
            if probe.poll() is not None:
                error = probe.stderr.read().decode(errors="replace").strip()
                return "tcg", f"QEMU could not boot with KVM: {error or 'exit ' + str(probe.returncode)}"
            time.sleep(0.1)
        return "tcg", f"the guest image did not boot under KVM within {KVM_PROBE_SECONDS} s"
    finally:
        if probe.poll() is None:
            probe.kill()
        probe.wait()
        probe.stderr.close()
