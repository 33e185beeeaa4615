"""libvirt's (state, reason) of a domain in our words: a broken post-copy migration is
neither host's guest yet, whatever libvirt's state code says."""

from types import SimpleNamespace

import pytest

from hypervisor.states import DomainState, domain_state_of

# libvirt's codes (libvirt-domain.h): only the hypervisor package imports libvirt itself.
libvirt = SimpleNamespace(
    VIR_DOMAIN_RUNNING=1, VIR_DOMAIN_PAUSED=3, VIR_DOMAIN_SHUTOFF=5,
    VIR_DOMAIN_RUNNING_BOOTED=1, VIR_DOMAIN_RUNNING_POSTCOPY=10, VIR_DOMAIN_RUNNING_POSTCOPY_FAILED=11,
    VIR_DOMAIN_PAUSED_USER=1, VIR_DOMAIN_PAUSED_MIGRATION=2, VIR_DOMAIN_PAUSED_POSTCOPY=12, VIR_DOMAIN_PAUSED_POSTCOPY_FAILED=13,
    VIR_DOMAIN_SHUTOFF_MIGRATED=5,
    VIR_DOMAIN_JOB_NONE=0, VIR_DOMAIN_JOB_UNBOUNDED=2, VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT=5,
)
NO_JOB = {"type": libvirt.VIR_DOMAIN_JOB_NONE}
MIGRATING_OUT = {"type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED, "operation": libvirt.VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT}


@pytest.mark.parametrize(
    ("state", "reason", "job", "expected"),
    [
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, NO_JOB, DomainState.RUNNING),
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED, MIGRATING_OUT, DomainState.MIGRATING),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER, NO_JOB, DomainState.PAUSED),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_MIGRATION, NO_JOB, DomainState.MIGRATING),
        # The source once the guest runs on the destination in post-copy.
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY, NO_JOB, DomainState.MIGRATING),
        # Post-copy's stream broke: the source keeps pages, the destination the CPU state;
        # the source keeps its migration job, waiting for a resume.
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED, NO_JOB, DomainState.POST_COPY_FAILED),
        (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED, MIGRATING_OUT, DomainState.POST_COPY_FAILED),
        (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED, NO_JOB, DomainState.POST_COPY_FAILED),
        (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_MIGRATED, NO_JOB, DomainState.STOPPED),
    ],
)
def test_each_state_and_reason_means_what_it_says_for_a_migration(state, reason, job, expected):
    assert domain_state_of(state, reason, job) == expected


def test_only_the_post_copy_failed_reasons_mean_a_broken_post_copy():
    from hypervisor.states import is_post_copy_failed

    assert is_post_copy_failed(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)
    assert is_post_copy_failed(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED)
    # The same numbers under the other state mean something else (11 is PAUSED_API_ERROR... for paused).
    assert not is_post_copy_failed(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY_FAILED)
    assert not is_post_copy_failed(libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_POSTCOPY)
    assert not is_post_copy_failed(libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_POSTCOPY)
