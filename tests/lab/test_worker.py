"""Inventory jobs through real Redis and real `rqworker` and `scheduler` processes."""

import signal
import subprocess
import sys
import time

import django_rq
import pytest
from django.urls import reverse

from inventory.choices import HostState
from inventory.models import Host
from tests import processes

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def process_env() -> dict:
    return processes.process_env(INVENTORY_SYNC_INTERVAL="1")


def run_worker_until_queues_are_empty(*queues: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--burst", *queues],
        cwd=processes.ROOT, env=process_env(), capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.fixture
def empty_queues():
    for name in ("high", "default", "low", "inventory"):
        django_rq.get_queue(name).empty()


def test_a_real_worker_runs_the_sync_an_operator_asks_for(lab_inventory, client_as, operator, empty_queues):
    host = Host.objects.get(name="lab-host1")
    Host.objects.filter(pk=host.pk).update(cpu_model="", state=HostState.DISCONNECTED)

    response = client_as(operator).post(reverse("host-sync", args=[host.pk]))
    assert response.status_code == 302
    assert django_rq.get_queue("inventory").count == 1

    run_worker_until_queues_are_empty("inventory")

    host.refresh_from_db()
    assert host.state == HostState.CONNECTED and host.cpu_model


def test_the_scheduler_queues_a_sync_of_every_host_that_a_worker_carries_out(lab_inventory, empty_queues):
    Host.objects.update(state=HostState.DISCONNECTED, last_sync=None)
    scheduler = subprocess.Popen(
        [sys.executable, "manage.py", "scheduler"], cwd=processes.ROOT, env=process_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while django_rq.get_queue("inventory").count < Host.objects.count() and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=30)
    # One job per host, and no second one while the first waits.
    assert django_rq.get_queue("inventory").count == Host.objects.count(), "the scheduler queued not one sync per host"

    run_worker_until_queues_are_empty("inventory")

    assert set(Host.objects.values_list("state", flat=True)) == {HostState.CONNECTED}
    assert not Host.objects.filter(last_sync=None).exists()
