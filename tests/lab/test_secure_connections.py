"""The connection paths real deployments use, in the lab: a host registered by a
`qemu+ssh://` or a `qemu+tls://` URI is read and takes part in live migrations from the root
namespace, where the web server and the workers run; a wrong key, an unknown host key or a
certificate from another CA is refused with a sentence that says what to fix, on the host
and as the refusal of a migration. virsh, over each host's own socket, says where VMs run."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from inventory import sync
from inventory.choices import HostState, PowerState
from inventory.models import Host, VirtualMachine
from lab.commands import domain_names
from migrations_app import services
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests.lab.conftest import wait_for_state

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]


@pytest.fixture(autouse=True)
def keys_of_this_test_are_trusted(settings, tmp_path):
    """The wrong keys, known_hosts and ssh commands below live in tmp_path: a directory the URI
    rule trusts for these tests, so that libvirt and ssh, not the rule, refuse them."""
    settings.LIBVIRT_URI_DIRECTORIES = [*settings.LIBVIRT_URI_DIRECTORIES, str(tmp_path)]


def lab_host(lab, name: str):
    return next(host for host in lab.hosts if host.name == name)


def register_by(lab, name: str, uri: str) -> Host:
    """The lab host `name`, reached by `uri` from now on, and read once through it."""
    host = Host.objects.get(name=name)
    host.uri = uri
    host.save(update_fields=["uri"])
    sync.sync_host(host)
    host.refresh_from_db()
    return host


def runs_on(lab, vm_name: str) -> list[str]:
    """Where virsh finds the VM running, asking each host over its own unix socket."""
    return [host.name for host in lab.hosts if vm_name in domain_names(host.uri)]


def inventory_shows(vm_name: str, host_name: str, timeout: float = 30) -> None:
    """Wait for the worker's sync after the migration (the task ends first) to place the VM."""
    deadline = time.monotonic() + timeout
    while (found := VirtualMachine.objects.filter(name=vm_name, host__name=host_name, power_state=PowerState.RUNNING).exists()) is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"the inventory does not show {vm_name} running on {host_name}: {Host.objects.get(name=host_name).last_error}")
        time.sleep(0.2)
    assert found


def migrate(vm_name: str, destination: str) -> MigrationTask:
    vm = VirtualMachine.objects.get(name=vm_name)
    task = services.submit_migration(vm, Host.objects.get(name=destination), services.MigrationOptions())
    return wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED], timeout=120)


@pytest.mark.parametrize(("transport", "host_name"), [("ssh", "lab-host2"), ("tls", "lab-host3")])
def test_a_host_reached_over_ssh_or_tls_is_read_and_takes_and_gives_back_a_vm(lab, workers, home_hosts, transport, host_name):
    remote = lab_host(lab, host_name)
    host = register_by(lab, host_name, remote.ssh_uri if transport == "ssh" else remote.tls_uri)
    expected = f"qemu+ssh://root@{remote.address}/system?keyfile=" if transport == "ssh" else f"qemu+tls://{remote.address}/system?pkipath="
    assert host.uri.startswith(expected)
    assert (host.state, host.last_error) == (HostState.CONNECTED, "")
    assert set(host.vms.values_list("name", flat=True)) == domain_names(remote.uri)

    there = migrate("lab-vm1", host_name)
    assert there.state == TaskState.SUCCEEDED, there.error
    assert runs_on(lab, "lab-vm1") == [host_name]
    inventory_shows("lab-vm1", host_name)

    back = migrate("lab-vm1", "lab-host1")
    assert back.state == TaskState.SUCCEEDED, back.error
    assert runs_on(lab, "lab-vm1") == ["lab-host1"]


def test_a_key_the_host_does_not_accept_is_refused_with_what_to_fix(lab, lab_config, lab_inventory, tmp_path):
    wrong_key = _ssh_key(tmp_path / "not-authorised")
    uri = lab_host(lab, "lab-host2").ssh_uri.replace(f"keyfile={lab_config.ssh_key}", f"keyfile={wrong_key}")
    assert str(wrong_key) in uri

    _assert_refused(lab, "lab-host2", uri, f"{_address(lab, 'lab-host2')} refused the key {wrong_key} for root: add its public key to root's ~/.ssh/authorized_keys")


