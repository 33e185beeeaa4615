"""The lab's guests are what later tests rely on: running, heartbeating with their memory
intact, reachable on their fixed address inside the lab's network namespace, each through a
tap named for the host it runs on."""

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lab import control as lab_control
from lab import guests
from lab.commands import domain_names, virsh
from lab.config import BRIDGE_NAME, LabConfig, host_index
from lab.netns import tap_devices
from lab.tap_names import tap_name, tap_names

pytestmark = pytest.mark.lab

ECHO_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], 7), timeout=10) as s:
    payload = b"vmotion-echo-check " * 100
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    sys.exit(0 if got == payload else 1)
"""


def heartbeats(serial_log) -> list[str]:
    """The guest's complete heartbeat lines: the last one may still be being written."""
    lines = serial_log.read_text(errors="replace").splitlines(keepends=True)
    return [line[line.index("HB seq="):].rstrip() for line in lines if "HB seq=" in line and line.endswith("\n")]


def test_every_guest_runs_and_its_heartbeat_advances_with_no_memory_mismatch(lab):
    for guest in lab.guests:
        assert guest.state == "running", guest
        before = len(heartbeats(guest.serial_log))
        time.sleep(0.5)
        after = heartbeats(guest.serial_log)
        assert len(after) > before, f"{guest.name} printed no heartbeat in 0.5 s"
        assert " mismatches=0 " in after[-1] + " ", after[-1]


