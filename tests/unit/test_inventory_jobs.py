"""The inventory queue: every host queued in a round is read in that round."""

import django_rq
import pytest
from rq import SimpleWorker
from rq.job import Job

from inventory import jobs
from inventory.models import Host
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