def test_a_host_key_missing_from_known_hosts_is_refused(lab, lab_inventory, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")  # this control plane has never met the host
    ssh = _ssh_command(tmp_path, known_hosts)
    uri = lab_host(lab, "lab-host2").ssh_uri.rsplit("&command=", 1)[0] + f"&command={ssh}"

    _assert_refused(lab, "lab-host2", uri, f"{_address(lab, 'lab-host2')}'s SSH host key is not in the known_hosts file vmotion's ssh reads")


def test_a_host_key_that_changed_is_refused(lab, lab_inventory, tmp_path):
    impostor = _ssh_key(tmp_path / "impostor")
    key_type, key, *_ = Path(f"{impostor}.pub").read_text().split()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{_address(lab, 'lab-host2')} {key_type} {key}\n")
    uri = lab_host(lab, "lab-host2").ssh_uri.rsplit("&command=", 1)[0] + f"&command={_ssh_command(tmp_path, known_hosts)}"

    _assert_refused(lab, "lab-host2", uri, f"{_address(lab, 'lab-host2')}'s SSH host key is not the one known_hosts holds for it: vmotion does not connect")


def test_a_certificate_from_another_ca_is_refused(lab, lab_inventory, tmp_path):
    pki = _foreign_pki(tmp_path / "pki")
    uri = f"qemu+tls://{_address(lab, 'lab-host3')}/system?pkipath={pki}"

    _assert_refused(lab, "lab-host3", uri, f"{_address(lab, 'lab-host3')}'s TLS certificate failed vmotion's check: either it is not signed by the CA vmotion trusts (cacert.pem in {pki})")


def _assert_refused(lab, host_name: str, uri: str, sentence: str) -> None:
    """The host's sync fails with `sentence`, and a migration to it is refused with it."""
    host = register_by(lab, host_name, uri)
    assert host.state == HostState.DISCONNECTED
    assert sentence in host.last_error, host.last_error
    assert "(libvirt: " in host.last_error  # libvirt's own words follow, for whoever digs further
    vm = VirtualMachine.objects.get(name="lab-vm1")
    with pytest.raises(services.MigrationRequestError) as refusal:
        services.submit_migration(vm, host, services.MigrationOptions())
    assert f"The destination host {host_name} is not reachable through libvirt: {sentence}" in str(refusal.value)
    assert runs_on(lab, "lab-vm1") == ["lab-host1"]


def _address(lab, host_name: str) -> str:
    return lab_host(lab, host_name).address


def _ssh_key(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, capture_output=True)
    return path


def _ssh_command(directory: Path, known_hosts: Path) -> Path:
    """An ssh for libvirt's command= that trusts only `known_hosts`, as the lab's does its own."""
    config = directory / "ssh_config"
    config.write_text(f"UserKnownHostsFile {known_hosts}\nGlobalKnownHostsFile /dev/null\nStrictHostKeyChecking yes\nBatchMode yes\nIdentitiesOnly yes\n")
    command = directory / "ssh"
    command.write_text(f'#!/bin/sh\nexec ssh -F {config} "$@"\n')
    command.chmod(0o755)
    return command


def _foreign_pki(pki: Path) -> Path:
    """A pkipath whose CA and client certificate come from a CA the lab's hosts never heard of."""
    pki.mkdir()

    def certtool(*args: str, template: str = "") -> None:
        info = pki / "template.info"
        info.write_text(template)
        subprocess.run(["certtool", *args, "--template", str(info)] if template else ["certtool", *args], check=True, capture_output=True)

    certtool("--generate-privkey", "--outfile", str(pki / "ca-key.pem"))
    certtool("--generate-self-signed", "--load-privkey", str(pki / "ca-key.pem"), "--outfile", str(pki / "cacert.pem"), template="cn = another CA\nca\ncert_signing_key\n")
    certtool("--generate-privkey", "--outfile", str(pki / "clientkey.pem"))
    certtool(
        "--generate-certificate", "--load-privkey", str(pki / "clientkey.pem"), "--load-ca-certificate", str(pki / "cacert.pem"),
        "--load-ca-privkey", str(pki / "ca-key.pem"), "--outfile", str(pki / "clientcert.pem"),
        template="cn = someone else\ntls_www_client\nsigning_key\nencryption_key\n",
    )
    return pki
