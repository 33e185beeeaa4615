"""Fixtures any unit test may ask for, besides the personas of tests/conftest.py: libvirt's
test driver standing in for the hosts and RQ for the inventory worker (tests/driver_hosts.py)."""

from tests.driver_hosts import cpus_compatible, inventory_worker, libvirt_forbidden, no_inventory_worker, no_libvirt_sync  # noqa: F401  fixtures
