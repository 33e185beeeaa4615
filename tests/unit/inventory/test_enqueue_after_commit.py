"""Jobs go to Redis only once the transaction that asked for them has committed: a worker
that picks one up at once must read the rows as they are after the change."""

import django_rq
import pytest
from django.urls import reverse

from inventory import jobs
from inventory.models import Host
from tests.factories import HostFactory


@pytest.fixture
def inventory_queue():
    queue = django_rq.get_queue("inventory")
    queue.empty()
    yield queue
    queue.empty()


def test_the_admins_host_save_queues_the_sync_only_once_the_save_has_committed(client_as, administrator, inventory_queue, django_capture_on_commit_callbacks):
    form = {"name": "kvm9", "uri": "qemu+ssh://root@kvm9.invalid/system", "migration_uri": "", "cluster": "", "state": "disconnected"}

    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        response = client_as(administrator).post(reverse("admin:inventory_host_add"), form)

    assert response.status_code == 302, response.content[:2000]
    assert inventory_queue.count == 0, "a sync was queued before the new host was committed"
    for callback in after_commit:
        callback()
    assert inventory_queue.count == 1
    assert inventory_queue.jobs[0].args == (Host.objects.get(name="kvm9").pk,)


def test_an_operators_sync_request_queues_the_job_after_commit(client_as, operator, inventory_queue, django_capture_on_commit_callbacks):
    host = HostFactory()

    with django_capture_on_commit_callbacks(execute=True) as after_commit:
        client_as(operator).post(reverse("host-sync", args=[host.pk]))
        assert inventory_queue.count == 0

    assert len(after_commit) == 1 and inventory_queue.count == 1


def test_a_host_whose_sync_is_still_queued_is_not_queued_twice(db, inventory_queue, django_capture_on_commit_callbacks):
    hosts = [HostFactory(), HostFactory()]

    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_sync_all()
    with django_capture_on_commit_callbacks(execute=True):
        jobs.enqueue_sync_all()
        jobs.enqueue_host_sync(hosts[0])

    assert sorted(inventory_queue.job_ids) == sorted(jobs.job_id(host.pk) for host in hosts)
