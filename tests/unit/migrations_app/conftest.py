import pytest
from django.utils import timezone

from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

GIB = 1024**3


@pytest.fixture
def cluster():
    """Cluster "prod": host "busy" runs app-0 and app-1 (3 and 2.5 of its 4 cores), host
    "idle" runs only "quiet". (A module that needs another cluster defines its own
    `cluster`.)"""
    cluster = ClusterFactory(name="prod")
    now = timezone.now()
    busy, idle = (HostFactory(name=name, cluster=cluster, uri="test:///default", last_seen=now, last_error="", cpu_count=4) for name in ("busy", "idle"))
    for index, cores in enumerate((3.0, 2.5)):
        VirtualMachineFactory(name=f"app-{index}", host=busy, cpu_cores_used=cores, memory_in_use_bytes=GIB)
    VirtualMachineFactory(name="quiet", host=idle, cpu_cores_used=0.1, memory_in_use_bytes=GIB)
    return cluster
