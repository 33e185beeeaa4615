"""A new installation's first forecast: no migration of the guest or from its host has shown
what its first pass sends, so the worker samples the guest's memory for what is not zero
pages, rather than take QEMU's resident set, which also counts zero pages the guest touched
and QEMU's own memory. Figures from the lab: an idle 256 MiB guest whose QEMU held 222 MiB
sent 96 MiB in its first pass, and a sample of its memory found 93-96 MiB."""

import pytest
from django.utils import timezone

from hypervisor import HypervisorTimeout

from migrations_app.forecast import live
from migrations_app.forecast.history import FirstPassHint, LinkRates
from migrations_app.forecast.replay import memory_in_use
from migrations_app.convergence.policy import MIB
from migrations_app.convergence.prediction import SETUP_MS
from migrations_app.options import MigrationOptions
from tests.factories import VirtualMachineFactory

pytestmark = pytest.mark.django_db

RESIDENT = 222 * MIB
NONZERO = 96 * MIB
GIGABIT = LinkRates(110 * MIB, 110 * MIB)


class FakeGuest:
    """The calls the worker's forecast makes on the guest; counts the memory samples."""

    def __init__(self, nonzero: int | None | Exception = NONZERO):
        self.nonzero, self.samples = nonzero, 0

    def resident_bytes(self) -> int:
        return RESIDENT

    def measure_dirty_rate(self, seconds: int = 1) -> int:
        return 0

    def nonzero_memory_bytes(self) -> int | None:
        self.samples += 1
        if isinstance(self.nonzero, Exception):
            raise self.nonzero
        return self.nonzero


def idle_vm(**fields):
    return VirtualMachineFactory(memory_bytes=256 * MIB, vcpus=1, **fields)


def first_forecast(vm, guest):
    return live.forecast(guest, vm, MigrationOptions(bandwidth_mib_s=110).convergence_inputs(vm.memory_bytes), GIGABIT)


def test_a_new_installations_first_forecast_sends_the_guests_non_zero_memory_not_its_resident_set():
    vm, guest = idle_vm(), FakeGuest()

    forecast = first_forecast(vm, guest)

    assert guest.samples == 1 and forecast.first_pass_bytes == NONZERO and forecast.resident_bytes == RESIDENT
    # 96 MiB over gigabit: 0.87 s plus setup, where the resident set would have said 2.3 s.
    assert forecast.prediction.total_ms == pytest.approx(SETUP_MS + 96 / 110 * 1000, abs=2)
    vm.refresh_from_db()
    assert vm.nonzero_memory_bytes == NONZERO and vm.nonzero_memory_read_at is not None


def test_the_sample_is_kept_for_the_next_forecast_which_does_not_sample_again():
    vm = idle_vm(nonzero_memory_bytes=90 * MIB, nonzero_memory_read_at=timezone.now())
    guest = FakeGuest()

    assert first_forecast(vm, guest).first_pass_bytes == 90 * MIB and guest.samples == 0


@pytest.mark.parametrize("answer", [None, HypervisorTimeout("sampling the guest's memory at kvm1 took longer than 16 s")])
def test_a_guest_whose_memory_cannot_be_read_in_time_is_forecast_from_its_resident_set(answer):
    vm, guest = idle_vm(), FakeGuest(nonzero=answer)

    forecast = first_forecast(vm, guest)

    assert guest.samples == 1 and forecast.first_pass_bytes == RESIDENT and forecast.prediction.total_ms > 0


def test_this_vms_last_first_pass_comes_before_a_sample_and_a_sample_before_its_hosts_history():
    own = FirstPassHint(sent_bytes=100 * MIB, resident_then=RESIDENT)
    host = FirstPassHint(qemu_own_bytes=80 * MIB)

    assert memory_in_use(RESIDENT, own, NONZERO) == 100 * MIB
    assert memory_in_use(RESIDENT, host, NONZERO) == NONZERO
    assert memory_in_use(RESIDENT, host, None) == RESIDENT - 80 * MIB
    assert memory_in_use(RESIDENT, None, None) == RESIDENT
    assert memory_in_use(64 * MIB, None, NONZERO) == 64 * MIB  # a sample over the resident set is noise


def test_a_vm_with_history_on_its_host_is_not_sampled_before_its_move(monkeypatch):
    vm, guest = idle_vm(), FakeGuest()
    monkeypatch.setattr(live, "first_pass_hints", lambda vms: {vm.pk: FirstPassHint(qemu_own_bytes=80 * MIB)})

    assert first_forecast(vm, guest).first_pass_bytes == RESIDENT - 80 * MIB and guest.samples == 0
