"""Lab hosts: one libvirtd (with its virtlogd and an sshd) per host, each in a mount namespace
of its own.

Each host has an anchor process (`sleep infinity`) that holds the host's mount namespace inside
the lab's network namespace; the daemons are started in it with nsenter, each under a small
reaper, so they can be stopped and started again later while the host's guests keep running.
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from lab import tap_names
from lab.commands import COMMAND_TIMEOUT, INSTALL_HINT, virsh
from lab.config import (
    BRIDGE_NAME,
    LIBVIRT_PATHS,
    NETWORK_NAME,
    LOCAL_POOL_NAME,
    POOL_NAME,
    LabConfig,
    LabError,
    host_index,
    migration_address,
)
from lab.credentials import host_pki_dir, host_ssh_dir, host_ssh_key, migration_tls_dir
from lab.processes import LabProcess, lab_process, process_from_pidfile, stop_processes

DAEMON_START_TIMEOUT = 30
# libvirtd daemonizes the QEMU processes it starts, and waits for a guest's QEMU to be gone
# before a destroy or a migration returns. This machine's init reaps orphans only every ~2 s,
# which added up to 2 s to each; so every daemon runs under this subreaper, which adopts those
# orphans and reaps them at once. It exits once it has no children left.
REAPER_CODE = """
import ctypes, os, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
starter = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
if os.waitpid(starter, 0)[1] != 0:
    sys.exit(1)  # the daemon said why on stderr
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""
REAPER_PROGRAM = Path(sys.executable).name
# libvirt 11.3's node-device driver now and then hangs libvirtd's shutdown until its 30 s
# watchdog (nodedev's shutdown joins a udev thread that is never woken). The lab needs no node
# devices, so libvirtd loads its drivers from a directory that lacks that one.
UNWANTED_LIBVIRT_DRIVERS = ("libvirt_driver_nodedev.so",)
REQUIRED_PROGRAMS = (
    "ip", "unshare", "nsenter", "virsh", "virtlogd", "libvirtd", "qemu-img", "qemu-system-x86_64",
    "sshd", "ssh", "ssh-keygen", "certtool",
)  # fmt: skip
# The copy of lab/tap_names.py in each host's /etc/libvirt/hooks, which its qemu hook runs.
TAP_FILTER = "lab-tap-names.py"
# The daemons of one host, in the order they start.
HOST_DAEMONS = ("virtlogd", "libvirtd", "sshd")


def require_programs() -> None:
    missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
    if missing:
        raise LabError(f"{', '.join(missing)} not found: {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network and mount namespaces, system libvirtd)")


# Processes ------------------------------------------------------------------------------------


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
    address, stream_address = config.host_address(name), migration_address(name)
    pki = host_pki_dir(config, name)
    (etc / "libvirtd.conf").write_text(
        # Only TLS: the management network reaches the root namespace, so nothing listens there
        # without authenticating whoever connects (the control plane and the other hosts alike).
        "listen_tls = 1\n"
        "listen_tcp = 0\n"
        f'listen_addr = "{address}"\n'
        "# A client certificate signed by the lab's CA is the authentication, as on a real host.\n"
        'auth_tls = "none"\n'
        f'ca_file = "{pki / "ca-cert.pem"}"\n'
        f'cert_file = "{pki / "server-cert.pem"}"\n'
        f'key_file = "{pki / "server-key.pem"}"\n'
        f'host_uuid = "{_host_uuid(config, name)}"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
    )
    (etc / "virtlogd.conf").write_text('log_outputs = "3:file:/var/log/libvirt/virtlogd.log"\n')
    (etc / "qemu.conf").write_text(
        f'migration_address = "{stream_address}"\n'
        f'migration_host = "{stream_address}"\n'
        'user = "root"\n'
        'group = "root"\n'
        "dynamic_ownership = 0\n"
        "remember_owner = 0\n"
        # One kernel serves every lab host, so per-host security labels would only collide.
        'security_driver = "none"\n'
        # The datastore is one directory all hosts see; libvirt cannot detect that on its own.
        f'shared_filesystems = [ "{config.datastore_dir}" ]\n'
        # Certificates for an encrypted migration stream (VIR_MIGRATE_TLS): empty on a host the
        # lab keeps without them, which then refuses such a migration as a real one would.
        f'migrate_tls_x509_cert_dir = "{migration_tls_dir(config, name)}"\n'
        "migrate_tls_x509_verify = 1\n"
    )
    _write_sshd_config(config, name)
    _write_qemu_hook(config, name)


