"""A migration's copy starts only once no dirty-rate measurement of the guest runs: QEMU 10.0
deadlocked a migration that completed beside one (the guest paused on both hosts, the
migration neither finishing nor cancelling). No lab: the guest is a stand-in."""

from __future__ import annotations

import pytest

from hypervisor import HypervisorError
from migrations_app.choices import TaskState
from migrations_app.engine import run
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


def checking() -> MigrationTask:
    vm = VirtualMachineFactory(name="web-01", host=HostFactory(name="kvm1"))
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm2"))
    task.claim("here:1", "claimed")
    return task


class Guest:
    def __init__(self, ends: bool | None):
        self.ends, self.waited = ends, []

    def await_dirty_rate_measurement(self, limit_s: float) -> bool:
        self.waited.append(limit_s)
        if self.ends is None:
            raise HypervisorError("this libvirt reports no dirty rate")
        return self.ends


def test_the_copy_starts_once_the_measurement_has_ended_or_where_none_can_run():
    task = checking()
    ended, unsupported = Guest(ends=True), Guest(ends=None)

    assert run.measurement_over(task, ended) and run.measurement_over(task, unsupported)
    assert ended.waited == [run.MEASUREMENT_WAIT_S] == [6]
    task.refresh_from_db()
    assert not task.is_final


def test_a_measurement_that_outlasts_the_wait_fails_the_task_with_nothing_moved():
    task = checking()

    assert not run.measurement_over(task, Guest(ends=False))

    task.refresh_from_db()
    assert task.state == TaskState.FAILED
    assert task.error.startswith(f"A dirty-rate measurement of {task.vm.name} on {task.source.name} did not end within 6 s")
    assert task.error.startswith("A dirty-rate measurement of web-01 on kvm1")
    assert "Nothing moved" in task.error
