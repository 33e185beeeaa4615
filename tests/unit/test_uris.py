"""A libvirt URI shown to people keeps its shape and loses its secrets."""

import pytest

from hypervisor.uris import redact, redact_text


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("qemu+ssh://root@host1/system", "qemu+ssh://root@host1/system"),
        ("qemu:///system", "qemu:///system"),
        ("qemu+ssh://root:hunter2@host1:2222/system?keyfile=/root/.ssh/id", "qemu+ssh://root:********@host1:2222/system?keyfile=/root/.ssh/id"),
        ("qemu+tls://host2/system?pkipath=/etc/pki/vmotion&password=s3cret", "qemu+tls://host2/system?pkipath=/etc/pki/vmotion&password=********"),
        ("qemu+unix:///system?socket=/run/h1.sock&auth_token=abc", "qemu+unix:///system?socket=/run/h1.sock&auth_token=********"),
    ],
)
def test_a_uri_is_shown_without_its_password_or_secret_parameters(uri, shown):
    assert redact(uri) == shown


def test_an_error_message_naming_the_uri_names_it_redacted():
    uri = "qemu+ssh://root:hunter2@host1/system"

    message = redact_text(f"cannot reach libvirt at {uri}: connection refused", uri)

    assert "hunter2" not in message and "root:********@host1" in message
