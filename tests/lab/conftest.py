"""Fixtures of the lab tests: real libvirtd hosts and QEMU guests, started once per test
session, and real worker and scheduler processes. The browser tests import them too.

The test lab has its own directory and network namespace (scripts/test.sh sets them), so it
never touches a demo lab running on the same machine.
"""

import os
import shutil
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import django_rq
import pytest
from rq import Worker

from devsupport.register import register_lab
from inventory.models import Host
from lab import control as lab_control
from lab.commands import domain_names, virsh
from lab.config import GuestWorkload, LabConfig
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests import processes
from tests.prerequisites import require

# Seven guests: six idle ones for the limit tests, and lab-vm4, which rewrites its memory
# faster than a gigabit link moves it. lab-host3's QEMU has no migration certificates, like a
# host nobody set up for encrypted migration.
TEST_LAB = dict(
    host_count=3,
    guest_count=7,
    guest_memory_mib=128,
    workloads={"lab-vm4": GuestWorkload(dirty_mb=32, dirty_rate=150)},
    hosts_without_migration_tls=frozenset({"lab-host3"}),
)


@pytest.fixture(scope="session")
def lab_config() -> LabConfig:
    require(os.geteuid() == 0, "the lab needs root (network and mount namespaces)")
    require(shutil.which("libvirtd") is not None, "libvirtd is not installed: run scripts/install-system-packages.sh")
    return LabConfig(**TEST_LAB)


@pytest.fixture(scope="session")
def lab(lab_config):
    """The running lab's state; torn down at the end unless VMOTION_KEEP_LAB=1."""
    state = lab_control.up(lab_config, log=lambda line: None)
    yield state
    if os.environ.get("VMOTION_KEEP_LAB") != "1":
        lab_control.down(lab_config, log=lambda line: None)


@pytest.fixture
def lab_inventory(lab, lab_config, db):
    """The lab registered and synced into this test's database; the lab's current state."""
    state = lab_control.status(lab_config)
    register_lab(state)
    return state


@pytest.fixture
def workers(lab_inventory):
    """Three real migration workers, an inventory worker and the scheduler, on empty queues."""
    for name in ("high", "default", "low", "inventory"):
        django_rq.get_queue(name).empty()
    started = [processes.start_worker(i) for i in range(3)] + [processes.start_inventory_worker(), processes.start_scheduler()]
    # Forecasts ask the inventory worker to measure guests the inventory has not measured yet:
    # as in a deployment, it serves its queue before anyone asks.
    inventory, deadline = django_rq.get_queue("inventory"), time.monotonic() + 60
    while not Worker.all(queue=inventory) and time.monotonic() < deadline:
        time.sleep(0.2)
    yield started
    processes.stop_all(started)


@pytest.fixture
def quiet_host(lab_config):
    """A host whose guests all converge at once (not lab-vm4's, which outruns the link)."""
    return Host.objects.get(name=lab_config.home_host("lab-vm2"))


@pytest.fixture
def guests_stay_intact(lab, request):
    """After every test, each guest's serial log must show it kept running (heartbeats, no
    new boot) and that every page it rewrote still held what it last wrote there. A test
    marked guest_restarted(name) restarts that guest from its disk on purpose: it is left out."""
    restarted = {marker.args[0] for marker in request.node.iter_markers("guest_restarted")}
    logs = {guest.name: guest.serial_log for guest in lab.guests if guest.name not in restarted}
    offsets = {name: path.stat().st_size for name, path in logs.items()}
    yield
    for name, path in logs.items():
        lines = _complete_lines_with_a_heartbeat(path, offsets[name])
        assert any("HB seq=" in line for line in lines), f"{name} printed no heartbeat"
        assert not any("VMOTION-GUEST READY" in line for line in lines), f"{name} booted again"
        assert not any("MISMATCH" in line for line in lines), f"{name} found memory corrupted"
        last = [line for line in lines if "HB seq=" in line][-1]
        assert " mismatches=0 " in last + " ", f"{name}: {last}"


