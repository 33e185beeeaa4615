"""Maintenance mode against the lab: a host's guests move off it through real workers and the
real scheduler, virsh says where each runs, and every guest keeps its memory intact."""

import time
from pathlib import Path

import pytest

from inventory.choices import HostState
from inventory.models import Host
from lab.commands import domain_names
from migrations_app.automation import maintenance
from migrations_app.choices import ACTIVE_STATES, EvacuationState
from migrations_app.models import Evacuation

from tests.lab.conftest import where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def wait_until_ended(evacuation: Evacuation, timeout: float = 240) -> Evacuation:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evacuation.refresh_from_db()
        if evacuation.state != EvacuationState.RUNNING and not evacuation.batch.tasks.filter(state__in=ACTIVE_STATES).exists():
            return evacuation
        time.sleep(0.5)
    raise AssertionError(f"evacuation #{evacuation.pk} still {evacuation.state}: {evacuation.message}")


def lab_guests_on(host: Host) -> set[str]:
    return {name for name in domain_names(host.uri) if name.startswith("lab-vm")}


def test_a_host_entering_maintenance_empties_and_each_guest_runs_elsewhere_once(
    lab_inventory, workers, administrator, quiet_host, home_hosts, guests_stay_intact
):
    guests = lab_guests_on(quiet_host)
    assert len(guests) >= 2
    plan = maintenance.plan(quiet_host)
    assert {item.vm.name for item in plan.placed} == guests and not plan.unplaceable
    assert plan.predicted_total_ms and plan.predicted_total_ms > 0

    evacuation = wait_until_ended(maintenance.enter(quiet_host, requested_by=administrator, predicted_total_ms=plan.predicted_total_ms))

    assert evacuation.state == EvacuationState.COMPLETED, evacuation.message
    quiet_host.refresh_from_db()
    assert quiet_host.state == HostState.MAINTENANCE
    assert lab_guests_on(quiet_host) == set()
    for name in guests:
        assert len(where_runs(name)) == 1 and where_runs(name) != [quiet_host.name], name
    assert maintenance.exit_maintenance(quiet_host) and Host.objects.get(pk=quiet_host.pk).state == HostState.CONNECTED


def test_a_guest_with_nowhere_to_go_stops_the_evacuation_and_stays_put(lab_inventory, workers, quiet_host):
    guests = lab_guests_on(quiet_host)
    Host.objects.exclude(pk=quiet_host.pk).update(state=HostState.MAINTENANCE)

    evacuation = wait_until_ended(maintenance.enter(quiet_host), timeout=30)

    assert evacuation.state == EvacuationState.STOPPED
    assert "Nowhere to go for lab-vm" in evacuation.message and "is in maintenance: it takes no new VMs" in evacuation.message
    assert lab_guests_on(quiet_host) == guests
    quiet_host.refresh_from_db()
    assert quiet_host.state == HostState.ENTERING_MAINTENANCE


def test_abort_stops_the_evacuation_and_exit_returns_the_host_with_every_guest_on_one_host(
    lab_inventory, workers, quiet_host, home_hosts, guests_stay_intact
):
    guests = lab_guests_on(quiet_host)
    evacuation = maintenance.enter(quiet_host)

    maintenance.abort(evacuation)
    evacuation = wait_until_ended(evacuation)

    assert evacuation.state == EvacuationState.ABORTED and "Aborted by the system" in evacuation.message
    for name in guests:
        assert len(where_runs(name)) == 1, name
    maintenance.exit_maintenance(quiet_host)
    quiet_host.refresh_from_db()
    assert quiet_host.state == HostState.CONNECTED


def test_a_guest_on_its_hosts_local_disk_is_evacuated_with_its_disk(
    lab_inventory, lab_config, workers, administrator, quiet_host, home_hosts, guests_stay_intact, disks_back_on_shared
):
    # One of the host's guests first moves its disk onto the host's own storage: then no other
    # host can read it, and the evacuation must copy it.
    from tests.lab.test_disk_copies import disk_of
    from tests.lab.test_storage_moves import moved

    guests = sorted(lab_guests_on(quiet_host))
    name = guests[0]
    local_image = lab_config.local_datastore_dir(quiet_host.name) / Path(disk_of(quiet_host, name)).name
    moved(name, "lab-local")
    assert disk_of(quiet_host, name) == str(local_image)
    plan = maintenance.plan(quiet_host, measure=False)
    assert {item.vm.name for item in plan.placed} == set(guests) and not plan.unplaceable, [(item.vm.name, item.move.blocked_reason) for item in plan.unplaceable]

    evacuation = wait_until_ended(maintenance.enter(quiet_host, requested_by=administrator))

    assert evacuation.state == EvacuationState.COMPLETED, evacuation.message
    assert lab_guests_on(quiet_host) == set()
    [there] = where_runs(name)
    away = Host.objects.get(name=there)
    assert there != quiet_host.name
    assert disk_of(away, name) == str(lab_config.local_datastore_dir(there) / local_image.name)
    assert not local_image.exists()
    assert maintenance.exit_maintenance(quiet_host)
