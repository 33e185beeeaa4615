"""The lab for tests: real libvirtd hosts and QEMU guests, started once per test session.

The test lab has its own directory and network namespace (scripts/test.sh sets them), so it
never touches a demo lab running on the same machine.
"""

import os
import shutil
import subprocess

import pytest

from tests.prerequisites import require
from vmotion.lab import lab as lab_control
from vmotion.lab.config import GuestWorkload, LabConfig
from vmotion.lab.register import register_lab

# Seven guests: six idle ones for the limit tests, and lab-vm4, which rewrites its memory
# faster than a gigabit link moves it.
TEST_LAB = dict(
    host_count=3,
    guest_count=7,
    guest_memory_mib=128,
    workloads={"lab-vm4": GuestWorkload(dirty_mb=32, dirty_rate=150)},
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
    register_lab(lab_control.status(lab_config))
    return lab_control.status(lab_config)


def virsh(uri: str, *args: str, check: bool = True) -> str:
    result = subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def running_domains(uri: str) -> set[str]:
    return {line.strip() for line in virsh(uri, "list", "--name").splitlines() if line.strip()}


@pytest.fixture
def workers(lab_inventory):
    """Three real rqworker processes and the scheduler, on empty queues."""
    import django_rq

    from tests import processes

    for name in ("high", "default", "low"):
        django_rq.get_queue(name).empty()
    started = [processes.start_worker(i) for i in range(3)] + [processes.start_scheduler()]
    yield started
    for process in started:
        processes.stop(process)
