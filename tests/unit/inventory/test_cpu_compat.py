"""Judging CPUs against a cluster's baseline: plain facts in, verdicts out."""

import pytest

from inventory.cpu_compat import (
    Baseline,
    Fit,
    HostCpu,
    VmCpu,
    hosts_identical,
    join_refusal,
    judge_vm,
    listed,
    named_model_refusal,
    restart_pending_after,
)

NEHALEM = frozenset({"sse4.1", "sse4.2", "popcnt"})
WESTMERE = NEHALEM | {"aes", "pclmuldq"}
HASWELL = WESTMERE | {"avx", "avx2"}

NEHALEM_BASELINE = Baseline("Nehalem", NEHALEM, named=True)
SAME = [HostCpu("a", "Haswell", HASWELL), HostCpu("b", "Haswell", HASWELL)]
MIXED = [HostCpu("a", "Haswell", HASWELL), HostCpu("b", "Westmere", WESTMERE)]


@pytest.mark.parametrize(
    ("vm", "baseline", "hosts", "fit", "above"),
    [
        # host-passthrough and host-model take the host's CPU: fine only where every host is alike
        (VmCpu("v", "host-passthrough", "", None), NEHALEM_BASELINE, MIXED, Fit.EXCEEDS, ()),
        (VmCpu("v", "host-model", "", None), NEHALEM_BASELINE, MIXED, Fit.EXCEEDS, ()),
        (VmCpu("v", "host-passthrough", "", None), NEHALEM_BASELINE, SAME, Fit.FITS, ()),
        (VmCpu("v", "host-model", "", None), Baseline("", None), [SAME[0]], Fit.FITS, ()),
        # no <cpu>: the hypervisor's default, which every host offers
        (VmCpu("v", "", "", None), NEHALEM_BASELINE, MIXED, Fit.FITS, ()),
        # a named model: its features against the baseline's
        (VmCpu("v", "custom", "Haswell", HASWELL), NEHALEM_BASELINE, MIXED, Fit.EXCEEDS, ("aes", "avx", "avx2", "pclmuldq")),
        (VmCpu("v", "", "Westmere", WESTMERE), Baseline("Westmere", WESTMERE), MIXED, Fit.FITS, ()),
        (VmCpu("v", "custom", "Nehalem", NEHALEM), Baseline("Westmere", WESTMERE), MIXED, Fit.FITS, ()),
        (VmCpu("v", "custom", "Nehalem", NEHALEM - {"popcnt"}), NEHALEM_BASELINE, MIXED, Fit.FITS, ()),
        # what libvirt could not expand is not judged
        (VmCpu("v", "custom", "Mystery", None), NEHALEM_BASELINE, MIXED, Fit.UNKNOWN, ()),
        (VmCpu("v", "custom", "Nehalem", NEHALEM), Baseline("", None), MIXED, Fit.UNKNOWN, ()),
        # given the baseline for its next boot, still running its old CPU
        (VmCpu("v", "custom", "Nehalem", NEHALEM, restart_pending=True), NEHALEM_BASELINE, MIXED, Fit.RESTART_PENDING, ()),
        # ...and if its definition went beyond the baseline again, that is what counts
        (VmCpu("v", "host-passthrough", "", None, restart_pending=True), NEHALEM_BASELINE, MIXED, Fit.EXCEEDS, ()),
    ],
)
def test_a_vm_is_judged_against_the_baseline(vm, baseline, hosts, fit, above):
    verdict = judge_vm(vm, baseline, hosts)

    assert (verdict.fit, verdict.above_baseline) == (fit, above), verdict.reason
    assert verdict.reason


def test_the_reason_for_a_vm_above_the_baseline_names_the_features():
    verdict = judge_vm(VmCpu("v", "custom", "Haswell", HASWELL), NEHALEM_BASELINE, MIXED)

    assert verdict.reason == "Haswell asks for aes, avx, avx2, pclmuldq, beyond the baseline Nehalem."


