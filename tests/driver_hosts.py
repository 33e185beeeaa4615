"""For unit tests of the migration service on hosts of libvirt's test driver: the one guest
the driver defines, and fixtures that leave to the lab what only real guests can show
(libvirt's CPU comparison, and a host's inventory read, which would replace the tests' VMs
with the driver's own guest)."""

import pytest
from django.utils import timezone

from migrations_app.check_rules import ok
from tests.factories import HostFactory

TEST_GUEST_UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # the guest libvirt's test driver defines


@pytest.fixture
def cpus_compatible(monkeypatch):
    monkeypatch.setattr("migrations_app.checks.check_cpu_compatible", lambda vm, source, destination: ok("cpu_compatible", "compatible"))


@pytest.fixture
def no_libvirt_sync(monkeypatch):
    """The inventory stays as each test sets it."""
    monkeypatch.setattr("migrations_app.maintenance.sync.sync_host", lambda host: None)


def driver_host(name: str, **fields):
    """A host that answers, as libvirt's test driver, and was read a moment ago."""
    return HostFactory(name=name, uri="test:///default", last_seen=timezone.now(), last_error="", **fields)
