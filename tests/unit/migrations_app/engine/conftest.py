import pytest

from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests.factories import HostFactory, VirtualMachineFactory


@pytest.fixture(name="task")
def migrating_task(db) -> MigrationTask:
    """web-1 on its way from kvm-a to kvm-b, its worker copying memory. (A test module may
    define its own `task`.)"""
    vm = VirtualMachineFactory(name="web-1", host=HostFactory(name="kvm-a"))
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm-b"))
    task.claim("here:1", "claimed")
    task.transition(TaskState.MIGRATING)
    return task
