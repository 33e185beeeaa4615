"""The dirty rate the inventory measures in the background stands in for sampling the guest
at submission while it is recent; the forecast then starts without waiting for the guest."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.dirty_rate import recent_dirty_rate
from migrations_app import services
from migrations_app.options import MigrationOptions
from tests.driver_hosts import TEST_GUEST_UUID, cpus_compatible, driver_host  # noqa: F401  fixtures
from tests.factories import VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
MB = 1_000_000


def vm_read(seconds_ago: float | None, rate: int | None = 40 * MB, **fields):
    read_at = timezone.now() - timedelta(seconds=seconds_ago) if seconds_ago is not None else None
    return VirtualMachineFactory(dirty_rate_bytes_s=rate, dirty_rate_read_at=read_at, **fields)


@pytest.mark.parametrize(("seconds_ago", "expected"), [(1, 40 * MB), (59, 40 * MB), (61, None), (None, None)])
def test_a_rate_read_by_one_of_the_last_two_syncs_is_recent(settings, seconds_ago, expected):
    settings.INVENTORY_SYNC_INTERVAL_SECONDS = 30

    assert recent_dirty_rate(vm_read(seconds_ago)) == expected


def test_a_vm_never_measured_has_no_recent_rate():
    assert recent_dirty_rate(vm_read(1, rate=None)) is None


def test_the_forecast_takes_the_recent_rate_instead_of_sampling_the_guest():
    vm = vm_read(5, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID)

    forecast = services.preview_migration(vm, driver_host("kvm2"), MigrationOptions()).forecast.forecast

    assert forecast.dirty_rate_bytes_s == 40 * MB and not forecast.sampled_now
    assert forecast.inputs.measured_dirty_rate_bytes_s == 40 * MB
    assert "dirtied at 40 MB/s as last sampled by the inventory" in forecast.summary()


def test_without_a_recent_rate_the_forecast_samples_the_guest():
    vm = vm_read(600, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID)

    forecast = services.preview_migration(vm, driver_host("kvm2"), MigrationOptions()).forecast.forecast

    # libvirt's test driver cannot measure a dirty rate: sampled, and found unmeasurable.
    assert forecast.sampled_now and forecast.dirty_rate_bytes_s is None
    assert "an unmeasured rate" in forecast.summary()
