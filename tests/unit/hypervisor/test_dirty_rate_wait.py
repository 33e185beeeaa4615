"""No migration starts while a dirty-rate measurement runs in the guest's QEMU: QEMU 10.0 can
deadlock when that measurement's thread exits during a migration's completion."""

import libvirt

from hypervisor.guest import Guest


class _Statuses:
    """A libvirt connection whose guest reports the given measurement statuses in turn."""

    def __init__(self, statuses):
        self.statuses = list(statuses)

    def lookupByUUIDString(self, uuid):
        return object()

    def domainListGetStats(self, doms, stats):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return [(doms[0], {} if status is None else {"dirtyrate.calc_status": status})]


class _Connection:
    def __init__(self, conn):
        self.conn = conn

    def call(self, work, what, extra_seconds=0):
        return work(self.conn)


MEASURING, MEASURED = libvirt.VIR_DOMAIN_DIRTYRATE_MEASURING, libvirt.VIR_DOMAIN_DIRTYRATE_MEASURED


def test_a_measurement_under_way_is_waited_for():
    waited = Guest(_Connection(_Statuses([MEASURING, MEASURING, MEASURED])), "u").dirty_rate_measurement_ended(5)

    assert 0.15 <= waited < 1


def test_none_under_way_costs_no_wait():
    assert Guest(_Connection(_Statuses([MEASURED])), "u").dirty_rate_measurement_ended(5) < 0.05
    assert Guest(_Connection(_Statuses([None])), "u").dirty_rate_measurement_ended(5) < 0.05


def test_the_wait_is_bounded():
    waited = Guest(_Connection(_Statuses([MEASURING])), "u").dirty_rate_measurement_ended(0.5)

    assert 0.5 <= waited < 1
