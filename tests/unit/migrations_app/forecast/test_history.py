"""What a forecast learns from earlier migrations, read from their job samples: the rate of a
first pass and of the passes after it, from the last uncapped migrations between the same
hosts (or near them) and never above the operator's cap; and how much of a guest's resident
set its first pass sends."""

from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_app.choices import TaskState
from migrations_app.forecast.history import FirstPassHint, LinkRates, expected_link_rates, first_pass_hints
from migrations_app.models import MigrationTask, ProgressSample
from migrations_app.convergence.policy import MIB
from migrations_app.convergence.prediction import SETUP_MS
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hosts():
    return HostFactory(), HostFactory()


def moved(source, destination, first_mib: int, first_ms: int, resent_mib: int = 0, resent_ms: int = 20, vm=None, **fields):
    """A finished migration whose first pass sent first_mib in first_ms after setup, then
    resent_mib in resent_ms, as the engine's samples show it."""
    vm = vm or VirtualMachineFactory(host=source)
    end_of_first = SETUP_MS + first_ms
    task = MigrationTask.objects.create(
        vm=vm, source=source, destination=destination, state=TaskState.SUCCEEDED, finished_at=timezone.now(),
        bytes_transferred=(first_mib + resent_mib) * MIB, total_ms=end_of_first + resent_ms, **fields,
    )  # fmt: skip
    ProgressSample.objects.bulk_create([
        ProgressSample(task=task, elapsed_ms=SETUP_MS - 50, iteration=1, data_processed=MIB),
        ProgressSample(task=task, elapsed_ms=end_of_first, iteration=2, data_processed=first_mib * MIB),
        ProgressSample(task=task, elapsed_ms=end_of_first + resent_ms, iteration=3, data_processed=(first_mib + resent_mib) * MIB),
    ])  # fmt: skip
    return task


def rates(first_mib_s: int, resend_mib_s: int) -> LinkRates:
    return LinkRates(first_mib_s * MIB, resend_mib_s * MIB)


def test_without_history_the_cap_or_the_assumed_speed(hosts, settings):
    settings.MIGRATION_ASSUMED_BANDWIDTH_MIB_S = 1000

    assert expected_link_rates(*hosts, 110) == rates(110, 110)
    assert expected_link_rates(*hosts, None) == rates(1000, 1000)


def test_the_first_pass_and_the_passes_after_it_each_have_their_rate(hosts):
    # The first pass walks all the RAM: 300 MiB in 1 s; then 200 MiB resent in 100 ms.
    moved(*hosts, first_mib=300, first_ms=1000, resent_mib=200, resent_ms=100)

    assert expected_link_rates(*hosts, None) == rates(300, 2000)
    assert expected_link_rates(*hosts, 500) == rates(300, 500)  # never above the cap
    assert expected_link_rates(*hosts, 110) == rates(110, 110)


def test_a_few_mib_resent_tell_no_rate_so_later_passes_go_at_the_first_pass_rate(hosts):
    moved(*hosts, first_mib=300, first_ms=1000, resent_mib=8, resent_ms=10)  # device state, mostly

    assert expected_link_rates(*hosts, None) == rates(300, 300)


def test_the_resend_rate_comes_from_the_last_migration_that_resent_enough(hosts):
    source, destination = hosts
    busy = moved(source, destination, first_mib=300, first_ms=1000, resent_mib=200, resent_ms=100)
    MigrationTask.objects.filter(pk=busy.pk).update(finished_at=timezone.now() - timedelta(hours=1))
    moved(source, destination, first_mib=400, first_ms=1000, resent_mib=2, resent_ms=10)

    assert expected_link_rates(source, destination, None) == rates(400, 2000)


def test_the_resend_rate_comes_from_the_migration_that_resent_the_most(hosts):
    source, destination = hosts
    busy = moved(source, destination, first_mib=300, first_ms=1000, resent_mib=600, resent_ms=1500)  # 400 MiB/s, sustained
    MigrationTask.objects.filter(pk=busy.pk).update(finished_at=timezone.now() - timedelta(hours=1))
    moved(source, destination, first_mib=300, first_ms=1000, resent_mib=20, resent_ms=100)  # 200 MiB/s over two short passes

    assert expected_link_rates(source, destination, None) == rates(300, 400)


