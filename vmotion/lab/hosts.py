"""Lab hosts: one libvirtd (with its virtlogd) per host, each in a mount namespace of its own.

Each host has an anchor process (`sleep infinity`) that holds the host's mount namespace inside
the lab's network namespace; the daemons are started in it with nsenter, so they can be stopped
and started again later while the host's guests keep running.
"""

import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from vmotion.lab.config import (
    BRIDGE_NAME,
    LIBVIRT_PATHS,
    NETWORK_NAME,
    POOL_NAME,
    LabConfig,
    LabError,
    host_address,
)

COMMAND_TIMEOUT = 30
DAEMON_START_TIMEOUT = 30
STOP_GRACE_SECONDS = 10
INSTALL_HINT = "run scripts/install-system-packages.sh as root"
REQUIRED_PROGRAMS = ("ip", "unshare", "nsenter", "virsh", "virtlogd", "libvirtd", "qemu-img", "qemu-system-x86_64")


def run_command(args: list[str], timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, cwd="/"
        )
    except FileNotFoundError:
        raise LabError(f"{args[0]} not found: {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"`{shlex.join(args)}` did not finish within {timeout:g} s") from None
    if check and result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).replace("\n", " ")
        raise LabError(f"`{shlex.join(args)}` failed: {output}")
    return result


def virsh(uri: str, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
    return run_command(["virsh", "-q", "-c", uri, *args], timeout=timeout, check=check)


def require_programs() -> None:
    missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
    if missing:
        raise LabError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network and mount namespaces, system libvirtd)")


# Processes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabProcess:
    """A process the lab started; program and start time guard against pid reuse."""

    pid: int
    program: str
    start_ticks: int

    def is_alive(self) -> bool:
        return _program_of(self.pid) == self.program and _start_ticks_of(self.pid) == self.start_ticks

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LabProcess":
        return cls(**data)


def lab_process(pid: int, program: str) -> LabProcess | None:
    """The record of a live pid, or None if it is gone or runs something other than program."""
    start_ticks = _start_ticks_of(pid)
    if _program_of(pid) != program or start_ticks is None:
        return None
    return LabProcess(pid, program, start_ticks)


def process_from_pidfile(pidfile: Path, program: str) -> LabProcess | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return lab_process(pid, program)


