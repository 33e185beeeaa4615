"""libvirt's refusals to connect or to migrate, as sentences an operator can act on. The
messages are libvirt 11.3's own, as the lab's SSH and TLS hosts produced them."""

import re

import pytest

from hypervisor.errors import connection_failure, migration_failure
from hypervisor.migration import MigrationRequest, _flags

SSH = "qemu+ssh://root@10.78.1.2/system?keyfile=/etc/vmotion/id_ed25519"
TLS = "qemu+tls://10.78.1.2/system?pkipath=/etc/vmotion/pki"
VIR_MIGRATE_TLS = 1 << 16  # libvirt's value: only the hypervisor package imports libvirt


@pytest.mark.parametrize(
    ("uri", "libvirt_says", "sentence"),
    [
        (
            SSH,
            "Cannot recv data: root@10.78.1.2: Permission denied (publickey).: Connection reset by peer",
            "10.78.1.2 refused the key /etc/vmotion/id_ed25519 for root: add its public key to root's ~/.ssh/authorized_keys on 10.78.1.2, or name the right key with keyfile= in the URI.",
        ),
        (
            SSH,
            "Cannot recv data: No ED25519 host key is known for 10.78.1.2 and you have requested strict checking.\r\nHost key verification failed.: Connection reset by peer",
            "10.78.1.2's SSH host key is not in the known_hosts file vmotion's ssh reads, so vmotion does not trust it:",
        ),
        (
            SSH,
            "Cannot recv data: @@@@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.: Connection reset by peer",
            "10.78.1.2's SSH host key is not the one known_hosts holds for it: vmotion does not connect, as the host may be an impostor.",
        ),
        (
            SSH,
            "Cannot recv data: ssh: connect to host 10.78.1.2 port 22: Connection refused: Connection reset by peer",
            "Nothing answers libvirt's SSH connection on 10.78.1.2: check that the host is up and its sshd listens.",
        ),
        (
            TLS,
            "authentication failed: Failed to verify peer's certificate",
            "10.78.1.2's TLS certificate failed vmotion's check: either it is not signed by the CA vmotion trusts (cacert.pem in /etc/vmotion/pki), or it does not name 10.78.1.2",
        ),
        (
            TLS,
            "Our own certificate /etc/vmotion/pki/clientcert.pem failed validation against /etc/vmotion/pki/cacert.pem: The certificate hasn't got a known issuer.",
            "vmotion's own TLS client certificate (clientcert.pem in /etc/vmotion/pki) is not signed by the CA in cacert.pem beside it",
        ),
        (
            TLS,
            "Cannot read CA certificate '/etc/vmotion/pki/cacert.pem': No such file or directory",
            "vmotion's TLS files for 10.78.1.2 are missing or unreadable: libvirt needs cacert.pem, clientcert.pem and clientkey.pem in /etc/vmotion/pki.",
        ),
        (
            "qemu://10.78.1.2/system",
            "Cannot read CA certificate '/etc/pki/CA/cacert.pem': No such file or directory",
            "libvirt needs cacert.pem, clientcert.pem and clientkey.pem in /etc/pki/CA and /etc/pki/libvirt.",
        ),
        (
            TLS,
            "unable to connect to server at '10.78.1.2:16514': Connection refused",
            "Nothing answers libvirt's TLS connection on 10.78.1.2: check that the host is up and its libvirtd (listen_tls = 1, port 16514) listens.",
        ),
    ],
)
def test_a_refused_connection_says_what_to_fix_then_what_libvirt_said(uri, libvirt_says, sentence):
    message = connection_failure(uri, libvirt_says)

    assert sentence in message
    # libvirt's words follow on one line, without ssh's frame of @ signs.
    assert message.endswith(f"(libvirt: {' '.join(re.sub('@{3,}', ' ', libvirt_says).split())})")
    assert "@@@" not in message


def test_a_message_libvirt_already_words_well_passes_unchanged():
    uri = "qemu+unix:///system?socket=/run/h1/libvirt-sock"
    said = "Failed to connect socket to '/run/h1/libvirt-sock': No such file or directory"

    assert connection_failure(uri, said) == said


def test_a_password_in_the_uri_is_never_shown():
    uri = "qemu+ssh://root:hunter2@h1/system"

    message = connection_failure(uri, f"Cannot recv data: {uri}: Permission denied (publickey).: Connection reset by peer")

    assert "hunter2" not in message and "root:********@h1" in message


def test_missing_migration_certificates_name_the_file_and_the_setting():
    said = (
        "internal error: unable to execute QEMU command 'object-add': Unable to access credentials "
        "/var/lib/lab/hosts/h3/pki/qemu/ca-cert.pem: No such file or directory"
    )

    message = migration_failure(said)

    assert message.startswith("A host's QEMU lacks its migration certificates (/var/lib/lab/hosts/h3/pki/qemu/ca-cert.pem is missing)")
    assert "in /var/lib/lab/hosts/h3/pki/qemu, the migrate_tls_x509_cert_dir of its qemu.conf" in message
    assert migration_failure("operation aborted: migration out job: canceled by client") == "operation aborted: migration out job: canceled by client"


def test_a_migration_stream_that_cannot_connect_says_the_link_is_down_or_nothing_listens():
    timed_out = migration_failure("unable to connect to server at '10.0.9.2:49152': Connection timed out")
    refused = migration_failure("unable to connect to server at '10.0.9.2:49152': Connection refused")

    assert timed_out.startswith("The source host could not open the migration stream to 10.0.9.2:49152 (connection timed out): the migration link is down")
    assert timed_out.endswith("(libvirt: unable to connect to server at '10.0.9.2:49152': Connection timed out)")
    assert "nothing listens there" in refused and "link is down" not in refused


def test_only_an_encrypted_request_asks_libvirt_for_tls():
    assert _flags(MigrationRequest(uuid="u", destination_uri="qemu+tcp://h2/system", tls=True)) & VIR_MIGRATE_TLS
    assert not _flags(MigrationRequest(uuid="u", destination_uri="qemu+tcp://h2/system")) & VIR_MIGRATE_TLS
