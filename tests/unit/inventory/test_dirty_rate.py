"""The dirty rate the inventory measures in the background stands in for sampling the guest
at submission while it is recent; the forecast then starts without waiting for the guest."""

from datetime import timedelta

import pytest
from django.utils import timezone

from inventory.dirty_rate import (
    READINGS_KEPT,
    record_dirty_rate,
    recent_dirty_rate,
    recent_nonzero_memory,
    recent_working_set,
)
from hypervisor.connection import Connection
from hypervisor.guest import Guest
from inventory.measure import measure_guests
from migrations_app import services
from migrations_app.forecast import live as live_forecast
from migrations_app.forecast.history import LinkRates
from migrations_app.options import MigrationOptions
from tests.driver_hosts import TEST_GUEST_UUID, driver_host
from tests.factories import VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
MB = 1_000_000


def vm_read(seconds_ago: float | None, rate: int | None = 40 * MB, **fields):
    read_at = timezone.now() - timedelta(seconds=seconds_ago) if seconds_ago is not None else None
    return VirtualMachineFactory(dirty_rate_bytes_s=rate, dirty_rate_read_at=read_at, **fields)


# A guest that keeps moving is measured again only once it stays put, so a rate stands for
# 15 minutes, or three sync intervals where those are longer (the two kinds take turns).
@pytest.mark.parametrize(("seconds_ago", "expected"), [(1, 40 * MB), (899, 40 * MB), (901, None), (None, None)])
def test_a_rate_read_in_the_last_15_minutes_is_recent(settings, seconds_ago, expected):
    settings.INVENTORY_SYNC_INTERVAL_SECONDS = 30

    assert recent_dirty_rate(vm_read(seconds_ago)) == expected


def test_with_long_sync_intervals_a_rate_stands_for_three_of_them(settings):
    settings.INVENTORY_SYNC_INTERVAL_SECONDS = 600

    assert recent_dirty_rate(vm_read(1700)) == 40 * MB
    assert recent_dirty_rate(vm_read(1900)) is None


def test_a_vm_never_measured_has_no_recent_rate():
    assert recent_dirty_rate(vm_read(1, rate=None)) is None


def window_read(dirtied: int | None, rate: int = 40 * MB, seconds_ago: float = 5):
    read_at = timezone.now() - timedelta(seconds=seconds_ago)
    return vm_read(seconds_ago, rate=rate, dirtied_in_window_bytes=dirtied, dirtied_in_window_read_at=read_at)


def test_a_guest_that_dirtied_far_less_in_the_window_than_its_rate_says_rewrites_a_working_set():
    # 4 s at 40 MB/s would be 160 MB of new pages: 50 MB means it rewrites the same 50 MB.
    assert recent_working_set(window_read(50 * MB)) == 50 * MB


# 4 s at 40 MB/s: 150 or 160 MB is new pages all along; 10 MB contradicts the 1 s rate.
@pytest.mark.parametrize("dirtied", [150 * MB, 160 * MB, 10 * MB, 0, None])
def test_a_guest_dirtying_new_pages_all_window_long_or_not_measured_has_no_known_working_set(dirtied):
    assert recent_working_set(window_read(dirtied)) is None


def test_a_window_of_new_pages_all_along_gives_the_rate_with_less_noise_than_one_second():
    # 4 s at a sampled 40 MB/s would be 160 MB; the window saw 180 MB of new pages: 45 MB/s.
    assert recent_dirty_rate(window_read(180 * MB)) == 45 * MB
    # 140 MB, 35 MB/s: a window nearing the pages the guest keeps rewriting averages below
    # its pace, so the higher 1 s rate stands.
    assert recent_dirty_rate(window_read(140 * MB)) == 40 * MB
    # A window that shows a working set, or disagrees with the 1 s rate, leaves the 1 s rate.
    assert recent_dirty_rate(window_read(50 * MB)) == 40 * MB
    assert recent_dirty_rate(window_read(10 * MB)) == 40 * MB


def test_an_old_window_or_no_rate_gives_no_working_set(settings):
    settings.INVENTORY_SYNC_INTERVAL_SECONDS = 30

    assert recent_working_set(window_read(50 * MB, seconds_ago=1000)) is None
    assert recent_working_set(window_read(50 * MB, rate=None)) is None


def test_the_forecast_bounds_each_pass_by_the_working_set():
    vm = window_read(256 * 1024**2, rate=300 * MB)
    vm.name, vm.host, vm.uuid = "web-01", driver_host("kvm1"), TEST_GUEST_UUID
    vm.save()

    forecast = services.preview_migration(vm, driver_host("kvm2"), MigrationOptions()).forecast.forecast

    assert "rewriting the same 256 MiB" in forecast.prediction.explanation


def test_the_forecast_takes_the_recent_rate_instead_of_sampling_the_guest():
    vm = vm_read(5, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID)

    forecast = services.preview_migration(vm, driver_host("kvm2"), MigrationOptions()).forecast.forecast

    assert forecast.dirty_rate_bytes_s == 40 * MB and not forecast.sampled_now
    assert forecast.inputs.measured_dirty_rate_bytes_s == 40 * MB
    assert "dirtied at 40 MB/s as last sampled by the inventory" in forecast.summary()


