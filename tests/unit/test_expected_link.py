"""What a forecast learns from earlier migrations: the link rate, from the last uncapped
migration between the same hosts (or near them) and never above the operator's cap, and what
each VM's last migration moved."""

from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_app.choices import TaskState
from migrations_app.forecast import expected_link_bytes_s, last_moved_bytes_of
from migrations_app.models import MigrationTask
from migrations_app.policy import MIB
from migrations_app.prediction import SETUP_MS
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hosts():
    return HostFactory(), HostFactory()


def moved(source, destination, mib: int, total_ms: int, **fields):
    vm = VirtualMachineFactory(host=source)
    return MigrationTask.objects.create(
        vm=vm, source=source, destination=destination, state=TaskState.SUCCEEDED, bytes_transferred=mib * MIB, total_ms=total_ms, **fields
    )


def test_without_history_the_cap_or_the_assumed_speed(hosts, settings):
    settings.MIGRATION_ASSUMED_BANDWIDTH_MIB_S = 1000

    assert expected_link_bytes_s(*hosts, 110) == 110 * MIB
    assert expected_link_bytes_s(*hosts, None) == 1000 * MIB


def test_the_last_uncapped_copy_sets_the_rate_without_its_setup_time(hosts):
    moved(*hosts, mib=300, total_ms=SETUP_MS + 4000)  # 75 MiB/s while copying

    assert expected_link_bytes_s(*hosts, None) == 75 * MIB
    assert expected_link_bytes_s(*hosts, 110) == 75 * MIB  # the copy is slower than the cap
    assert expected_link_bytes_s(*hosts, 50) == 50 * MIB


def test_capped_migrations_teach_nothing(hosts):
    source, destination = hosts
    moved(source, destination, mib=10, total_ms=SETUP_MS + 1000, bandwidth_mib_s=10)

    assert expected_link_bytes_s(source, destination, 110) == 110 * MIB


def test_the_same_direction_first_then_the_reverse_then_a_copy_from_or_to_either_host(hosts):
    source, destination = hosts
    elsewhere = HostFactory()
    moved(elsewhere, HostFactory(), mib=999, total_ms=SETUP_MS + 1000)  # neither host: ignored
    assert expected_link_bytes_s(source, destination, None) == 110 * MIB

    moved(elsewhere, destination, mib=200, total_ms=SETUP_MS + 1000)
    assert expected_link_bytes_s(source, destination, None) == 200 * MIB

    moved(destination, source, mib=300, total_ms=SETUP_MS + 1000)
    assert expected_link_bytes_s(source, destination, None) == 300 * MIB

    older = moved(source, destination, mib=400, total_ms=SETUP_MS + 1000)
    MigrationTask.objects.filter(pk=older.pk).update(finished_at=timezone.now() - timedelta(days=1))
    assert expected_link_bytes_s(source, destination, None) == 400 * MIB


def test_what_each_vm_last_moved_is_read_for_all_of_them_at_once(hosts, django_assert_num_queries):
    source, destination = hosts
    older = moved(source, destination, mib=500, total_ms=5000)
    MigrationTask.objects.filter(pk=older.pk).update(finished_at=timezone.now() - timedelta(hours=1))
    MigrationTask.objects.create(
        vm=older.vm, source=destination, destination=source, state=TaskState.SUCCEEDED, bytes_transferred=345 * MIB, total_ms=3000, finished_at=timezone.now()
    )
    never_moved = VirtualMachineFactory(host=source)

    with django_assert_num_queries(1):
        moved_before = last_moved_bytes_of([older.vm, never_moved])

    assert moved_before == {older.vm.pk: 345 * MIB}