def stop_processes(processes: list[LabProcess], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM, then SIGKILL whatever still runs after the grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [process for process in processes if process.is_alive()]
        for process in alive:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [process for process in alive if process.is_alive()]
        if not alive:
            return
    raise LabError(f"could not stop pids {', '.join(str(p.pid) for p in alive)}")


def _program_of(pid: int) -> str | None:
    # A zombie has an empty cmdline, so it counts as gone.
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return None
    return os.path.basename(argv0.decode(errors="replace")) or None


def _start_ticks_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name before it may contain spaces, so split after ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


# Host directories and configuration ---------------------------------------------------------


def host_subdir(config: LabConfig, name: str, key: str) -> Path:
    return config.host_dir(name) / key


def pidfile(config: LabConfig, name: str, program: str) -> Path:
    # Under the per-host run dir: the daemons' default pidfiles (/run/*.pid) are shared by all hosts.
    return host_subdir(config, name, "run") / f"{program}.pid"


def daemon_log(config: LabConfig, name: str, program: str) -> Path:
    return host_subdir(config, name, "log") / f"{program}.log"


def prepare_host_dir(config: LabConfig, name: str) -> None:
    for key in LIBVIRT_PATHS:
        host_subdir(config, name, key).mkdir(parents=True, exist_ok=True)
    (host_subdir(config, name, "lib") / "qemu").mkdir(exist_ok=True)
    (host_subdir(config, name, "log") / "qemu").mkdir(exist_ok=True)
    etc = host_subdir(config, name, "etc")
    if not (etc / "libvirtd.conf").exists():
        _copy_debian_libvirt_config(etc)
    address = host_address(name)
    (etc / "libvirtd.conf").write_text(
        "listen_tls = 0\n"
        "listen_tcp = 1\n"
        f'listen_addr = "{address}"\n'
        '# Lab only: peers inside the lab netns connect without auth; real hosts use TLS or SSH.\n'
        'auth_tcp = "none"\n'
        f'host_uuid = "{_host_uuid(config, name)}"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
    )
    (etc / "virtlogd.conf").write_text('log_outputs = "3:file:/var/log/libvirt/virtlogd.log"\n')
    (etc / "qemu.conf").write_text(
        f'migration_address = "{address}"\n'
        f'migration_host = "{address}"\n'
        'user = "root"\n'
        'group = "root"\n'
        "dynamic_ownership = 0\n"
        "remember_owner = 0\n"
        # One kernel serves every lab host, so per-host security labels would only collide.
        'security_driver = "none"\n'
        # The datastore is one directory all hosts see; libvirt cannot detect that on its own.
        f'shared_filesystems = [ "{config.datastore_dir}" ]\n'
    )


def _copy_debian_libvirt_config(etc: Path) -> None:
    # Debian's default NAT network would autostart on every host and fight over virbr0.
    shutil.copytree(
        LIBVIRT_PATHS["etc"], etc, dirs_exist_ok=True, ignore=shutil.ignore_patterns("networks")
    )


def _host_uuid(config: LabConfig, name: str) -> str:
    # libvirt refuses to migrate between hosts with the same UUID; keep it across restarts.
    uuid_file = config.host_dir(name) / "host-uuid"
    if not uuid_file.exists():
        uuid_file.write_text(f"{uuid.uuid4()}\n")
    return uuid_file.read_text().strip()


# Anchor and daemons ---------------------------------------------------------------------------


def start_anchor(config: LabConfig, name: str) -> LabProcess:
    """Start the process that holds the host's mount namespace and return its record."""
    mounts = [
        f"mkdir -p {target} && mount --bind {shlex.quote(str(host_subdir(config, name, key)))} {target}"
        for key, target in LIBVIRT_PATHS.items()
    ]
    script = "set -e; " + "; ".join(mounts) + "; exec sleep infinity"
    anchor_log = config.host_dir(name) / "anchor.log"
    with anchor_log.open("w") as log_file:
        # ip netns exec and unshare exec without forking, so the pid ends up being sleep's.
        popen = subprocess.Popen(
            ["ip", "netns", "exec", config.netns, "unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, cwd="/", start_new_session=True,
        )
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        anchor = lab_process(popen.pid, "sleep")
        if anchor is not None:
            return anchor
        if popen.poll() is not None:
            raise LabError(f"{name}'s namespace did not start: {_tail(anchor_log)}")
        time.sleep(0.02)
    popen.kill()
    raise LabError(f"{name}'s namespace did not start within {COMMAND_TIMEOUT} s")


def start_daemon(config: LabConfig, name: str, anchor: LabProcess, program: str) -> LabProcess:
    """Start virtlogd or libvirtd inside the host's namespaces; returns once it wrote its pidfile."""
    pid_path = pidfile(config, name, program)
    pid_path.unlink(missing_ok=True)
    command = [program, "-d", "-p", str(pid_path)]
    if program == "libvirtd":
        command += ["--listen", "-f", str(host_subdir(config, name, "etc") / "libvirtd.conf")]
    result = run_command(
        ["nsenter", "-t", str(anchor.pid), "-m", "-n", *command], timeout=DAEMON_START_TIMEOUT, check=False
    )
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while result.returncode == 0 and time.monotonic() < deadline:
        daemon = process_from_pidfile(pid_path, program)
        if daemon is not None:
            return daemon
        time.sleep(0.05)
    reason = result.stderr.strip() or _tail(daemon_log(config, name, program))
    raise LabError(f"{name}'s {program} did not start: {reason}")


def wait_until_reachable(config: LabConfig, name: str, libvirtd: LabProcess) -> None:
    uri = config.management_uri(name)
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while time.monotonic() < deadline:
        if is_reachable(uri):
            return
        if not libvirtd.is_alive():
            raise LabError(f"{name}'s libvirtd did not start: {_tail(daemon_log(config, name, 'libvirtd'))}")
        time.sleep(0.1)
    raise LabError(f"{name}'s libvirtd does not answer on {uri} after {DAEMON_START_TIMEOUT} s")


def is_reachable(uri: str) -> bool:
    return virsh(uri, "uri", timeout=10, check=False).returncode == 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return f"(no log at {path})"
    return " | ".join(text.splitlines()[-lines:]) or f"(empty log at {path})"


# What each host exposes to the inventory ------------------------------------------------------


def ensure_lab_network(config: LabConfig, name: str) -> None:
    uri = config.management_uri(name)
    info = _virsh_info(uri, "net-info", NETWORK_NAME)
    if info is None:
        xml_file = config.lab_dir / f"{NETWORK_NAME}.xml"
        xml_file.write_text(
            f"<network><name>{NETWORK_NAME}</name><forward mode='bridge'/>"
            f"<bridge name='{BRIDGE_NAME}'/></network>\n"
        )
        virsh(uri, "net-define", str(xml_file))
        virsh(uri, "net-autostart", NETWORK_NAME)
        info = _virsh_info(uri, "net-info", NETWORK_NAME)
    if info.get("Active") != "yes":
        virsh(uri, "net-start", NETWORK_NAME)


def ensure_datastore_pool(config: LabConfig, name: str) -> None:
    uri = config.management_uri(name)
    info = _virsh_info(uri, "pool-info", POOL_NAME)
    if info is None:
        virsh(uri, "pool-define-as", POOL_NAME, "dir", "--target", str(config.datastore_dir))
        virsh(uri, "pool-build", POOL_NAME)
        virsh(uri, "pool-autostart", POOL_NAME)
        info = _virsh_info(uri, "pool-info", POOL_NAME)
    if info.get("State") != "running":
        virsh(uri, "pool-start", POOL_NAME)


def _virsh_info(uri: str, command: str, object_name: str) -> dict[str, str] | None:
    """`virsh net-info`/`pool-info` as a dict, or None if the object is not defined."""
    result = virsh(uri, command, object_name, check=False)
    if result.returncode != 0:
        return None
    pairs = (line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}