def test_the_most_resent_is_taken_among_the_nearest_migrations_that_resent_enough(hosts):
    source, destination = hosts
    moved(destination, source, first_mib=300, first_ms=1000, resent_mib=900, resent_ms=1000)  # the other way
    moved(source, destination, first_mib=300, first_ms=1000, resent_mib=100, resent_ms=200)

    assert expected_link_rates(source, destination, None) == rates(300, 500)


def test_capped_migrations_teach_no_rate(hosts):
    moved(*hosts, first_mib=10, first_ms=1000, bandwidth_mib_s=10)

    assert expected_link_rates(*hosts, 110) == rates(110, 110)


def test_the_same_direction_first_then_the_reverse_then_a_copy_from_or_to_either_host(hosts):
    source, destination = hosts
    elsewhere = HostFactory()
    moved(elsewhere, HostFactory(), first_mib=999, first_ms=1000)  # neither host: ignored
    assert expected_link_rates(source, destination, None).first_pass_bytes_s == 110 * MIB

    moved(elsewhere, destination, first_mib=200, first_ms=1000)
    assert expected_link_rates(source, destination, None).first_pass_bytes_s == 200 * MIB

    moved(destination, source, first_mib=300, first_ms=1000)
    assert expected_link_rates(source, destination, None).first_pass_bytes_s == 300 * MIB

    older = moved(source, destination, first_mib=400, first_ms=1000)
    MigrationTask.objects.filter(pk=older.pk).update(finished_at=timezone.now() - timedelta(days=1))
    assert expected_link_rates(source, destination, None).first_pass_bytes_s == 400 * MIB


def test_a_vm_moved_before_sends_what_its_last_first_pass_sent_plus_what_its_memory_grew_by(hosts):
    source, destination = hosts
    vm = VirtualMachineFactory(host=source)
    moved(destination, source, first_mib=345, first_ms=3000, vm=vm, resident_bytes=465 * MIB)

    hint = first_pass_hints([vm])[vm.pk]

    assert hint == FirstPassHint(sent_bytes=345 * MIB, resident_then=465 * MIB)
    assert hint.first_pass_bytes(420 * MIB) == 345 * MIB  # a new QEMU process holds less of its own
    assert hint.first_pass_bytes(565 * MIB) == 445 * MIB  # the guest touched 100 MiB more


def test_a_vm_never_moved_sends_its_resident_set_less_what_qemu_held_of_its_own_on_its_host(hosts):
    source, destination = hosts
    moved(source, destination, first_mib=345, first_ms=3000, resident_bytes=465 * MIB)  # 120 MiB QEMU's own
    newcomer = VirtualMachineFactory(host=source)
    elsewhere = VirtualMachineFactory(host=HostFactory())

    hints = first_pass_hints([newcomer, elsewhere])

    assert hints == {newcomer.pk: FirstPassHint(qemu_own_bytes=120 * MIB)}
    assert hints[newcomer.pk].first_pass_bytes(1000 * MIB) == 880 * MIB
    assert hints[newcomer.pk].first_pass_bytes(100 * MIB) == 25 * MIB  # never less than a quarter


def test_migrations_without_a_recorded_resident_set_tell_nothing_of_qemus_memory(hosts):
    moved(*hosts, first_mib=345, first_ms=3000)

    assert first_pass_hints([VirtualMachineFactory(host=hosts[0])]) == {}


def test_the_hints_for_many_vms_take_one_query(hosts, django_assert_num_queries):
    source, destination = hosts
    vms = [VirtualMachineFactory(host=source) for _ in range(3)]
    for vm in vms:
        moved(destination, source, first_mib=300, first_ms=3000, vm=vm, resident_bytes=400 * MIB)

    with django_assert_num_queries(1):
        hints = first_pass_hints(vms)

    assert {hint.sent_bytes for hint in hints.values()} == {300 * MIB} and len(hints) == 3
