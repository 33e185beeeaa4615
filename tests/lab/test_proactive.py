"""Proactive evacuation against the lab: a host marked degraded in a cluster whose policy is
"evacuate" is emptied by the scheduler's own rounds, through real workers; virsh says where
each guest runs, and every guest keeps its memory intact."""

import time

import pytest

from inventory import degradation
from inventory.choices import HostState
from inventory.models import Host
from migrations_app.automation import maintenance
from migrations_app.choices import EvacuationState, ProactiveLevel
from migrations_app.models import Evacuation, ProactivePolicy

from tests.lab.conftest import where_runs
from .test_maintenance import lab_guests_on, wait_until_ended

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def wait_for_evacuation_of(host: Host, timeout: float = 30) -> Evacuation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evacuation = Evacuation.objects.filter(host=host).first()
        if evacuation is not None:
            return evacuation
        time.sleep(0.2)
    raise AssertionError(f"no evacuation of {host.name} within {timeout:.0f} s")


def test_a_degraded_host_under_an_evacuate_policy_is_emptied_by_the_scheduler_and_each_guest_runs_elsewhere_once(
    lab_inventory, workers, quiet_host, home_hosts, guests_stay_intact
):
    guests = lab_guests_on(quiet_host)
    assert len(guests) >= 2 and quiet_host.cluster is not None
    ProactivePolicy.objects.update_or_create(cluster=quiet_host.cluster, defaults={"level": ProactiveLevel.EVACUATE})

    degradation.mark_degraded(quiet_host, "ECC errors on DIMM 3", degradation.BY_CLI)
    evacuation = wait_until_ended(wait_for_evacuation_of(quiet_host))

    assert evacuation.state == EvacuationState.COMPLETED, evacuation.message
    assert evacuation.requested_by is None
    assert evacuation.batch.reason == f"Automatic evacuation: {quiet_host.name} was marked degraded by vmotion CLI: ECC errors on DIMM 3"
    for task in evacuation.batch.tasks.all():
        assert any(event.message.startswith("Automatic evacuation:") for event in task.events.all()), task.pk
    quiet_host.refresh_from_db()
    assert quiet_host.state == HostState.MAINTENANCE and quiet_host.is_degraded
    assert lab_guests_on(quiet_host) == set()
    for name in guests:
        assert len(where_runs(name)) == 1 and where_runs(name) != [quiet_host.name], name

    time.sleep(3)  # the scheduler's rounds go on (every second here): the degradation is evacuated once
    assert Evacuation.objects.filter(host=quiet_host).count() == 1
    maintenance.exit_maintenance(quiet_host)
    degradation.restore(quiet_host)
    time.sleep(2)
    assert Evacuation.objects.filter(host=quiet_host).count() == 1
    assert Host.objects.get(pk=quiet_host.pk).state == HostState.CONNECTED