def test_every_guest_answers_on_its_echo_service_inside_the_lab_network(lab):
    for guest in lab.guests:
        result = subprocess.run(
            ["ip", "netns", "exec", lab.netns, sys.executable, "-c", ECHO_CLIENT, guest.ip],
            capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, f"{guest.name} at {guest.ip}: {result.stderr}"


def test_each_guest_is_defined_persistently_with_its_fixed_mac(lab):
    for guest in lab.guests:
        host = next(h for h in lab.hosts if h.name == guest.host)
        xml = virsh(host.uri, "dumpxml", "--inactive", guest.name).stdout
        assert guest.mac in xml
        assert "lab-net" in xml


# Tap names -------------------------------------------------------------------------------------


def interface_taps(uri: str, guest: str) -> list[str]:
    """The tap of each of the guest's interfaces, as the host's libvirt reports it."""
    return [line.split()[0] for line in virsh(uri, "domiflist", guest).stdout.splitlines() if line.strip()]


def running_host(config: LabConfig, guest: str) -> str:
    return next(g.host for g in lab_control.status(config).guests if g.name == guest)


def migrate(config: LabConfig, guest: str, source: str, destination: str) -> None:
    virsh(
        config.management_uri(source), "migrate", "--live", "--p2p", "--persistent", "--undefinesource",
        guest, config.peer_uri(destination), timeout=120,
    )  # fmt: skip


def next_host(config: LabConfig, host: str) -> str:
    names = config.host_names()
    return names[(names.index(host) + 1) % len(names)]


def assert_every_tap_is_named_for_its_host(config: LabConfig) -> None:
    """Each running guest has one tap, named for its host and a port of the bridge, and the
    lab's namespace has no other tap (none of libvirt's own vnetN, none left behind)."""
    state = lab_control.status(config)
    expected = {}
    for guest in state.guests:
        assert guest.state == "running", guest
        name = tap_name(host_index(guest.host), guest.mac)
        assert interface_taps(config.management_uri(guest.host), guest.name) == [name], (guest.name, guest.host)
        expected[name] = BRIDGE_NAME
    assert tap_devices(config.netns) == expected


def test_each_guests_tap_is_named_for_the_host_it_runs_on(lab, lab_config):
    assert_every_tap_is_named_for_its_host(lab_config)
    assert {guest.host for guest in lab_control.status(lab_config).guests} == set(lab_config.host_names())


def test_a_migrated_guests_tap_takes_the_destinations_name_and_the_sources_goes(lab, lab_config, guests_stay_intact):
    guest = next(g for g in lab_control.status(lab_config).guests if g.name == "lab-vm1")
    source = guest.host
    destination = next_host(lab_config, source)
    source_tap, destination_tap = tap_name(host_index(source), guest.mac), tap_name(host_index(destination), guest.mac)
    assert source_tap in tap_devices(lab_config.netns)

    migrate(lab_config, guest.name, source, destination)
    try:
        assert guest.name not in domain_names(lab_config.management_uri(source), all_domains=True)
        assert interface_taps(lab_config.management_uri(destination), guest.name) == [destination_tap]
        taps = tap_devices(lab_config.netns)
        assert taps.get(destination_tap) == BRIDGE_NAME
        assert source_tap not in taps
        assert_every_tap_is_named_for_its_host(lab_config)
        # The guest's traffic goes through the new tap: it still answers on its address.
        test_every_guest_answers_on_its_echo_service_inside_the_lab_network(lab)
    finally:
        migrate(lab_config, guest.name, destination, source)
    assert interface_taps(lab_config.management_uri(source), guest.name) == [source_tap]
    assert destination_tap not in tap_devices(lab_config.netns)


def test_a_guest_started_where_a_migration_left_it_takes_that_hosts_tap_name(lab, lab_config):
    """libvirt leaves the source's definition on the destination, tap name and all; the lab
    names the taps for the host that starts the guest."""
    guest = next(g for g in lab_control.status(lab_config).guests if g.name == "lab-vm2")
    home, elsewhere = guest.host, next_host(lab_config, guest.host)
    migrate(lab_config, guest.name, home, elsewhere)
    try:
        guests.destroy_guest(lab_config, elsewhere, guest.name)
        booted_from = guests.serial_log_size(lab_config, guest.name)
        guests.start_guest(lab_config, elsewhere, guest.name)
        # Later tests watch the serial logs for a reboot: let this boot finish first.
        guests.wait_until_ready(lab_config, {guest.name: booted_from})
        expected = tap_name(host_index(elsewhere), guest.mac)
        assert interface_taps(lab_config.management_uri(elsewhere), guest.name) == [expected]
        defined = virsh(lab_config.management_uri(elsewhere), "dumpxml", "--inactive", guest.name).stdout
        assert tap_names(defined) == [expected]
        assert_every_tap_is_named_for_its_host(lab_config)
    finally:
        migrate(lab_config, guest.name, running_host(lab_config, guest.name), home)
    assert_every_tap_is_named_for_its_host(lab_config)


# Every host receives one migrating guest and starts one guest again, all at once: with names
# each libvirtd generated (vnet0, vnet1, ...), two daemons could create the same tap.
MOVED = ["lab-vm1", "lab-vm2", "lab-vm3"]  # one from each host, to the next host
STARTED_AGAIN = ["lab-vm5", "lab-vm6", "lab-vm7"]  # one on each host
STRESS_ROUNDS = 4


def test_guests_moved_and_started_at_once_on_every_host_all_get_their_hosts_taps(lab, lab_config, home_hosts):
    booted_from = {}
    for round_number in range(1, STRESS_ROUNDS + 1):
        where = {guest.name: guest.host for guest in lab_control.status(lab_config).guests}
        assert len({where[name] for name in MOVED}) == len({where[name] for name in STARTED_AGAIN}) == 3, where
        for name in STARTED_AGAIN:
            guests.destroy_guest(lab_config, where[name], name)
            booted_from[name] = guests.serial_log_size(lab_config, name)
        with ThreadPoolExecutor(max_workers=len(MOVED) + len(STARTED_AGAIN)) as pool:
            started = [pool.submit(guests.start_guest, lab_config, where[name], name) for name in STARTED_AGAIN]
            moved = [pool.submit(migrate, lab_config, name, where[name], next_host(lab_config, where[name])) for name in MOVED]
            for done in started + moved:
                done.result()  # a LabError carries virsh's message ("Unable to create tap device ...")
        now = {guest.name: guest.host for guest in lab_control.status(lab_config).guests}
        assert [now[name] for name in MOVED] == [next_host(lab_config, where[name]) for name in MOVED], round_number
        assert_every_tap_is_named_for_its_host(lab_config)
    # Later tests watch the serial logs for a reboot: let the last boots finish first.
    guests.wait_until_ready(lab_config, booted_from)