def _write_qemu_hook(config: LabConfig, name: str) -> None:
    """The hook that names an incoming guest's taps for this host (lab/tap_names.py says why).
    libvirtd looks for it when it starts: a daemon already running keeps going without it."""
    hooks = host_subdir(config, name, "etc") / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / TAP_FILTER).write_text(Path(tap_names.__file__).read_text())
    script = hooks / "qemu"
    # As the daemon sees it: its own /etc/libvirt, in its mount namespace.
    filter_path = LIBVIRT_PATHS["etc"] / "hooks" / TAP_FILTER
    # The system's interpreter, not a virtualenv's link to it: the hook needs only the standard library.
    script.write_text(tap_names.hook_script(host_index(name), os.path.realpath(sys.executable), str(filter_path)))
    script.chmod(0o755)


def _write_sshd_config(config: LabConfig, name: str) -> None:
    """An sshd on the host's address that lets the control plane's key in as root; the remote
    end of libvirt's ssh transport (virt-ssh-helper) then finds the host's own libvirt socket,
    since sshd runs in the host's mount namespace."""
    (host_ssh_dir(config, name) / "sshd_config").write_text(
        f"ListenAddress {config.host_address(name)}:22\n"
        f"HostKey {host_ssh_key(config, name)}\n"
        f"PidFile {pidfile(config, name, 'sshd')}\n"
        f"AuthorizedKeysFile {config.ssh_dir / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "PrintMotd no\n"
        # The lab writes the keys itself (mode 0600), and its directory may be anywhere.
        "StrictModes no\n"
        "LogLevel VERBOSE\n"
    )


def _copy_debian_libvirt_config(etc: Path) -> None:
    # Debian's default NAT network would autostart on every host and fight over virbr0.
    shutil.copytree(LIBVIRT_PATHS["etc"], etc, dirs_exist_ok=True, ignore=shutil.ignore_patterns("networks"))


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
    # /run/sshd: sshd's privilege separation directory, fixed at build time.
    script = "set -e; " + "; ".join(mounts) + "; mkdir -p /run/sshd; exec sleep infinity"
    anchor_log = config.host_dir(name) / "anchor.log"
    in_own_mount_namespace = ["ip", "netns", "exec", config.netns, "unshare", "-m", "--propagation", "private"]
    with anchor_log.open("w") as log_file:
        # ip netns exec and unshare exec without forking, so the pid ends up being sleep's.
        popen = subprocess.Popen(
            [*in_own_mount_namespace, "sh", "-c", script],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            cwd="/",
            start_new_session=True,
        )
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        anchor = lab_process(popen.pid, "sleep")
        if anchor is not None:
            return anchor
        if popen.poll() is not None:
            raise LabError(f"{name}'s namespace did not start: {_tail(anchor_log) or 'no output'}")
        time.sleep(0.02)
    popen.kill()
    raise LabError(f"{name}'s namespace did not start within {COMMAND_TIMEOUT} s")


def start_daemon(config: LabConfig, name: str, anchor: LabProcess, program: str) -> tuple[LabProcess, LabProcess]:
    """Start virtlogd, libvirtd or sshd, under its reaper, inside the host's namespaces.

    Returns (daemon, reaper) once virtlogd or sshd wrote its pidfile, or once libvirtd answers.
    """
    pid_path = pidfile(config, name, program)
    pid_path.unlink(missing_ok=True)
    log_path = daemon_log(config, name, program)
    log_offset = log_path.stat().st_size if log_path.exists() else 0
    command = _daemon_command(config, name, program)
    start_log = host_subdir(config, name, "log") / f"{program}.start.log"
    environment = {**os.environ, "LIBVIRT_DRIVER_DIR": str(_libvirt_driver_dir(config))}
    with start_log.open("w") as output:
        # nsenter execs without forking: the pid is the reaper's.
        popen = subprocess.Popen(
            ["nsenter", "-t", str(anchor.pid), "-m", "-n", sys.executable, "-c", REAPER_CODE, *command],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            cwd="/",
            env=environment,
            start_new_session=True,
        )
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    daemon = None
    while daemon is None and popen.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        daemon = process_from_pidfile(pid_path, program)
    reaper = lab_process(popen.pid, REAPER_PROGRAM)
    answers = daemon is not None and (program != "libvirtd" or wait_until_reachable(config, name, daemon))
    if answers and reaper is not None:
        return daemon, reaper
    stop_processes([process for process in (daemon, reaper) if process is not None])
    reasons = [_tail(start_log), _errors_logged_since(log_path, log_offset)]
    raise LabError(f"{name}'s {program} did not start: {' | '.join(r for r in reasons if r)}")


