import uuid

import factory

from inventory.choices import HostState, PowerState
from inventory.models import Cluster, Host, VirtualMachine


class ClusterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cluster

    name = factory.Sequence(lambda n: f"cluster{n}")


class HostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Host

    name = factory.Sequence(lambda n: f"host{n}")
    uri = factory.LazyAttribute(lambda h: f"qemu+tcp://{h.name}.invalid/system")
    state = HostState.CONNECTED
    cpu_count = 8
    cpu_model = "Skylake-Client"
    memory_total_bytes = 64 * 1024**3
    memory_free_bytes = 48 * 1024**3


class VirtualMachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VirtualMachine

    uuid = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"vm{n}")
    host = factory.SubFactory(HostFactory)
    power_state = PowerState.RUNNING
    vcpus = 2
    memory_bytes = 2 * 1024**3
