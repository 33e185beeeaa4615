"""The link rate a forecast assumes: learned from the last uncapped migration between the same
hosts, and never above the operator's cap."""

import pytest

from migrations_app.choices import TaskState
from migrations_app.forecast import expected_link_bytes_s
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


def test_capped_migrations_and_the_reverse_direction_teach_nothing(hosts):
    source, destination = hosts
    moved(source, destination, mib=10, total_ms=SETUP_MS + 1000, bandwidth_mib_s=10)
    moved(destination, source, mib=10, total_ms=SETUP_MS + 1000)

    assert expected_link_bytes_s(source, destination, 110) == 110 * MIB