def _daemon_command(config: LabConfig, name: str, program: str) -> list[str]:
    pid_path = str(pidfile(config, name, program))
    if program == "sshd":
        # sshd re-executes itself, which needs its absolute path; its pidfile is in its config.
        config_file = host_ssh_dir(config, name) / "sshd_config"
        return [shutil.which("sshd") or "/usr/sbin/sshd", "-f", str(config_file), "-E", str(daemon_log(config, name, program))]
    command = [program, "-d", "-p", pid_path]
    if program == "libvirtd":
        command += ["--listen", "-f", str(host_subdir(config, name, "etc") / "libvirtd.conf")]
    return command


def _libvirt_driver_dir(config: LabConfig) -> Path:
    """The lab's directory of libvirtd drivers: links to the installed ones it wants."""
    installed = sorted(Path("/usr/lib").glob("*/libvirt/connection-driver/libvirt_driver_*.so"))
    if not installed:
        raise LabError(f"libvirt's drivers are not in /usr/lib/*/libvirt/connection-driver: {INSTALL_HINT}")
    driver_dir = config.lab_dir / "libvirt-drivers"
    driver_dir.mkdir(exist_ok=True)
    for driver in installed:
        link = driver_dir / driver.name
        if driver.name not in UNWANTED_LIBVIRT_DRIVERS and not link.exists():
            link.symlink_to(driver)
    return driver_dir


def wait_until_reachable(config: LabConfig, name: str, libvirtd: LabProcess) -> bool:
    """Whether the host's libvirtd answers before it dies or the start timeout passes."""
    uri = config.management_uri(name)
    deadline = time.monotonic() + DAEMON_START_TIMEOUT
    while time.monotonic() < deadline and libvirtd.is_alive():
        if is_reachable(uri):
            return True
        time.sleep(0.1)
    return False


def is_reachable(uri: str) -> bool:
    return virsh(uri, "uri", timeout=10, check=False).returncode == 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return " | ".join(text.splitlines()[-lines:])


def _errors_logged_since(log_path: Path, offset: int, lines: int = 3) -> str:
    try:
        with log_path.open("rb") as log_file:
            log_file.seek(offset)
            new_lines = log_file.read().decode(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log_path})"
    # libvirt's "... error : what" lines, and sshd's "error: what" and "fatal: what".
    errors = [line.split(" : ", 1)[-1] for line in new_lines if " error : " in line or line.startswith(("error:", "fatal:"))]
    return " | ".join(errors[-lines:]) or f"(see {log_path})"


# What each host exposes to the inventory ------------------------------------------------------


def ensure_lab_network(config: LabConfig, name: str) -> None:
    uri = config.management_uri(name)
    info = _virsh_info(uri, "net-info", NETWORK_NAME)
    if info is None:
        xml_file = config.lab_dir / f"{NETWORK_NAME}.xml"
        xml_file.write_text(
            f"<network><name>{NETWORK_NAME}</name><forward mode='bridge'/><bridge name='{BRIDGE_NAME}'/></network>\n"
        )
        virsh(uri, "net-define", str(xml_file))
        virsh(uri, "net-autostart", NETWORK_NAME)
        info = _virsh_info(uri, "net-info", NETWORK_NAME)
    if info.get("Active") != "yes":
        virsh(uri, "net-start", NETWORK_NAME)


def ensure_datastore_pool(config: LabConfig, name: str) -> None:
    """The datastore every host mounts, and the host's own local one."""
    _ensure_dir_pool(config.management_uri(name), POOL_NAME, config.datastore_dir)
    _ensure_dir_pool(config.management_uri(name), LOCAL_POOL_NAME, config.local_datastore_dir(name))


def _ensure_dir_pool(uri: str, pool: str, path: Path) -> None:
    info = _virsh_info(uri, "pool-info", pool)
    if info is None:
        virsh(uri, "pool-define-as", pool, "dir", "--target", str(path))
        virsh(uri, "pool-build", pool)
        virsh(uri, "pool-autostart", pool)
        info = _virsh_info(uri, "pool-info", pool)
    if info.get("State") != "running":
        virsh(uri, "pool-start", pool)
    # Disks created since the pool started only show up as volumes after a refresh.
    virsh(uri, "pool-refresh", pool)


def _virsh_info(uri: str, command: str, object_name: str) -> dict[str, str] | None:
    """`virsh net-info`/`pool-info` as a dict, or None if the object is not defined."""
    result = virsh(uri, command, object_name, check=False)
    if result.returncode != 0:
        return None
    pairs = (line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}
