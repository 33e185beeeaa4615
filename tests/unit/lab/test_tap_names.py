"""The lab's per-host tap names and the qemu hook that gives them to an incoming guest."""

import subprocess
import sys
from pathlib import Path

import pytest

from lab import tap_names
from lab.tap_names import hook_script, tap_name, tap_names as names_in, with_host_taps

GUEST = """<domain type='qemu'>
  <name>lab-vm1</name>
  <devices>
    <disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>
    <interface type='network'>
      <mac address='52:54:00:77:00:0b'/>
      <source network='lab-net'/>
      <target dev='lab1-77000b'/>
      <model type='virtio'/>
    </interface>
    <interface type='bridge'>
      <mac address='52:54:00:77:01:0B'/>
      <source bridge='vmbr0'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:77:02:0b'/>
    </interface>
    <serial type='file'><target port='0'/></serial>
  </devices>
</domain>
"""


def test_a_tap_is_named_for_its_host_and_the_end_of_its_mac():
    assert tap_name(1, "52:54:00:77:00:0b") == "lab1-77000b"
    assert tap_name(200, "52:54:00:77:00:FA") == "lab200-7700fa"  # the lab's largest: 13 characters


def test_the_same_nic_on_two_hosts_or_two_nics_on_one_never_share_a_name():
    assert tap_name(1, "52:54:00:77:00:0b") != tap_name(2, "52:54:00:77:00:0b")
    assert tap_name(1, "52:54:00:77:00:0b") != tap_name(1, "52:54:00:77:00:0c")
    # Host 1 and host 12 must not meet where a MAC's digits would run on from the number.
    assert tap_name(1, "52:54:00:27:70:00") != tap_name(12, "52:54:00:77:00:00")


def test_no_name_takes_a_prefix_libvirt_keeps_for_itself():
    assert not tap_name(3, "52:54:00:77:00:0b").startswith(("vnet", "vif", "macvtap", "macvlan"))


def test_a_name_longer_than_the_kernel_allows_is_refused():
    with pytest.raises(ValueError):
        tap_name(10**9, "52:54:00:77:00:0b")


def test_every_tap_interface_is_renamed_or_named_for_the_host_and_nothing_else_changes():
    renamed = with_host_taps(GUEST, 2)
    assert names_in(renamed) == ["lab2-77000b", "lab2-77010b"]
    assert names_in(GUEST) == ["lab1-77000b", ""]
    # The disk's and the serial port's targets, and the user-mode NIC, are left as they were.
    assert "dev=\"vda\"" in renamed and "<target port=\"0\"/>" in renamed
    assert renamed.count("<interface") == 3 and "lab2-77020b" not in renamed
    assert with_host_taps(renamed, 2) == renamed


def test_the_hook_gives_an_incoming_guest_the_hosts_names_and_answers_nothing_to_other_calls(tmp_path):
    hook = tmp_path / "qemu"
    hook.write_text(hook_script(3, sys.executable, str(Path(tap_names.__file__))))
    hook.chmod(0o755)

    def call(*args: str) -> str:
        result = subprocess.run([str(hook), "lab-vm1", *args], input=GUEST, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert names_in(call("migrate", "begin", "-")) == ["lab3-77000b", "lab3-77010b"]
    for operation in ("prepare", "start", "started", "stopped", "release", "reconnect"):
        assert call(operation, "begin", "-") == ""
