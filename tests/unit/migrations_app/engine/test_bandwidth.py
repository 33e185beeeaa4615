"""Priority as bandwidth: a host's budget shared by its moving migrations by priority weight,
each end judged on its own, caps kept and what they leave handed on."""

import json
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command

from migrations_app.engine.bandwidth import Claim, Share, ShareKeeper, share_for, water_fill
from migrations_app.choices import Priority, TaskState
from migrations_app.models import MigrationTask
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory


def test_a_budget_is_shared_by_weight():
    shares = water_fill(110, [Claim(1, 4), Claim(2, 2), Claim(3, 2), Claim(4, 2)])

    assert shares == pytest.approx({1: 44, 2: 22, 3: 22, 4: 22})


def test_what_a_capped_claim_leaves_goes_to_the_others_by_weight():
    shares = water_fill(110, [Claim(1, 4, cap=10), Claim(2, 2), Claim(3, 1)])

    assert shares == pytest.approx({1: 10, 2: 200 / 3, 3: 100 / 3})
    assert sum(shares.values()) == pytest.approx(110)


def test_caps_below_the_budget_leave_it_partly_unused():
    assert water_fill(110, [Claim(1, 2, cap=20), Claim(2, 1, cap=30)]) == {1: 20, 2: 30}


@pytest.fixture
def hosts(db):
    cluster = ClusterFactory(migration_bandwidth_mib_s=110)
    return [HostFactory(name=f"kvm{i}", cluster=cluster) for i in range(1, 4)]


def moving(source, destination, priority=Priority.NORMAL, state=TaskState.MIGRATING, **fields):
    vm = VirtualMachineFactory(host=source)
    return MigrationTask.objects.create(vm=vm, source=source, destination=destination, priority=priority, state=state, **fields)


def test_a_lone_migration_gets_its_hosts_whole_budget(hosts):
    kvm1, kvm2, _ = hosts

    share = share_for(moving(kvm1, kvm2, state=TaskState.CHECKING))

    assert share.mib_s == 110
    assert share.explanation == "Bandwidth 110 MiB/s: its share of the 110 MiB/s kvm1 sends with, by priority (normal, weight 2 of 2 among 1 migration)."


def test_a_high_priority_migration_takes_twice_a_normal_ones_share_at_its_source(hosts):
    kvm1, kvm2, kvm3 = hosts
    for destination in (kvm2, kvm3, kvm3):
        moving(kvm1, destination)
    moving(kvm1, kvm2, state=TaskState.SUCCEEDED)  # ended: holds nothing

    high = share_for(moving(kvm1, kvm2, priority=Priority.HIGH, state=TaskState.CHECKING))

    assert high.mib_s == 44  # 4 of 10 weights
    assert "weight 4 of 10 among 4 migrations" in high.explanation


def test_the_smaller_of_its_two_ends_decides(hosts):
    kvm1, kvm2, kvm3 = hosts
    kvm1.migration_bandwidth_mib_s = 500  # its own, above its cluster's
    kvm1.save()
    moving(kvm3, kvm2)  # kvm2 also receives from kvm3

    share = share_for(moving(kvm1, kvm2, state=TaskState.CHECKING))

    assert share.mib_s == 55
    assert "the 110 MiB/s kvm2 receives with" in share.explanation


def test_without_a_budget_the_operators_cap_stands(db):
    kvm1, kvm2 = HostFactory(), HostFactory()

    assert share_for(moving(kvm1, kvm2, state=TaskState.CHECKING, bandwidth_mib_s=40)).mib_s == 40
    assert share_for(moving(kvm1, kvm2, state=TaskState.CHECKING)) == Share(None, "")


def test_the_keeper_tells_libvirt_only_when_the_share_changed(monkeypatch):
    shares = iter([Share(55, "half"), Share(55, "half"), Share(110, "all")])
    applied, notes = [], []
    keeper = ShareKeeper(Share(110, "all"), read=lambda: next(shares), apply=lambda mib, post_copy: applied.append((mib, post_copy)), note=notes.append)
    monkeypatch.setattr(ShareKeeper, "REVIEW_SECONDS", 0)

    for post_copy in (False, False, True):
        keeper.review(post_copy)

    assert applied == [(55, False), (110, True)] and notes == ["half", "all"]


def test_the_command_line_sets_a_clusters_budget_and_a_hosts_own(hosts, administrator):
    kvm1 = hosts[0]
    out = StringIO()
    call_command("vmotion", "cluster", "bandwidth", kvm1.cluster.name, "120", "--user", "administrator", "--json", stdout=out)

    assert json.loads(out.getvalue().splitlines()[-1]) == {"cluster": kvm1.cluster.name, "migration_bandwidth_mib_s": 120}
    assert LogEntry.objects.get_for_object(kvm1.cluster).latest("timestamp").actor == administrator
    out = StringIO()
    call_command("vmotion", "host", "bandwidth", "kvm1", stdout=out)
    assert out.getvalue().strip() == f"kvm1: its cluster {kvm1.cluster.name}'s 120 MiB/s each way, shared among its migrations by priority."

    call_command("vmotion", "host", "bandwidth", "kvm1", "1000", stdout=StringIO())
    kvm1.refresh_from_db()
    assert kvm1.migration_bandwidth_mib_s == 1000


@pytest.mark.parametrize("word", ["fast", "0", "-5", "2.5", "99999999"])
def test_a_budget_that_is_not_a_whole_number_of_mib_s_is_refused_and_changes_nothing(hosts, word):
    with pytest.raises(CommandError, match=r"A migration bandwidth budget is a whole number of MiB/s from 1 to 50000, or none; not"):
        call_command("vmotion", "host", "bandwidth", "kvm1", word, stdout=StringIO())

    hosts[0].refresh_from_db()
    assert hosts[0].migration_bandwidth_mib_s is None


def test_none_removes_a_hosts_own_budget(hosts):
    hosts[0].migration_bandwidth_mib_s = 300
    hosts[0].save()

    call_command("vmotion", "host", "bandwidth", "kvm1", "none", stdout=StringIO())

    hosts[0].refresh_from_db()
    assert hosts[0].migration_bandwidth_mib_s is None
