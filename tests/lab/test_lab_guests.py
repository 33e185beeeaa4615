"""The lab's guests are what later tests rely on: running, heartbeating with their memory
intact, reachable on their fixed address inside the lab's network namespace."""

import subprocess
import sys
import time

import pytest

from lab.commands import virsh

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
    return [line[line.index("HB seq="):] for line in serial_log.read_text(errors="replace").splitlines() if "HB seq=" in line]


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
