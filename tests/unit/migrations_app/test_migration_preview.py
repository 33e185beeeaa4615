"""Checking a migration without submitting it: the refusals `submit_migration` would make,
and the forecast once nothing refuses, from the inventory's measurements: no libvirt
connection is opened."""

import pytest

from migrations_app import services
from migrations_app.errors import ActiveMigrationExists
from migrations_app.models import MigrationTask
from migrations_app.options import MigrationOptions
from tests.driver_hosts import TEST_GUEST_UUID, driver_host, measured
from tests.factories import VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]


@pytest.fixture
def move():
    return VirtualMachineFactory(name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID), driver_host("kvm2")


def test_a_move_that_would_be_accepted_is_forecast_and_nothing_is_submitted(move, libvirt_forbidden):
    vm, destination = move
    measured(vm, seconds_ago=5, dirty_rate_bytes_s=1000**2, resident_bytes=1024**3)

    preview = services.preview_migration(vm, destination, MigrationOptions(max_downtime_ms=500))

    assert preview.passed and preview.active is None
    assert preview.summary() == "All pre-flight checks passed."
    assert preview.forecast.forecast.prediction.total_ms > 0 and preview.forecast.forecast.inputs.slo_downtime_ms == 500
    assert preview.forecast.forecast.measured_ago in [f"measured {seconds} s ago" for seconds in range(5, 15)]
    assert libvirt_forbidden == [] and not MigrationTask.objects.exists()


def test_a_failing_check_is_reported_without_a_forecast(move):
    vm, _ = move

    preview = services.preview_migration(vm, vm.host, MigrationOptions())

    assert not preview.passed and preview.forecast is None
    assert "already runs on kvm1" in preview.summary()


def test_an_active_migration_is_what_submitting_would_refuse_and_it_names_the_task(move):
    vm, destination = move
    task = services.submit_migration(vm, destination, MigrationOptions())

    preview = services.preview_migration(vm, destination, MigrationOptions())
    with pytest.raises(ActiveMigrationExists) as refused:
        services.submit_migration(vm, destination, MigrationOptions())

    assert not preview.passed and preview.active == task and preview.forecast is None
    assert preview.summary() == f"web-01 already has an active migration, task #{task.pk} (queued)."
    assert refused.value.task == task and str(refused.value) == preview.summary()
    assert MigrationTask.objects.count() == 1