def _complete_lines_with_a_heartbeat(path, offset: int, timeout: float = 5.0) -> list[str]:
    """The serial log's whole lines since `offset`, once one of them is a heartbeat (or the
    timeout passed). A guest on a busy machine may be slow to print, and the line it is
    writing at the moment of reading is left out."""
    deadline = time.monotonic() + timeout
    while True:
        with path.open("rb") as log:
            # A QEMU that opened the log afresh (a guest started again on its host) starts it over.
            log.seek(offset if path.stat().st_size >= offset else 0)
            text = log.read().decode(errors="replace")
        lines = text.splitlines()
        if not text.endswith("\n"):
            lines = lines[:-1]
        if any("HB seq=" in line for line in lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


@pytest.fixture
def home_hosts(lab_inventory, lab_config):
    """Put every guest back on its home host after the test, so tests stay independent."""
    yield
    state = lab_control.status(lab_config)
    hosts = {host.name: host for host in state.hosts}
    away = [(guest.name, guest.host, lab_config.home_host(guest.name)) for guest in state.guests if guest.host and guest.host != lab_config.home_host(guest.name)]

    def go_home(name: str, here: str, home: str) -> None:
        virsh(hosts[here].uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource", name, hosts[home].peer_uri)

    # The idle guests all at once, each its own migration side by side; a guest that rewrites
    # its memory (lab-vm4) alone after them, with the whole link to converge on.
    idle = [move for move in away if move[0] not in lab_config.workloads]
    with ThreadPoolExecutor(max_workers=max(1, len(idle))) as pool:
        for done in [pool.submit(go_home, *move) for move in idle]:
            done.result()
    for move in away:
        if move[0] in lab_config.workloads:
            go_home(*move)


def where_runs(vm_name: str) -> list[str]:
    return [host.name for host in Host.objects.order_by("name") if vm_name in domain_names(host.uri)]


def defined_on(vm_name: str) -> list[str]:
    return [host.name for host in Host.objects.order_by("name") if vm_name in domain_names(host.uri, all_domains=True)]


def at_full_speed(task: MigrationTask) -> None:
    """Lift the cap that kept a migration under way while the test watched it: libvirt lets it
    finish at full speed. (The worker sets the speed again only when the task's share of a
    host's budget changes.)"""
    virsh(task.source.uri, "migrate-setspeed", task.vm.name, "1000", check=False)


def wait_for_state(task: MigrationTask, states, timeout: float = 60) -> MigrationTask:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.state in states:
            return task
        time.sleep(0.1)
    raise AssertionError(f"task #{task.pk} stayed {task.state}, not {states}: {[e.message for e in task.events.all()]}")


FINAL = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)


def timeline(task: MigrationTask) -> str:
    return "\n".join(f"{event.at:%H:%M:%S.%f} {event.message}" for event in task.events.all())


def final_within(task: MigrationTask, seconds: float, since: float, record_property=None) -> MigrationTask:
    """The task once final, at most `seconds` after `since` (the time.monotonic() of the fault).
    With `record_property`, the seconds it took go into the test report as seconds_to_final,
    which bench/faults.py tabulates."""
    deadline = since + seconds
    while True:
        task.refresh_from_db()
        if task.state in FINAL:
            if record_property is not None:
                record_property("seconds_to_final", f"{time.monotonic() - since:.1f}")
            return task
        if time.monotonic() >= deadline:
            raise AssertionError(f"task #{task.pk} still {task.state} {seconds:.0f} s after the fault:\n{timeline(task)}")
        time.sleep(0.1)


@pytest.fixture
def disks_back_on_shared(lab, lab_config):
    """After the test, every guest's disk back on the shared datastore, where the lab keeps
    them (and where `home_hosts` needs them to send the guests home): a disk a test left on a
    host's local datastore is copied back and its local image removed, by virsh."""
    yield
    state = lab_control.status(lab_config)
    uris = {host.name: host.uri for host in state.hosts}
    for guest in state.guests:
        if not guest.host:
            continue
        uri = uris[guest.host]
        lines = virsh(uri, "domblklist", guest.name).stdout.splitlines()
        image = Path(next(line.split()[1] for line in lines if line.split()[:1] == ["vda"]))
        if image.parent == lab_config.datastore_dir:
            continue
        shared = lab_config.datastore_dir / image.name
        virsh(uri, "blockcopy", guest.name, "vda", str(shared), "--wait", "--pivot", "--transient-job", "--format", "qcow2", timeout=120)
        image.unlink(missing_ok=True)
        for pool in ("lab-datastore", "lab-local"):
            virsh(uri, "pool-refresh", pool, check=False)
