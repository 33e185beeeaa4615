"""Affinity rules against the database: making and refusing rules, stale members, and every
mover respecting them: pre-flight, the assistant, maintenance, the cluster page and the CLI.
The hosts' libvirt is the test driver; the lab tests move real guests."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from inventory.models import Host, VirtualMachine
from migrations_app.affinity import store as affinity_rules
from migrations_app.placement import store as assistant
from migrations_app.automation import maintenance
from migrations_app.choices import RuleKind, RuleStrength
from migrations_app.errors import MigrationRequestError
from migrations_app.models import AffinityRule, MigrationTask
from migrations_app.options import MigrationOptions
from migrations_app.services import submit_migration
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


@pytest.fixture
def prod():
    return ClusterFactory(name="prod")


@pytest.fixture
def hosts(prod):
    return [HostFactory(name=f"kvm{n}", uri="test:///default", cluster=prod, last_seen=timezone.now(), last_error="") for n in (1, 2, 3)]


@pytest.fixture
def vms(hosts):
    kvm1, kvm2, _ = hosts
    return {name: VirtualMachineFactory(name=name, host=host) for name, host in (("web1", kvm1), ("web2", kvm2), ("db", kvm1))}


def rule(prod, name, kind, *vms, strength=RuleStrength.MUST, hosts=()):
    return affinity_rules.add_rule(prod, name, kind, strength, list(vms), list(hosts))


def test_a_must_rule_blocks_the_move_that_breaks_it_with_the_rule_named(prod, hosts, vms):
    rule(prod, "web-apart", RuleKind.APART, vms["web1"], vms["web2"])

    with pytest.raises(MigrationRequestError, match=r"breaks rule 'web-apart' \(web1, web2 must run on different hosts\): web2 already on kvm2"):
        submit_migration(vms["web1"], hosts[1], MigrationOptions())
    assert not MigrationTask.objects.exists()
    assert submit_migration(vms["web1"], hosts[2], MigrationOptions()).destination == hosts[2]


def test_a_should_rule_warns_and_lets_the_move_go(prod, hosts, vms):
    rule(prod, "web-apart", RuleKind.APART, vms["web1"], vms["web2"], strength=RuleStrength.SHOULD)
    task = submit_migration(vms["web1"], hosts[1], MigrationOptions())
    assert task.destination == hosts[1]


def test_the_assistant_blocks_the_hosts_a_must_rule_forbids_and_names_the_rule(prod, hosts, vms):
    rule(prod, "db-home", RuleKind.ON_HOSTS, vms["db"], hosts=[hosts[0], hosts[1]])
    ranking = {p.host.name: p for p in assistant.recommend(vms["db"])}
    assert ranking["kvm2"].eligible
    assert not ranking["kvm3"].eligible and "rule 'db-home'" in ranking["kvm3"].blocked_by.message


def test_maintenance_sends_vms_kept_together_to_one_host_and_vms_kept_apart_to_different_ones(prod, hosts, monkeypatch):
    monkeypatch.setattr("migrations_app.automation.evacuation.sync.sync_host", lambda host: None)
    kvm1 = hosts[0]
    vm = {name: VirtualMachineFactory(name=name, host=kvm1) for name in ("app", "db", "web1", "web2")}
    rule(prod, "app-db", RuleKind.TOGETHER, vm["app"], vm["db"])
    rule(prod, "web-apart", RuleKind.APART, vm["web1"], vm["web2"])

    evacuation = maintenance.enter(kvm1)

    went = dict(evacuation.batch.tasks.values_list("vm__name", "destination__name"))
    assert set(went) == {"app", "db", "web1", "web2"}
    assert went["app"] == went["db"] and went["web1"] != went["web2"]


@pytest.mark.parametrize("kind, names, host_names, refusal", [
    (RuleKind.TOGETHER, ["web1", "web2"], [], "Rule 'web-apart' must keep web1, web2 apart"),
    (RuleKind.ON_HOSTS, ["db"], ["elsewhere"], "elsewhere is outside cluster prod: a VM cannot be bound to a host outside its cluster"),
    (RuleKind.APART, ["web1"], [], "at least 2 VMs"),
    (RuleKind.APART, ["web1", "stranger"], [], "stranger does not run in cluster prod"),
    (RuleKind.ON_HOSTS, ["db"], [], "names at least one host"),
])
def test_a_rule_that_could_never_hold_is_refused_with_the_reason_and_nothing_is_saved(prod, hosts, vms, kind, names, host_names, refusal):
    rule(prod, "web-apart", RuleKind.APART, vms["web1"], vms["web2"])
    VirtualMachineFactory(name="stranger", host=HostFactory(name="other"))
    HostFactory(name="elsewhere", cluster=ClusterFactory(name="test"))
    chosen = list(VirtualMachine.objects.filter(name__in=names).order_by("name"))
    targets = list(Host.objects.filter(name__in=host_names))

    with pytest.raises(affinity_rules.RuleRefused, match=refusal):
        affinity_rules.add_rule(prod, "new", kind, RuleStrength.MUST, chosen, targets)
    assert list(AffinityRule.objects.values_list("name", flat=True)) == ["web-apart"]


def test_a_rule_naming_a_deleted_vm_is_kept_and_shown_stale(prod, hosts, vms, client_as, viewer):
    rule(prod, "web-apart", RuleKind.APART, vms["web1"], vms["web2"], vms["db"])
    vms["db"].delete()

    (status,) = affinity_rules.cluster_rules(prod)
    assert status.stale == ("db",) and [name for _, name in status.facts.vms] == ["web1", "web2"]
    page = client_as(viewer).get(reverse("cluster-settings", args=[prod.pk])).content.decode()
    assert "stale" in page and "names db, no longer in the inventory" in page


def test_the_cluster_page_shows_a_violation_with_its_fix_and_fix_now_submits_it(prod, hosts, vms, client_as, operator):
    rule(prod, "web-db-apart", RuleKind.APART, vms["web1"], vms["db"])  # both on kvm1 already
    client = client_as(operator)

    page = client.get(reverse("cluster-detail", args=[prod.pk])).content.decode()
    assert "Violated:" in page and "db, web1 on kvm1: together on one host" in page
    assert "Fix: move web1 to kvm2" in page  # kvm2 holds web2, which no rule keeps apart from web1

    rule_pk = AffinityRule.objects.get().pk
    assert client.post(reverse("rule-fix", args=[rule_pk])).status_code == 302
    task = MigrationTask.objects.get()
    assert task.vm.name == "web1" and task.destination.name in {"kvm2", "kvm3"}
    assert "affinity rule 'web-db-apart'" in task.reason


def test_adding_a_contradicting_rule_through_the_page_is_refused_with_the_reason(prod, hosts, vms, client_as, administrator):
    rule(prod, "web-apart", RuleKind.APART, vms["web1"], vms["web2"])
    client = client_as(administrator)
    url = reverse("rule-add", args=[prod.pk])

    response = client.post(url, {"name": "web-together", "kind": RuleKind.TOGETHER, "strength": RuleStrength.MUST, "vm_names": "web1 web2"})
    assert response.status_code == 400 and "must keep web1, web2 apart" in response.content.decode()
    assert 'data-testid="rule-refused"' in response.content.decode() and response.context["rule_form"]["name"].value() == "web-together"
    response = client.post(url, {"name": "x", "kind": RuleKind.APART, "strength": RuleStrength.MUST, "vm_names": "web1 nosuch"})
    assert response.status_code == 400 and "No VM named nosuch in the inventory." in response.content.decode()
    assert AffinityRule.objects.count() == 1

    response = client.post(url, {"name": "db-home", "kind": RuleKind.ON_HOSTS, "strength": RuleStrength.SHOULD, "vm_names": "db", "hosts": [hosts[0].pk]})
    assert response.status_code == 302
    assert AffinityRule.objects.get(name="db-home").hosts.get().host_name == "kvm1"


def cli(*args) -> dict:
    out = StringIO()
    call_command("vmotion", *args, "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_the_cli_adds_lists_and_deletes_rules_and_refuses_bad_ones(prod, hosts, vms):
    added = cli("rules", "add", "web-apart", "--cluster", "prod", "--kind", "apart", "--vm", "web1", "--vm", "web2")
    assert added["rule"] == "web-apart" and added["strength"] == "must"
    with pytest.raises(CommandError, match="must keep web1, web2 apart"):
        cli("rules", "add", "glued", "--cluster", "prod", "--kind", "together", "--vm", "web1", "--vm", "web2")
    cli("rules", "add", "db-web1", "--cluster", "prod", "--kind", "apart", "--vm", "db", "--vm", "web1", "--should")

    listed = cli("rules", "list", "--cluster", "prod")
    states = {item["rule"]: item["violation"] for item in listed["rules"]}
    assert states == {"db-web1": "db, web1 on kvm1: together on one host", "web-apart": None}
    assert cli("rules", "delete", "db-web1", "--cluster", "prod")["deleted"] == "db-web1"
    with pytest.raises(CommandError, match="has no rule named 'db-web1'"):
        cli("rules", "delete", "db-web1", "--cluster", "prod")
    with pytest.raises(CommandError, match="No cluster named 'nope'"):
        cli("rules", "list", "--cluster", "nope")


def test_the_overview_gathers_load_violations_and_failing_hosts_and_the_settings_the_rest(prod, hosts, vms, client_as, administrator):
    client = client_as(administrator)
    overview = client.get(reverse("cluster-detail", args=[prod.pk])).content.decode()
    settings = client.get(reverse("cluster-settings", args=[prod.pk])).content.decode()

    for section in ('data-testid="cluster-spread"', 'data-testid="cluster-recommendations"', 'data-testid="rule-violations"', 'data-testid="cluster-health"'):
        assert section in overview and section not in settings, section
    for section in ('data-testid="automation-form"', 'data-testid="proactive-form"', 'data-testid="cpu-mode-form"', 'data-testid="encryption-form"', 'data-testid="rule-form"'):
        assert section in settings and section not in overview, section
