"""Encrypted migration in the lab: lab-host1 and lab-host2 have migration certificates,
lab-host3 has none. QEMU itself, asked during the migration, says whether the stream runs
over TLS (its migration parameter tls-creds names the credentials libvirt gave it)."""

from __future__ import annotations

import json
import time

import pytest

from inventory.choices import MigrationEncryption
from inventory.models import Cluster, Host, VirtualMachine
from lab.commands import virsh
from lab.config import migration_address
from migrations_app import services
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask
from tests.api import token_client
from inventory import sync
from tests.lab.conftest import at_full_speed, timeline, wait_for_state, where_runs
from tests.lab.nbd_options import NbdOptions
from tests.lab.test_storage_moves import disk_guest, guest_visible_digest  # noqa: F401  disk_guest: a fixture

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]

# Slow enough that QEMU can be asked about the stream while it flows; once asked, the test
# lifts the cap.
BANDWIDTH_MIB_S = 8


def require_encryption(mode: MigrationEncryption) -> None:
    Cluster.objects.filter(name="lab").update(migration_encryption=mode)


def submit(vm_name: str, destination: str) -> MigrationTask:
    vm = VirtualMachine.objects.get(name=vm_name)
    return services.submit_migration(vm, Host.objects.get(name=destination), services.MigrationOptions(bandwidth_mib_s=BANDWIDTH_MIB_S))


def stream_parameters(lab, host_name: str, vm_name: str, timeout: float = 60) -> dict:
    """QEMU's migration parameters on the source, read while its outgoing migration is active."""
    uri = next(host.uri for host in lab.hosts if host.name == host_name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _qmp(uri, vm_name, "query-migrate")
        if status.get("status") == "active":
            return _qmp(uri, vm_name, "query-migrate-parameters")
        time.sleep(0.1)
    raise AssertionError(f"{vm_name}'s migration never showed as active on {host_name}")


def _qmp(uri: str, vm_name: str, command: str) -> dict:
    result = virsh(uri, "qemu-monitor-command", vm_name, json.dumps({"execute": command}), check=False)
    return json.loads(result.stdout)["return"] if result.returncode == 0 else {}


def test_required_encryption_moves_the_vm_over_tls_between_hosts_with_certificates(lab, workers, home_hosts):
    require_encryption(MigrationEncryption.REQUIRED)

    task = submit("lab-vm7", "lab-host2")
    parameters = stream_parameters(lab, "lab-host1", "lab-vm7")
    at_full_speed(task)
    task = wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED], timeout=180)

    assert task.state == TaskState.SUCCEEDED, task.error
    # The sending QEMU checked the receiving one's certificate against its migration address.
    assert parameters["tls-creds"] and parameters["tls-hostname"] == migration_address("lab-host2"), parameters
    assert task.encrypted is True
    assert "The memory stream is encrypted with TLS (cluster lab: required)." in [event.message for event in task.events.all()]
    assert where_runs("lab-vm7") == ["lab-host2"]


def test_when_available_a_move_to_a_host_without_certificates_goes_unencrypted_and_says_so(lab, workers, home_hosts):
    require_encryption(MigrationEncryption.AVAILABLE)

    task = submit("lab-vm7", "lab-host3")
    parameters = stream_parameters(lab, "lab-host1", "lab-vm7")
    at_full_speed(task)
    task = wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED], timeout=180)

    assert task.state == TaskState.SUCCEEDED, task.error
    assert parameters["tls-creds"] == "", parameters
    assert task.encrypted is False
    messages = [event.message for event in task.events.all()]
    assert "The memory stream is not encrypted: lab-host3 has no migration certificates (cluster lab encrypts when available)." in messages
    assert where_runs("lab-vm7") == ["lab-host3"]


