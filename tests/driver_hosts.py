"""For unit tests of the migration service on hosts of libvirt's test driver: the one guest
the driver defines, and fixtures that leave to the lab what only real guests can show
(libvirt's CPU comparison, and a host's inventory read, which would replace the tests' VMs
with the driver's own guest)."""

import uuid
from contextlib import contextmanager
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import Queue, SimpleWorker

from hypervisor import connection
from inventory import enqueue

from migrations_app.checks.rules import ok
from tests.factories import HostFactory

TEST_GUEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # the guest libvirt's test driver defines


@pytest.fixture
def cpus_compatible(monkeypatch):
    compatible = lambda vm, source, destination: ok("cpu_compatible", "compatible")  # noqa: E731
    monkeypatch.setattr("migrations_app.checks.store.check_cpu_compatible", compatible)
    monkeypatch.setattr("migrations_app.checks.live.check_cpu_compatible", compatible)


@pytest.fixture
def no_libvirt_sync(monkeypatch):
    """The inventory stays as each test sets it."""
    monkeypatch.setattr("migrations_app.automation.evacuation.sync.sync_host", lambda host: None)


def driver_host(name: str, **fields):
    """A host that answers, as libvirt's test driver, and was read a moment ago."""
    return HostFactory(name=name, uri="test:///default", last_seen=timezone.now(), last_error="", **fields)


class _InventoryWorker:
    running = False  # while a test's in-process inventory worker runs its jobs


@pytest.fixture
def libvirt_forbidden(monkeypatch):
    """Every libvirt connection this process tries to open through the one door
    (`hypervisor.connection.open_connection`) outside an inventory worker's job, refused and
    listed: a page reads what the workers measured, and a test asserts the list stays empty."""
    opened = []
    real = connection.open_connection

    def open_connection(uri, timeout=None):
        if _InventoryWorker.running:
            return real(uri, timeout)
        opened.append(uri)
        raise AssertionError(f"a libvirt connection to {uri} was opened")

    monkeypatch.setattr(connection, "open_connection", open_connection)
    return opened


@contextmanager
def libvirt_allowed():
    """libvirt for the test's own reading of what to expect, not for the page."""
    _InventoryWorker.running = True
    try:
        yield
    finally:
        _InventoryWorker.running = False


@pytest.fixture
def inventory_worker(monkeypatch):
    """An inventory worker that answers at once: while a page waits for an answer, RQ runs the
    queued jobs here, on a queue of the test's own (no other worker on the test's Redis takes
    them). Returns the queue."""
    queue = Queue(f"inventory-test-{uuid.uuid4().hex[:8]}", connection=django_rq.get_connection("inventory"))
    monkeypatch.setattr("inventory.enqueue.asking_queue", lambda: queue)
    monkeypatch.setattr("inventory.enqueue.workers_alive", lambda queue: 1)
    answer_of = enqueue.answer_of

    def answered_at_once(job, wait_seconds):
        with libvirt_allowed():
            SimpleWorker([queue], connection=queue.connection).work(burst=True)
        return answer_of(job, 0)

    monkeypatch.setattr("inventory.enqueue.answer_of", answered_at_once)
    yield queue
    queue.delete(delete_jobs=True)


@pytest.fixture
def no_inventory_worker(monkeypatch):
    """No inventory worker serves the queue, whatever else shares the test's Redis."""
    monkeypatch.setattr("inventory.enqueue.workers_alive", lambda queue: 0)


def measured(vm, *, seconds_ago: float, dirty_rate_bytes_s: int, resident_bytes: int):
    """What the inventory's background measurements left on the VM `seconds_ago`."""
    at = timezone.now() - timedelta(seconds=seconds_ago)
    vm.dirty_rate_bytes_s, vm.dirty_rate_read_at = dirty_rate_bytes_s, at
    vm.memory_in_use_bytes, vm.load_sampled_at = resident_bytes, at
    vm.save()
    return vm
