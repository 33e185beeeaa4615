"""Jobs go to Redis only once the transaction that asked for them has committed: a worker
that picks one up at once must read the rows as they are after the change."""

import django_rq
import pytest
from django.urls import reverse

from inventory.models import Host
from tests.factories import HostFactory


@pytest.fixture
def high_queue():
    queue = django_rq.get_queue("high")
    queue.empty()
    yield queue
    queue.empty()


def test_the_admins_host_save_queues_the_sync_only_once_the_save_has_committed(client_as, administrator, high_queue, django_capture_on_commit_callbacks):
    form = {"name": "kvm9", "uri": "qemu+tcp://kvm9.invalid/system", "migration_uri": "", "cluster": "", "state": "disconnected"}

    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        response = client_as(administrator).post(reverse("admin:inventory_host_add"), form)

    assert response.status_code == 302, response.content[:2000]
    assert high_queue.count == 0, "a sync was queued before the new host was committed"
    for callback in after_commit:
        callback()
    assert high_queue.count == 1
    assert high_queue.jobs[0].args == (Host.objects.get(name="kvm9").pk,)


def test_an_operators_sync_request_queues_the_job_after_commit(client_as, operator, high_queue, django_capture_on_commit_callbacks):
    host = HostFactory()

    with django_capture_on_commit_callbacks(execute=True) as after_commit:
        client_as(operator).post(reverse("host-sync", args=[host.pk]))
        assert high_queue.count == 0

    assert len(after_commit) == 1 and high_queue.count == 1
