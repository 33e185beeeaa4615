import threading

import pytest

from hypervisor import HypervisorError, HypervisorTimeout
from hypervisor.connection import Connection, call_with_timeout
from hypervisor.host import read_host


def test_a_call_that_does_not_return_in_time_raises_a_timeout():
    release = threading.Event()

    with pytest.raises(HypervisorTimeout, match="did not answer within 0.2 s"):
        call_with_timeout(lambda: release.wait(30), 0.2, what="libvirt at qemu:///hung")
    release.set()


def test_a_call_that_returns_gives_its_value():
    assert call_with_timeout(lambda: 42, 1, what="x") == 42


def test_a_libvirt_error_becomes_a_hypervisor_error_with_its_message(settings):
    settings.LIBVIRT_LOCAL_INSTALL, settings.LIBVIRT_URI_DIRECTORIES = True, ["/nonexistent"]
    with pytest.raises(HypervisorError, match="Failed to connect socket"):
        read_host("qemu+unix:///system?socket=/nonexistent/socket", timeout=5)


def test_a_timeout_names_the_host_without_the_password_of_its_uri(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr("hypervisor.connection.libvirt.open", lambda uri: release.wait(30))

    with pytest.raises(HypervisorTimeout) as raised:
        with Connection("qemu+tls://root:s3cret@kvm1.invalid/system", 0.2):
            pass
    release.set()

    assert "s3cret" not in str(raised.value)
    assert "root:********@kvm1.invalid" in str(raised.value)
