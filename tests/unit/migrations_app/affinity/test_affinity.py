"""Affinity rules from plain facts: breaches, current violations and contradictions."""

import pytest

from migrations_app.affinity.rules import RuleFacts, breaches, contradictions, violations
from migrations_app.choices import RuleKind

WEB1, WEB2, WEB3, DB = (1, "web1"), (2, "web2"), (3, "web3"), (4, "db")
KVM1, KVM2, KVM3 = 11, 12, 13
NAMES = {KVM1: "kvm1", KVM2: "kvm2", KVM3: "kvm3"}


def rule(kind, *vms, must=True, hosts=(), id=1, name="r"):
    return RuleFacts(id=id, name=name, kind=kind, must=must, vms=tuple(vms), hosts=tuple(hosts))


APART = rule(RuleKind.APART, WEB1, WEB2, WEB3, name="web-apart")
TOGETHER = rule(RuleKind.TOGETHER, WEB1, DB, name="web-db")
PINNED = rule(RuleKind.ON_HOSTS, DB, hosts=[(KVM1, "kvm1"), (KVM2, "kvm2")], name="db-hosts")


@pytest.mark.parametrize(
    "rules, vm, host, where, broken",
    [
        ([APART], 1, KVM2, {2: KVM2, 3: KVM3}, "web2 already on kvm2"),
        ([APART], 1, KVM1, {2: KVM2, 3: KVM3}, None),
        ([APART], 1, KVM2, {3: KVM3}, None),  # web2 is yet to be placed: it constrains no one
        ([TOGETHER], 1, KVM2, {4: KVM1}, "db not on kvm2"),
        ([TOGETHER], 1, KVM1, {4: KVM1}, None),
        ([TOGETHER], 1, KVM2, {}, None),
        ([PINNED], 4, KVM3, {}, "kvm3 is not one of them"),
        ([PINNED], 4, KVM2, {}, None),
        ([PINNED], 1, KVM3, {}, None),  # web1 is not in the rule
    ],
)
def test_a_move_breaks_the_rules_whose_vms_would_end_where_the_rule_forbids(rules, vm, host, where, broken):
    found = breaches(vm, host, NAMES[host], rules, where)
    if broken is None:
        assert found == []
    else:
        (breach,) = found
        assert broken in breach.message and repr(breach.rule.name) in breach.message


def test_violations_name_the_rule_where_its_vms_are_and_which_to_move():
    where = {1: KVM1, 2: KVM1, 3: KVM2, 4: KVM3}
    apart, together, pinned = violations([APART, TOGETHER, PINNED], where, NAMES)
    assert apart.message == "web1, web2 on kvm1: together on one host" and apart.misplaced == (2,)
    assert together.message.startswith("split over 2 hosts") and together.misplaced in {(1,), (4,)}
    assert pinned.message == "db on kvm3: outside the rule's hosts" and pinned.misplaced == (4,)


def test_a_rule_that_holds_has_no_violation():
    assert violations([APART, TOGETHER, PINNED], {1: KVM1, 2: KVM2, 3: KVM3, 4: KVM1}, NAMES) == []


def test_a_together_rule_split_two_to_one_moves_the_one():
    three = rule(RuleKind.TOGETHER, WEB1, WEB2, DB)
    (split,) = violations([three], {1: KVM1, 2: KVM2, 4: KVM2}, NAMES)
    assert split.misplaced == (1,)


@pytest.mark.parametrize(
    "new, existing, host_count, problem",
    [
        (rule(RuleKind.TOGETHER, WEB1, WEB2, id=2), [APART], 3, "Rule 'web-apart' must keep web1, web2 apart"),
        (rule(RuleKind.APART, WEB1, DB, id=2), [TOGETHER], 3, "Rule 'web-db' must keep web1, db together"),
        (rule(RuleKind.APART, WEB1, DB, id=2, must=False), [TOGETHER], 3, None),  # a "should" rule may lose
        (rule(RuleKind.TOGETHER, WEB1, DB, id=2), [rule(RuleKind.APART, WEB1, DB, must=False)], 3, None),
        (rule(RuleKind.ON_HOSTS, DB, hosts=[(KVM3, "kvm3")], id=2), [PINNED], 3, "none of them among these"),
        (rule(RuleKind.ON_HOSTS, DB, hosts=[(KVM2, "kvm2")], id=2), [PINNED], 3, None),
        (APART, [], 2, "3 VMs cannot run on different hosts in a cluster of 2 hosts"),
        (APART, [], 3, None),
    ],
)
def test_a_must_rule_that_could_never_hold_beside_the_others_is_refused_with_the_reason(new, existing, host_count, problem):
    found = contradictions(new, existing, host_count)
    if problem is None:
        assert found == []
    else:
        assert any(problem in sentence for sentence in found), found
