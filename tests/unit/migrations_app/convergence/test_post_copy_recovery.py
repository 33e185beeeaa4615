"""Which libvirt can resume a broken post-copy migration, by version, and what an operator
reads when it cannot. No Django, no libvirt."""

import shlex

import pytest

from migrations_app.convergence.post_copy_recovery import (
    HostLibvirt, Recovery, broken_post_copy_error, can_resume, parse_version, post_copy_warning, recovery_of, restart_command, resume_command,
)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("11.4.0", Recovery.RESUMES),
        ("11.10.1", Recovery.RESUMES),
        ("12.0.0", Recovery.RESUMES),
        ("11.3.0", Recovery.CRASHES),
        ("11.3.9", Recovery.CRASHES),
        ("11.2.0", Recovery.CRASHES),
        ("11.1.0", Recovery.RESUMES),  # documented recovery, before the crash came in
        ("8.5.0", Recovery.RESUMES),
        ("8.4.0", Recovery.NONE),
        ("7.0.0", Recovery.NONE),
        ("", Recovery.UNKNOWN),
        ("unknown", Recovery.UNKNOWN),
    ],
)
def test_each_version_recovers_as_libvirt_documents(version, expected):
    assert recovery_of(version) == expected


def test_versions_compare_as_numbers_not_text():
    assert parse_version("11.10.0") == (11, 10, 0) > parse_version("11.4.0")
    assert parse_version("9.0") == (9, 0, 0)


@pytest.mark.parametrize(
    ("source", "destination", "resumes"),
    [
        ("11.4.0", "11.4.0", True),
        ("11.4.0", "11.3.0", False),
        ("11.3.0", "11.4.0", False),
        ("11.3.0", "11.3.0", False),
        ("11.4.0", "8.0.0", False),
        ("11.4.0", "", False),
    ],
)
def test_a_pair_resumes_only_when_both_hosts_can(source, destination, resumes):
    assert can_resume(HostLibvirt("kvm1", source), HostLibvirt("kvm2", destination)) is resumes


def test_no_warning_where_both_hosts_can_resume():
    assert post_copy_warning(HostLibvirt("kvm1", "11.4.0"), HostLibvirt("kvm2", "11.5.0")) == ""


def test_the_warning_names_the_version_and_what_is_lost():
    warning = post_copy_warning(HostLibvirt("kvm1", "11.3.0"), HostLibvirt("kvm2", "11.3.0"))

    assert warning.startswith("kvm1 -> kvm2: a broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0 and libvirt 11.3.0)")
    assert "kvm1 runs libvirt 11.3.0, whose daemon crashes when asked to resume a broken post-copy (fixed in libvirt 11.4.0)" in warning
    assert "kvm2 runs libvirt 11.3.0" in warning


def test_the_warning_for_an_old_libvirt_or_an_unknown_one():
    old = post_copy_warning(HostLibvirt("kvm1", "11.4.0"), HostLibvirt("kvm2", "8.0.0"))
    unknown = post_copy_warning(HostLibvirt("kvm1", "11.4.0"), HostLibvirt("kvm2", ""))

    assert "on this libvirt (libvirt 8.0.0)" in old and "libvirt 8.5.0 added that" in old and "kvm1" not in old.split(": ", 1)[1]
    assert "on these hosts" in unknown and "has not recorded kvm2's libvirt version" in unknown


def test_the_error_of_a_broken_post_copy_says_where_each_part_of_the_guest_is():
    error = broken_post_copy_error("web-1", HostLibvirt("kvm1", "11.3.0"), HostLibvirt("kvm2", "11.3.0"))

    assert error.startswith(
        "Failed: post-copy broke; the guest is paused on both hosts and cannot be resumed with this libvirt "
        "(libvirt 11.3.0 on kvm1, libvirt 11.3.0 on kvm2)."
    )
    assert "kvm1 holds web-1 paused (post-copy failed)" in error and "kvm2 holds its vCPUs" in error


def test_the_restart_command_is_one_virsh_call_destroying_both_copies_and_starting_the_source():
    command = restart_command("web-1", "uuid-1", "qemu+ssh://root@kvm1/system", "qemu+ssh://root@kvm2/system?keyfile=/k")

    argv = shlex.split(command)
    assert argv[0] == "virsh" and len(argv) == 2
    assert [step.strip() for step in argv[1].split(";")] == [
        "connect qemu+ssh://root@kvm2/system?keyfile=/k", "destroy web-1", "undefine web-1",
        "connect qemu+ssh://root@kvm1/system", "destroy web-1", "start web-1",
    ]


def test_a_name_virsh_would_split_is_replaced_by_the_uuid():
    assert "destroy 2b0c" in restart_command("web 1; rm", "2b0c", "qemu:///system", "qemu+tcp://kvm2/system")


def test_the_resume_command_is_libvirts_postcopy_resume():
    assert resume_command("web-1", "u", "qemu+ssh://kvm1/system", "qemu+tls://kvm2/system") == (
        "virsh -c qemu+ssh://kvm1/system migrate --live --p2p --persistent --postcopy --postcopy-resume web-1 qemu+tls://kvm2/system"
    )


def test_the_hosts_warning_names_each_host_that_cannot_resume_once():
    from migrations_app.convergence.post_copy_recovery import hosts_warning

    kvm1, kvm2, kvm3 = HostLibvirt("kvm1", "11.3.0"), HostLibvirt("kvm2", "11.4.0"), HostLibvirt("kvm3", "7.0.0")

    assert hosts_warning([kvm2]) == ""
    warning = hosts_warning([kvm1, kvm2, kvm3, kvm1])
    assert warning.startswith("A broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0 and libvirt 7.0.0)")
    assert warning.count("kvm1 runs") == 1 and "kvm3 runs libvirt 7.0.0" in warning and "kvm2" not in warning
