"""The probes watch a real live migration, done with plain virsh, and see the guest keep running
and its TCP connection survive, with a short but visible pause."""

import time

import pytest

from lab.commands import domain_names, virsh
from lab.probes import EchoProbe, SerialWatcher

pytestmark = pytest.mark.lab

SETTLE_S = 1.0  # heartbeats and echoes flowing on either side of the switchover


def migrate(guest_name: str, source, destination) -> None:
    virsh(source.uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource", guest_name, destination.peer_uri)


def test_probes_see_the_guest_keep_running_and_its_connection_survive_a_live_migration(lab):
    guest = lab.guests[0]
    home = next(host for host in lab.hosts if host.name == guest.host)
    away = next(host for host in lab.hosts if host.name != guest.host)
    watcher = SerialWatcher(guest.serial_log).start()
    echo = EchoProbe(lab.netns, guest.ip).start()
    try:
        time.sleep(SETTLE_S)
        migrate(guest.name, home, away)
        time.sleep(SETTLE_S)
    finally:
        serial, network = watcher.stop(), echo.stop()
        # Other tests expect every guest on its home host.
        if guest.name in domain_names(away.uri):
            migrate(guest.name, away, home)
    print(f"\nserial: {serial}\necho: {network}")

    assert serial.kept_running, serial
    assert serial.missing_seqs == [], serial
    assert serial.mismatches == 0 and serial.mismatch_lines == [], serial
    assert serial.heartbeats >= 10, serial
    assert 0 < serial.longest_gap_ms < 5000, serial

    assert network.connected and network.reconnects == 0 and network.error is None, network
    assert network.intact and network.messages_echoed == network.messages_sent > 100, network
    assert 0 < network.longest_gap_ms < 5000, network