def test_a_new_cluster_encrypts_between_hosts_with_certificates_and_says_so_when_one_has_none(lab, workers, home_hosts, viewer):
    fresh = Cluster.objects.create(name="fresh")  # the product's default, nothing set
    Host.objects.filter(cluster__name="lab").update(cluster=fresh)
    api = token_client(viewer)

    encrypted = submit("lab-vm7", "lab-host2")
    parameters = stream_parameters(lab, "lab-host1", "lab-vm7")
    at_full_speed(encrypted)
    encrypted = wait_for_state(encrypted, [TaskState.SUCCEEDED, TaskState.FAILED], timeout=180)
    plain = submit("lab-vm7", "lab-host3")
    plain_parameters = stream_parameters(lab, "lab-host2", "lab-vm7")
    at_full_speed(plain)
    plain = wait_for_state(plain, [TaskState.SUCCEEDED, TaskState.FAILED], timeout=180)

    assert fresh.migration_encryption == MigrationEncryption.AVAILABLE
    assert (encrypted.state, plain.state) == (TaskState.SUCCEEDED, TaskState.SUCCEEDED), (encrypted.error, plain.error)
    assert parameters["tls-creds"] and plain_parameters["tls-creds"] == "", (parameters, plain_parameters)
    assert "The memory stream is encrypted with TLS (cluster fresh: when available)." in [event.message for event in encrypted.events.all()]
    assert "The memory stream is not encrypted: lab-host3 has no migration certificates (cluster fresh encrypts when available)." in [
        event.message for event in plain.events.all()
    ]
    assert [api.get(f"/api/v1/tasks/{task.pk}/").json()["encrypted"] for task in (encrypted, plain)] == [True, False]
    assert where_runs("lab-vm7") == ["lab-host3"]


def test_required_encryption_refuses_a_host_without_certificates_and_says_which(lab, lab_inventory):
    require_encryption(MigrationEncryption.REQUIRED)

    with pytest.raises(services.MigrationRequestError) as refusal:
        submit("lab-vm7", "lab-host3")

    assert (
        "Cluster lab requires encrypted migration, but the destination lab-host3 has no migration certificates: "
        "install them (migrate_tls_x509_cert_dir in qemu.conf) and mark the host as having them"
    ) in str(refusal.value)
    assert not MigrationTask.objects.exists()
    assert where_runs("lab-vm7") == ["lab-host1"]


def test_a_host_wrongly_declared_to_have_certificates_fails_with_libvirts_refusal_explained(lab, workers, home_hosts):
    require_encryption(MigrationEncryption.REQUIRED)
    Host.objects.filter(name="lab-host3").update(migration_tls=True)  # its qemu.conf names an empty directory

    task = wait_for_state(submit("lab-vm7", "lab-host3"), [TaskState.SUCCEEDED, TaskState.FAILED], timeout=120)

    assert task.state == TaskState.FAILED
    assert "A host's QEMU lacks its migration certificates" in task.error and "lab-host3/pki/qemu/ca-cert.pem is missing" in task.error, task.error
    assert task.encrypted is True  # what was asked of libvirt, which refused
    assert where_runs("lab-vm7") == ["lab-host1"]


@pytest.mark.parametrize("mode, encrypted", [(MigrationEncryption.REQUIRED, True), (MigrationEncryption.OFF, False)], ids=["required", "off"])
def test_encryption_covers_the_disk_copy_too(lab, lab_config, workers, disk_guest, tmp_path, mode, encrypted):
    """A guest whose disk goes with it (lab-disk: 64 MiB of random bytes) to lab-host2's own
    datastore: libvirt mirrors the disk over NBD. Read off the wire, the source QEMU's NBD
    client asks the destination's server for TLS before any of the disk moves when the
    memory stream is encrypted, and does not when it is not."""
    require_encryption(mode)
    content = guest_visible_digest(disk_guest, tmp_path)
    for host in Host.objects.all():
        sync.sync_host(host)
    vm = VirtualMachine.objects.get(name="lab-disk")
    destination = Host.objects.get(name="lab-host2")
    local = services.find_datastore("lab-local", destination)

    with NbdOptions(lab.netns) as nbd:
        task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=BANDWIDTH_MIB_S), disks=local)
        task = wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED], timeout=180)

    assert task.state == TaskState.SUCCEEDED and task.encrypted is encrypted, timeline(task)
    assert nbd.options and nbd.asked_for_tls is encrypted, nbd.options
    copy = lab_config.local_datastore_dir("lab-host2") / disk_guest.name
    assert where_runs("lab-disk") == ["lab-host2"] and not disk_guest.exists()
    assert guest_visible_digest(copy, tmp_path) == content
