"""A libvirtd that stops answering (frozen, not crashed): every call has a deadline, a call past
it is abandoned on its thread and reported, and what follows does not wait behind it."""

import threading
import time

import pytest

from hypervisor import HypervisorError, HypervisorTimeout, connection as hypervisor_connection
from hypervisor.connection import Connection, open_connection
from hypervisor.guest import Guest
from hypervisor.host import read_host
from hypervisor.liveness import HostWatch
from hypervisor.states import DomainState

TEST_URI = "test:///default"


@pytest.fixture
def release():
    """Lets every blocked call of the test return at its end, as a daemon continued would."""
    event = threading.Event()
    yield event
    event.set()


def test_a_call_that_blocks_is_abandoned_at_its_deadline_and_reported(release):
    with Connection(TEST_URI, 0.3) as connection:
        started = time.monotonic()
        with pytest.raises(HypervisorTimeout, match=r"reading job stats at test:///default did not answer within 0.3 s"):
            connection.call(lambda conn: release.wait(30), "reading job stats")
        assert time.monotonic() - started < 1


def test_calls_after_an_unanswered_one_fail_at_once_until_it_returns(release):
    with Connection(TEST_URI, 0.3) as connection:
        with pytest.raises(HypervisorTimeout):
            connection.call(lambda conn: release.wait(30), "reading job stats")
        assert connection.unanswered()[0] == "reading job stats"

        started = time.monotonic()
        with pytest.raises(HypervisorTimeout, match="not asked, libvirt has not answered reading job stats for 0 s"):
            connection.call(lambda conn: conn.getLibVersion(), "reading the version")
        assert time.monotonic() - started < 0.1

        release.set()  # the daemon answers again
        deadline = time.monotonic() + 5
        while connection.unanswered() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert connection.call(lambda conn: conn.getLibVersion(), "reading the version") > 0


def test_leaving_a_connection_with_an_unanswered_call_does_not_wait_for_it(release):
    connection = Connection(TEST_URI, 0.3).__enter__()
    with pytest.raises(HypervisorTimeout):
        connection.call(lambda conn: release.wait(30), "aborting the migration")

    started = time.monotonic()
    connection.__exit__(None, None, None)
    assert time.monotonic() - started < 0.1


def test_a_connection_is_not_opened_again_behind_an_opening_that_never_returned(monkeypatch, release):
    monkeypatch.setattr("hypervisor.connection.libvirt.open", lambda uri: release.wait(30))
    with pytest.raises(HypervisorTimeout, match="did not answer within 0.2 s"):
        read_host(TEST_URI, timeout=0.2)
    time.sleep(0.05)

    started = time.monotonic()
    with pytest.raises(HypervisorTimeout, match=r"did not answer within 0.2 s \(not asked again: a connection asked for 0 s ago is still unanswered\)"):
        read_host(TEST_URI, timeout=0.2)
    assert time.monotonic() - started < 0.1


def test_an_opening_that_returned_leaves_the_next_one_free(monkeypatch, release):
    real_open = hypervisor_connection.libvirt.open
    gate = {"hang": True}
    monkeypatch.setattr("hypervisor.connection.libvirt.open", lambda uri: release.wait(30) if gate["hang"] else real_open(uri))
    with pytest.raises(HypervisorTimeout):
        read_host(TEST_URI, timeout=0.2)
    gate["hang"] = False
    release.set()
    time.sleep(0.1)

    assert read_host(TEST_URI, timeout=5).facts.hostname


def test_an_opening_asked_without_a_limit_is_never_refused(monkeypatch, release):
    monkeypatch.setattr("hypervisor.connection.libvirt.open", lambda uri: release.wait(30))
    with pytest.raises(HypervisorTimeout):
        read_host(TEST_URI, timeout=0.2)
    monkeypatch.undo()

    assert open_connection(TEST_URI).getLibVersion() > 0


class _FrozenConnection:
    def __init__(self, release: threading.Event):
        self.release = release

    def getLibVersion(self) -> int:
        self.release.wait(30)
        return 1

    def close(self) -> None:
        pass


def test_a_host_watch_tells_how_long_its_question_went_unanswered(release):
    watch = HostWatch("test:///frozen", interval=0.05, opener=lambda uri: _FrozenConnection(release)).start()
    try:
        time.sleep(0.4)
        assert watch.silent_for() >= 0.3

        release.set()
        time.sleep(0.2)
        assert watch.silent_for() == 0
    finally:
        watch.stop()


def test_a_host_watch_counts_a_refused_connection_as_an_answer():
    def refused(uri):
        raise HypervisorError("Failed to connect socket: Connection refused")

    watch = HostWatch("test:///down", interval=0.05, opener=refused).start()
    try:
        time.sleep(0.3)
        assert watch.silent_for() < 0.1
    finally:
        watch.stop()


def test_a_host_watch_of_a_host_that_answers_reads_no_silence():
    watch = HostWatch(TEST_URI, interval=0.05).start()
    try:
        time.sleep(0.3)
        assert watch.silent_for() < 0.1
    finally:
        watch.stop()


def test_stopping_an_incoming_copy_leaves_a_running_guest_alone():
    with Connection(TEST_URI, 5) as connection:
        uuid = connection.call(lambda conn: conn.lookupByName("test").UUIDString(), "finding the test domain")
        assert Guest(connection, uuid).destroy_incoming() == DomainState.RUNNING
        assert connection.call(lambda conn: conn.lookupByUUIDString(uuid).isActive(), "reading the domain") == 1


def test_stopping_the_incoming_copy_of_a_guest_not_here_finds_it_absent():
    with Connection(TEST_URI, 5) as connection:
        assert Guest(connection, "3b0bf1f3-5a5e-4d8a-9c1b-000000000000").destroy_incoming() == DomainState.ABSENT