def test_without_a_recent_rate_a_page_has_an_inventory_worker_sample_the_guest(inventory_worker, libvirt_forbidden):
    vm = vm_read(1000, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID)

    move = services.preview_migration(vm, driver_host("kvm2"), MigrationOptions()).forecast

    # The worker sampled the guest; libvirt's test driver cannot measure a dirty rate, and the
    # forecast does without one rather than keep the operator waiting.
    assert move.forecast.dirty_rate_bytes_s is None and "an unmeasured rate" in move.forecast.summary()
    assert move.forecast.age_seconds is not None and libvirt_forbidden == []


def test_without_a_recent_rate_the_workers_forecast_samples_the_guest():
    vm = vm_read(1000, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID)

    with Connection(vm.host.uri, timeout=10) as connection:
        forecast = live_forecast.forecast(Guest(connection, TEST_GUEST_UUID), vm, MigrationOptions().convergence_inputs(vm.memory_bytes), LinkRates(100 * MB, 100 * MB))

    # libvirt's test driver cannot measure a dirty rate: sampled, and found unmeasurable.
    assert forecast.sampled_now and forecast.dirty_rate_bytes_s is None
    assert "an unmeasured rate" in forecast.summary()


def test_the_rate_is_the_median_of_the_last_few_1_s_readings_so_one_outlier_does_not_decide_it():
    vm = VirtualMachineFactory()
    now = timezone.now()
    # A guest rewriting 100 MB/s, sampled a few hundred pages per GiB for a second at a time.
    for seconds_ago, rate in ((50, 96 * MB), (40, 104 * MB), (30, 98 * MB), (20, 100 * MB), (10, 71 * MB)):
        record_dirty_rate(vm, rate, now - timedelta(seconds=seconds_ago))

    assert vm.dirty_rate_bytes_s == 71 * MB  # the last reading, as before
    assert recent_dirty_rate(vm, now) == 98 * MB


def test_only_the_last_few_readings_are_kept_and_only_recent_ones_count(settings):
    settings.INVENTORY_SYNC_INTERVAL_SECONDS = 30
    vm = VirtualMachineFactory()
    now = timezone.now()
    record_dirty_rate(vm, 10 * MB, now - timedelta(hours=1))
    for n in range(READINGS_KEPT):
        record_dirty_rate(vm, (40 + n) * MB, now - timedelta(seconds=100 - n))
    assert len(vm.dirty_rate_readings) == READINGS_KEPT and [r for _, r in vm.dirty_rate_readings][0] == 40 * MB

    stale = VirtualMachineFactory()
    record_dirty_rate(stale, 90 * MB, now - timedelta(hours=1))
    record_dirty_rate(stale, 30 * MB, now - timedelta(seconds=5))
    assert recent_dirty_rate(stale, now) == 30 * MB


def test_readings_are_saved_by_the_sync_and_read_back_as_their_median():
    vm = VirtualMachineFactory()
    now = timezone.now()
    for seconds_ago, rate in ((30, 20 * MB), (20, 60 * MB), (10, 22 * MB)):
        record_dirty_rate(vm, rate, now - timedelta(seconds=seconds_ago))
    vm.save()
    vm.refresh_from_db()

    assert recent_dirty_rate(vm, now) == 22 * MB


def test_a_vm_measured_before_readings_were_kept_has_its_last_rate():
    assert recent_dirty_rate(vm_read(5, rate=40 * MB, dirty_rate_readings=[])) == 40 * MB


def test_the_non_zero_memory_sampled_stands_as_long_as_a_rate_does(settings):
    settings.INVENTORY_SYNC_INTERVAL_SECONDS = 30
    fresh = VirtualMachineFactory(nonzero_memory_bytes=96 * 2**20, nonzero_memory_read_at=timezone.now() - timedelta(minutes=5))
    old = VirtualMachineFactory(nonzero_memory_bytes=96 * 2**20, nonzero_memory_read_at=timezone.now() - timedelta(hours=1))

    assert recent_nonzero_memory(fresh) == 96 * 2**20
    assert recent_nonzero_memory(old) is None and recent_nonzero_memory(VirtualMachineFactory()) is None




def test_measuring_a_guest_now_keeps_two_1_s_readings_and_its_rate_is_their_mean(monkeypatch):
    # Page sampling counts 2 MB/s per changed page in a 128 MiB guest: one second can read
    # 4 MB/s for a guest rewriting 1 MB/s, and a second reading halves that step.
    vm = vm_read(None, rate=None, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID, power_state="running")
    readings = iter([4 * MB, 0])
    monkeypatch.setattr(Guest, "measure_dirty_rate", lambda guest, seconds: next(readings))

    assert measure_guests([vm.pk]) == 1

    vm.refresh_from_db()
    assert [rate for _, rate in vm.dirty_rate_readings] == [4 * MB, 0]
    assert recent_dirty_rate(vm) == 2 * MB


def test_a_reading_that_fails_keeps_the_one_taken_before_it(monkeypatch):
    vm = vm_read(None, rate=None, name="web-01", host=driver_host("kvm1"), uuid=TEST_GUEST_UUID, power_state="running")
    readings = iter([3 * MB, None])
    monkeypatch.setattr(Guest, "measure_dirty_rate", lambda guest, seconds: next(readings))

    assert measure_guests([vm.pk]) == 1

    vm.refresh_from_db()
    assert recent_dirty_rate(vm) == 3 * MB and len(vm.dirty_rate_readings) == 1