@pytest.mark.parametrize(
    ("hosts", "identical"),
    [
        ([], True),
        ([HostCpu("a", "Haswell", None)], True),
        (SAME, True),
        (MIXED, False),
        ([HostCpu("a", "Haswell", HASWELL), HostCpu("b", "Haswell", HASWELL - {"avx2"})], False),
        ([HostCpu("a", "Haswell", HASWELL), HostCpu("b", "Haswell", None)], False),  # cannot tell: assume not
    ],
)
def test_hosts_are_identical_only_when_libvirt_lists_the_same_cpu(hosts, identical):
    assert hosts_identical(hosts) is identical


@pytest.mark.parametrize(
    ("host", "baseline", "refused", "names"),
    [
        (HostCpu("old", "Westmere", WESTMERE), Baseline("Haswell", HASWELL), True, "avx, avx2"),
        (HostCpu("old", "Westmere", WESTMERE), NEHALEM_BASELINE, False, ""),
        (HostCpu("new", "Haswell", HASWELL), Baseline("Haswell", HASWELL), False, ""),
        (HostCpu("any", "Westmere", WESTMERE), Baseline("", None), False, ""),  # no baseline yet
        (HostCpu("unread", "", None), NEHALEM_BASELINE, True, "could not read"),
    ],
)
def test_a_host_below_the_baseline_cannot_join(host, baseline, refused, names):
    refusal = join_refusal(host, "prod", baseline)

    assert (refusal is not None) is refused
    if refused:
        assert names in refusal


def test_the_join_refusal_says_what_is_missing_and_what_to_do():
    refusal = join_refusal(HostCpu("old", "Westmere", WESTMERE), "prod", Baseline("Haswell", HASWELL))

    assert refusal == (
        "old cannot join prod: its CPU (Westmere) lacks avx, avx2, which prod's CPU baseline Haswell includes. "
        "To admit it, first set the cluster's baseline to an older CPU model that old offers."
    )


KNOWN = ("qemu64", "Nehalem", "Westmere", "Haswell")


@pytest.mark.parametrize(
    ("model", "features", "hosts", "expected"),
    [
        ("Nehalem", NEHALEM, MIXED, None),
        ("Westmere", WESTMERE, MIXED, None),
        ("", None, MIXED, "Name a CPU model, for example Nehalem or Westmere."),
        ("Nehalen", None, MIXED, "libvirt knows no CPU model named 'Nehalen' for x86_64. Did you mean Nehalem?"),
        ("Pentium9", None, MIXED, "libvirt knows no CPU model named 'Pentium9' for x86_64. It knows Haswell, Nehalem, Westmere, qemu64."),
        ("Haswell", HASWELL, MIXED, "Haswell cannot be the baseline: b cannot offer it: its CPU lacks avx, avx2."),
        ("Nehalem", NEHALEM, [HostCpu("c", "", None)], "Nehalem cannot be the baseline: vmotion has not read the CPU features of c yet (sync it first)."),
        ("Haswell", None, MIXED, "libvirt could not list the features of Haswell."),
    ],
)
def test_a_named_model_must_be_known_and_offered_by_every_host(model, features, hosts, expected):
    assert named_model_refusal(model, "x86_64", KNOWN, features, hosts) == expected


@pytest.mark.parametrize(
    ("pending", "instance_id", "moved", "expected"),
    [
        (None, 7, False, None),  # nothing was waiting
        (7, 7, False, 7),  # the same instance still runs its old CPU
        (7, 9, False, None),  # powered off and started again: the new CPU
        (7, None, False, None),  # no longer runs: it starts with the new CPU
        (7, 3, True, 3),  # migrated: the instance on the new host carries the old CPU
    ],
)
def test_a_restart_ends_the_wait_and_a_migration_does_not(pending, instance_id, moved, expected):
    assert restart_pending_after(pending, instance_id, moved) == expected


def test_long_lists_of_features_are_cut_short():
    assert listed([f"f{n}" for n in range(15)], shown=3) == "f0, f1, f2 and 12 more"
