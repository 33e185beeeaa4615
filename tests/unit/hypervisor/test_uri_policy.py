"""The URI rule as a table: which libvirt URIs vmotion opens, in a production install and in
a single-machine or lab install, and what the refusal names."""

import pytest

from hypervisor.uri_policy import Policy, refusal

PRODUCTION = Policy(local=False, directories=("/etc/pki", "/home/vmotion/.ssh"))
LAB = Policy(local=True, directories=("/etc/pki", "/home/vmotion/.ssh", "/var/lib/vmotion-lab"))


@pytest.mark.parametrize(
    "uri",
    [
        "qemu+ssh://root@kvm1.example/system",
        "qemu+ssh://root@kvm1.example:2222/system?keyfile=/home/vmotion/.ssh/id_ed25519",
        "qemu+libssh://root@kvm1.example/system?known_hosts=/home/vmotion/.ssh/known_hosts&known_hosts_verify=normal&sshauth=privkey",
        "qemu+tls://kvm1.example/system",
        "qemu+tls://kvm1.example/system?pkipath=/etc/pki/vmotion",
        "qemu://kvm1.example/system",  # TLS, libvirt's default for a URI that names a host
        "qemu+ssh://root:pw@kvm1.example/system?no_tty=1&mode=direct&proxy=native",
        "qemu+ssh://vmotion-svc@[2001:db8::1]:22/system",
        "qemu+tls://10.0.0.5/system",
    ],
)
def test_authenticated_transports_with_keys_in_configured_directories_are_accepted_everywhere(uri):
    assert refusal(uri, PRODUCTION) is None
    assert refusal(uri, LAB) is None


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("qemu+ext:///system?command=/tmp/script", "qemu+ext://"),
        ("qemu+ssh://kvm1.example/system?command=/bin/bash&keyfile=/some/file", "command="),
        ("qemu+ssh://kvm1.example/system?COMMAND=/bin/sh", "COMMAND="),
        ("qemu+ssh://kvm1.example/system?keyfile=/etc/pki/k&command=%2Fbin%2Fsh", "command="),
        ("qemu+ssh://kvm1.example/system?netcat=/tmp/script", "netcat="),
        ("qemu+tls://kvm1.example/system?no_verify=1", "no_verify="),
        ("qemu+ssh://kvm1.example/system?socket=/run/other.sock", "socket="),
        ("qemu+tcp://internal.example:16509/system", "qemu+tcp://"),
        ("qemu+tcp://10.0.0.5/system", "qemu+tcp://"),
        ("qemu+ssh://root@kvm1.example/system?keyfile=/some/uploaded/file", "keyfile="),
        ("qemu+ssh://root@kvm1.example/system?keyfile=/etc/pki/../../tmp/key", "keyfile="),
        ("qemu+ssh://root@kvm1.example/system?keyfile=relative/key", "keyfile="),
        ("qemu+tls://kvm1.example/system?pkipath=/tmp/pki", "pkipath="),
        ("qemu+libssh://kvm1.example/system?known_hosts=/tmp/known_hosts", "known_hosts="),
        ("qemu+libssh://kvm1.example/system?known_hosts_verify=ignore", "known_hosts_verify=ignore"),
        ("qemu+tls://kvm1.example/system?tls_priority=NORMAL:+VERS-SSL3.0", "tls_priority="),
        ("qemu+ssh://kvm1.example/system?name=qemu%2Bext:///system", "name="),
        ("qemu+ssh://kvm1.example/system?whatever=1", "whatever="),
        ("qemu+ssh:///system", "must name the host"),
        ("qemu+ssh://kvm1.example/session", "/session"),
        ("lxc+ssh://kvm1.example/system", "'lxc'"),
        ("qemu+ssh://kvm1.example/system#x", "fragment"),
        ("qemu+ssh://kvm1.example/system?keyfile=/etc/pki/k;command=/bin/sh", "command="),  # libvirt also splits on ;
        ("qemu+ssh://-oProxyCommand=touch%20x/system", "not a plain host name"),  # ssh would read an option
        ("qemu+ssh://-oProxyCommand=x@kvm1.example/system", "not a plain user name"),
        ("qemu+ssh://ro%6Ft@kvm1.example/system", "not a plain user name"),
        ("qemu+ssh://kvm1.exa%6Dple/system", "not a plain host name"),
    ],
)
def test_each_vector_is_refused_in_production_and_in_a_lab_naming_the_part(uri, named):
    for policy in (PRODUCTION, LAB):
        reason = refusal(uri, policy)
        assert reason is not None and named in reason, (policy, reason)


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("qemu:///system", "qemu:///system"),
        ("qemu+unix:///system?socket=/var/lib/vmotion-lab/hosts/lab-host1/run/libvirt-sock", "qemu+unix:///system"),
        ("qemu+tcp://127.0.0.1:16509/system", "qemu+tcp://"),
        ("test:///default", "test driver"),
        ("qemu+ssh://root@10.78.1.2/system?keyfile=/var/lib/vmotion-lab/ssh/id_ed25519&command=/var/lib/vmotion-lab/ssh/ssh", "command="),
    ],
)
def test_local_transports_and_the_labs_ssh_command_are_accepted_only_in_a_lab(uri, named):
    reason = refusal(uri, Policy(local=False, directories=LAB.directories))
    assert reason is not None and named in reason, reason
    assert refusal(uri, LAB) is None


@pytest.mark.parametrize(
    ("uri", "named"),
    [
        ("qemu+unix:///system?socket=/run/postgresql/.s.PGSQL.5432", "socket=/run/postgresql"),
        ("qemu+tcp://internal.example:16509/system", "loopback"),
        ("qemu+ssh://root@10.78.1.2/system?command=/bin/bash", "command=/bin/bash"),
        ("qemu+ssh://root@10.78.1.2/system?command=/var/lib/vmotion-lab/../../../bin/sh", "command="),
        ("qemu+unix://kvm1.example/system", "names no host"),
    ],
)
def test_a_lab_still_refuses_what_leaves_its_directories_or_this_machine(uri, named):
    reason = refusal(uri, LAB)
    assert reason is not None and named in reason, reason


def test_the_refusal_of_a_command_says_why():
    assert refusal("qemu+ssh://h/system?command=/bin/bash", PRODUCTION) == (
        "The parameter command= is refused: libvirt would run the program it names, as vmotion's user "
        "(or, in a migration URI, as root on the source host)."
    )


def test_no_directory_configured_refuses_every_key_path_and_says_how_to_configure_one():
    reason = refusal("qemu+ssh://h/system?keyfile=/etc/pki/k", Policy())
    assert reason is not None and "LIBVIRT_URI_DIRS" in reason
