"""The inventory queue: every host queued in a round is read in that round."""

import contextlib
import socket

import django_rq
import pytest
from rq import SimpleWorker
from rq.job import Job

from inventory import jobs, worker
from inventory.models import Host
from inventory.worker import InventoryWorker
from tests.factories import HostFactory


@pytest.fixture
def inventory_queue():
    queue = django_rq.get_queue("inventory")
    queue.empty()
    yield queue
    queue.empty()


def run_queued_jobs(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_a_host_read_a_moment_ago_is_read_again_however_long_its_next_job_waits(db, inventory_queue, django_capture_on_commit_callbacks):
    host = HostFactory(uri="test:///default")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_host_sync(host)
    run_queued_jobs(inventory_queue)
    key = Job.key_for(jobs.job_id(host.pk))
    assert inventory_queue.connection.ttl(key) > 0, "the finished job is kept for result_ttl"

    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_sync_all()

    # A queued job that inherited the finished one's expiry would vanish unrun from a long queue.
    assert inventory_queue.connection.ttl(key) == -1
    first_sync = Host.objects.get(pk=host.pk).last_sync
    run_queued_jobs(inventory_queue)
    assert Host.objects.get(pk=host.pk).last_sync > first_sync


# The worker's jobs need a database outside a test's transaction: between jobs it closes a
# connection left inside one, as Django does between requests.
def test_the_inventory_worker_runs_each_sync_in_its_own_process(transactional_db, inventory_queue, django_capture_on_commit_callbacks):
    host = HostFactory(uri="test:///default")
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_host_sync(host)

    InventoryWorker([inventory_queue], connection=inventory_queue.connection).work(burst=True)

    assert Host.objects.get(pk=host.pk).last_error == ""
    assert Job.fetch(jobs.job_id(host.pk), connection=inventory_queue.connection).is_finished


def test_an_inventory_worker_whose_libvirt_calls_hang_stops_after_its_job(transactional_db, inventory_queue, django_capture_on_commit_callbacks, settings, monkeypatch):
    settings.LIBVIRT_CALL_TIMEOUT_SECONDS = 0.2
    monkeypatch.setattr(worker.InventoryWorker, "abandoned_calls_limit", 1)
    # Servers that take connections and never answer, one per host: a URI whose opening never
    # returned is not opened again, so hosts sharing one would leave a single call hanging.
    silent = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    with contextlib.ExitStack() as servers:
        for server in silent:
            servers.enter_context(server)
        hosts = [HostFactory(uri=f"qemu+tcp://127.0.0.1:{server.getsockname()[1]}/system") for server in silent]
        with django_capture_on_commit_callbacks(execute=True):
            jobs.enqueue_sync_all()

        worker.InventoryWorker([inventory_queue], connection=inventory_queue.connection).work(burst=True)

        assert inventory_queue.count == 1, "the worker stopped after the job that left a second call hanging"
        assert all("did not answer" in host.last_error for host in Host.objects.filter(pk__in=[h.pk for h in hosts[:2]]))


def test_a_round_that_finds_hosts_still_queued_warns_that_the_workers_fall_behind(db, inventory_queue, django_capture_on_commit_callbacks, caplog):
    HostFactory(), HostFactory()
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_sync_all()

    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_sync_all()

    assert "2 of 2 hosts are still queued or being read" in caplog.text
