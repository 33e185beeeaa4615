"""A libvirt URI shown to people keeps its shape and loses its secrets."""

import pytest

from hypervisor.uris import SecretNotRestored, redact, redact_text, restore


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


STORED = "qemu+ssh://root:hunter2@host1:2222/system?keyfile=/root/.ssh/id&auth_token=s3cret"


@pytest.mark.parametrize(
    "edited",
    [
        "qemu+ssh://root:********@host1:2222/system?keyfile=/root/.ssh/id2&auth_token=********",
        "QEMU+SSH://root:********@HOST1:2222/system?keyfile=/root/.ssh/id",
    ],
)
def test_a_password_left_as_asterisks_goes_back_to_the_same_scheme_host_port_and_user(edited):
    restored = restore(edited, STORED)

    assert "root:hunter2@" in restored and "********" not in restored.split("?")[0]


@pytest.mark.parametrize(
    "edited",
    [
        "qemu+tls://root:********@host1:2222/system",  # another scheme
        "qemu+ssh://root:********@attacker.example:2222/system",  # another host
        "qemu+ssh://root:********@host1/system",  # another port
        "qemu+ssh://admin:********@host1:2222/system",  # another user
        "qemu+ssh://root@attacker.example:2222/system?auth_token=********",  # a secret parameter, another host
    ],
)
def test_asterisks_are_refused_when_the_uri_reaches_another_place(edited):
    with pytest.raises(SecretNotRestored, match="type the secret again"):
        restore(edited, STORED)


def test_a_new_password_for_a_new_host_needs_no_stored_one():
    assert restore("qemu+ssh://admin:n3w@host2/system", STORED) == "qemu+ssh://admin:n3w@host2/system"
