"""The encryption pre-flight check and the engine's decision: whether a migration's memory
stream goes over TLS, for each cluster setting and each host's migration certificates."""

import pytest
from django.utils import timezone

from inventory.choices import MigrationEncryption
from migrations_app.placement import store as assistant
from migrations_app.engine import run as engine
from migrations_app.checks.report import CheckStatus
from migrations_app.checks.rules import HostTls, encrypts, encryption, stream_note
from migrations_app.checks.store import check_encryption, encryption_setting
from migrations_app.models import MigrationTask
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

OFF, AVAILABLE, REQUIRED = MigrationEncryption.OFF, MigrationEncryption.AVAILABLE, MigrationEncryption.REQUIRED


def ends(source_has: bool, destination_has: bool) -> tuple[HostTls, HostTls]:
    return HostTls("h1", "source", source_has), HostTls("h3", "destination", destination_has)


@pytest.mark.parametrize(
    ("mode", "source_has", "destination_has", "status", "encrypted"),
    [
        (OFF, True, True, CheckStatus.OK, False),
        (OFF, False, False, CheckStatus.OK, False),
        (AVAILABLE, True, True, CheckStatus.OK, True),
        (AVAILABLE, True, False, CheckStatus.WARNING, False),
        (AVAILABLE, False, True, CheckStatus.WARNING, False),
        (AVAILABLE, False, False, CheckStatus.WARNING, False),
        (REQUIRED, True, True, CheckStatus.OK, True),
        (REQUIRED, True, False, CheckStatus.FAIL, False),
        (REQUIRED, False, True, CheckStatus.FAIL, False),
        (REQUIRED, False, False, CheckStatus.FAIL, False),
    ],
)
def test_each_setting_and_pair_of_hosts_gets_its_verdict_and_its_stream(mode, source_has, destination_has, status, encrypted):
    result = encryption(mode, "cluster prod", *ends(source_has, destination_has))

    assert (result.name, result.status) == ("encryption", status)
    assert encrypts(mode, *ends(source_has, destination_has)) is encrypted


@pytest.mark.parametrize(
    ("mode", "source_has", "destination_has", "message"),
    [
        (OFF, True, True, "Migration encryption is off in cluster prod: the memory stream goes unencrypted."),
        (AVAILABLE, True, True, "Both hosts have migration certificates: the memory stream will be encrypted with TLS (cluster prod: when available)."),
        (AVAILABLE, True, False, "The destination h3 has no migration certificates: the memory stream will go unencrypted (cluster prod encrypts when available)."),
        (REQUIRED, True, True, "Both hosts have migration certificates: the memory stream will be encrypted with TLS (cluster prod: required)."),
        (
            REQUIRED, True, False,
            "Cluster prod requires encrypted migration, but the destination h3 has no migration certificates: install them "
            "(migrate_tls_x509_cert_dir in qemu.conf) and mark the host as having them, or set the cluster's migration "
            'encryption to "when available".',
        ),
        (
            REQUIRED, False, False,
            "Cluster prod requires encrypted migration, but the source h1 and the destination h3 have no migration certificates: "
            "install them (migrate_tls_x509_cert_dir in qemu.conf) and mark the host as having them, or set the cluster's "
            'migration encryption to "when available".',
        ),
    ],
)
def test_the_sentence_says_what_is_missing_and_where(mode, source_has, destination_has, message):
    assert encryption(mode, "cluster prod", *ends(source_has, destination_has)).message == message


@pytest.mark.parametrize(
    ("mode", "source_has", "destination_has", "note"),
    [
        (OFF, True, True, "The memory stream is not encrypted: migration encryption is off in cluster prod."),
        (AVAILABLE, True, False, "The memory stream is not encrypted: h3 has no migration certificates (cluster prod encrypts when available)."),
        (AVAILABLE, True, True, "The memory stream is encrypted with TLS (cluster prod: when available)."),
        (REQUIRED, True, True, "The memory stream is encrypted with TLS (cluster prod: required)."),
    ],
)
def test_the_timeline_says_whether_the_stream_is_encrypted(mode, source_has, destination_has, note):
    assert stream_note(mode, "cluster prod", *ends(source_has, destination_has)) == note


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("source_mode", "destination_mode", "applies"),
    [
        (OFF, OFF, (OFF, "cluster a")),
        (OFF, REQUIRED, (REQUIRED, "cluster b")),
        (AVAILABLE, OFF, (AVAILABLE, "cluster a")),
        (REQUIRED, AVAILABLE, (REQUIRED, "cluster a")),
    ],
)
def test_between_two_clusters_the_stricter_setting_applies(source_mode, destination_mode, applies):
    source = HostFactory(cluster=ClusterFactory(name="a", migration_encryption=source_mode))
    destination = HostFactory(cluster=ClusterFactory(name="b", migration_encryption=destination_mode))

    assert encryption_setting(source, destination) == applies


@pytest.mark.django_db
def test_hosts_outside_any_cluster_migrate_unencrypted():
    assert encryption_setting(HostFactory(), HostFactory()) == (OFF, "hosts outside any cluster")


@pytest.mark.django_db
def test_the_check_reads_the_hosts_declared_certificates():
    cluster = ClusterFactory(name="prod", migration_encryption=REQUIRED)
    source = HostFactory(name="h1", cluster=cluster, migration_tls=True)
    destination = HostFactory(name="h3", cluster=cluster, migration_tls=False)

    refused = check_encryption(source, destination)
    destination.migration_tls = True

    assert refused.status == CheckStatus.FAIL and "the destination h3 has no migration certificates" in refused.message
    assert check_encryption(source, destination).status == CheckStatus.OK


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "encrypted", "note"), [(AVAILABLE, True, "encrypted with TLS"), (OFF, False, "not encrypted")])
def test_the_engine_records_its_decision_on_the_task_and_its_timeline(mode, encrypted, note):
    cluster = ClusterFactory(name="prod", migration_encryption=mode)
    vm = VirtualMachineFactory(host=HostFactory(cluster=cluster, migration_tls=True))
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(cluster=cluster, migration_tls=True))

    assert engine._decide_encryption(task) is encrypted

    task.refresh_from_db()
    assert task.encrypted is encrypted
    assert note in task.events.latest("at").message


@pytest.mark.django_db
@pytest.mark.parametrize(("mode", "h3_blocked"), [(REQUIRED, True), (AVAILABLE, False), (OFF, False)])
def test_the_assistant_blocks_a_host_without_certificates_only_where_encryption_is_required(mode, h3_blocked):
    cluster = ClusterFactory(name="prod", migration_encryption=mode)
    seen = timezone.now()
    vm = VirtualMachineFactory(host=HostFactory(name="h1", cluster=cluster, migration_tls=True, last_seen=seen))
    HostFactory(name="h2", cluster=cluster, migration_tls=True, last_seen=seen)
    HostFactory(name="h3", cluster=cluster, migration_tls=False, last_seen=seen)

    ranking = {placement.host.name: placement for placement in assistant.recommend(vm)}

    assert ranking["h2"].eligible
    assert ranking["h3"].eligible is not h3_blocked
    if h3_blocked:
        assert ranking["h3"].blocked_by.name == "encryption"
        assert "the destination h3 has no migration certificates" in ranking["h3"].blocked_by.message
