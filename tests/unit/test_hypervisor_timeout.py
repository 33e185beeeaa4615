import threading

import pytest

from hypervisor import HypervisorError, HypervisorTimeout
from hypervisor.connection import call_with_timeout
from hypervisor.host import read_host


def test_a_call_that_does_not_return_in_time_raises_a_timeout():
    release = threading.Event()

    with pytest.raises(HypervisorTimeout, match="did not answer within 0.2 s"):
        call_with_timeout(lambda: release.wait(30), 0.2, what="libvirt at qemu:///hung")
    release.set()


def test_a_call_that_returns_gives_its_value():
    assert call_with_timeout(lambda: 42, 1, what="x") == 42


def test_a_libvirt_error_becomes_a_hypervisor_error_with_its_message():
    with pytest.raises(HypervisorError, match="Failed to connect socket"):
        read_host("qemu+unix:///system?socket=/nonexistent/socket", timeout=5)
