"""A cluster's two pages: the overview reads the recommendations the scheduler stored and
computes none; the settings hold every form, and a form refused comes back on them with its
errors and status 400; buttons and forms follow the roles."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from inventory.choices import ClusterCpuMode, MigrationEncryption
from inventory.models import Cluster, VirtualMachine
from migrations_app.automation import recommendations
from migrations_app.choices import AutomationLevel, ProactiveLevel, RuleKind
from migrations_app.models import AffinityRule, AffinityRuleVm, BalancingPolicy, ClusterRecommendations, MigrationTask, ProactivePolicy
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible", "no_inventory_worker")]
GIB = 1024**3


def overview_of(client, cluster):
    return client.get(reverse("cluster-detail", args=[cluster.pk]))


def settings_of(client, cluster):
    return client.get(reverse("cluster-settings", args=[cluster.pk]))


@pytest.fixture
def nothing_computed(monkeypatch):
    """Any computation of recommendations or forecasts fails the test."""

    def computes(*args, **kwargs):
        raise AssertionError("a page computed recommendations")

    for target in ("migrations_app.automation.balancing.cluster_balance", "migrations_app.automation.balancing.forecast_moves", "migrations_app.automation.recommendations.compute"):
        monkeypatch.setattr(target, computes)


# The overview


def test_the_overview_shows_the_stored_recommendations_and_when_they_were_computed_without_computing(client_as, operator, cluster, monkeypatch, django_assert_max_num_queries):
    recommendations.compute(cluster)
    ClusterRecommendations.objects.update(computed_at=timezone.now() - timezone.timedelta(minutes=3))
    client = client_as(operator)
    monkeypatch.setattr("migrations_app.automation.balancing.cluster_balance", lambda c: pytest.fail("the page computed the recommendations"))
    monkeypatch.setattr("migrations_app.automation.recommendations.compute", lambda c: pytest.fail("the page computed the recommendations"))

    with django_assert_max_num_queries(20):
        page = overview_of(client, cluster).content.decode()

    assert "busy → idle" in page and "spread drops from" in page
    assert re.search(r'data-testid="recommendations-computed">\s*Computed <time datetime="[^"]+">3\xa0minutes ago</time>\.', page)
    assert "Not measured yet: no inventory worker is running." in page  # why there is no forecast, as stored
    assert 'data-testid="recompute"' in page and reverse("cluster-apply", args=[cluster.pk]) in page


def test_the_overview_reads_in_a_fixed_number_of_queries_however_many_hosts_and_vms(client_as, viewer, cluster, nothing_computed):
    client = client_as(viewer)
    overview_of(client, cluster)  # the policies made, as on any first visit
    with CaptureQueriesContext(connection) as few:
        overview_of(client, cluster)
    for n in range(20):
        VirtualMachineFactory(name=f"more-{n}", host=HostFactory(name=f"more-{n}", cluster=cluster), cpu_cores_used=0.5, memory_in_use_bytes=GIB)
    with CaptureQueriesContext(connection) as more:
        page = overview_of(client, cluster).content.decode()
    assert len(more.captured_queries) == len(few.captured_queries) and 'data-host="more-19"' in page


def test_a_cluster_not_computed_yet_says_so_and_recompute_now_queues_it_for_the_scheduler(client_as, operator, cluster, nothing_computed):
    client = client_as(operator)
    page = overview_of(client, cluster).content.decode()
    assert "Not computed yet: the scheduler computes them every few minutes, and this cluster's are queued." in page

    response = client.post(reverse("cluster-recompute", args=[cluster.pk]), follow=True)

    assert response.redirect_chain == [(reverse("cluster-detail", args=[cluster.pk]) + "#recommendations", 302)]
    assert "being computed again" in response.content.decode()
    assert ClusterRecommendations.objects.get(cluster=cluster).due_at <= timezone.now()


def test_recompute_now_on_computed_recommendations_makes_them_due_and_the_next_round_computes_them(client_as, operator, cluster):
    recommendations.compute(cluster)
    assert recommendations.due_round() == 0

    client_as(operator).post(reverse("cluster-recompute", args=[cluster.pk]))

    assert "a new computation is queued" in overview_of(client_as(operator), cluster).content.decode()
    assert recommendations.due_round() == 1


def test_applying_a_stored_recommendation_judges_it_against_the_cluster_now(client_as, operator, cluster):
    recommendations.compute(cluster)
    [move, *_] = recommendations.latest(cluster).moves
    client = client_as(operator)
    # Since it was computed, the busy host calmed down: the move is no longer worth it.
    VirtualMachine.objects.filter(name__startswith="app-").update(cpu_cores_used=0.1)

    response = client.post(reverse("cluster-apply", args=[cluster.pk]), {"vm": move.vm_id, "to": move.destination_id}, follow=True)

    assert "no longer holds" in response.content.decode() and not MigrationTask.objects.exists()
    assert recommendations.latest(cluster).queued  # computed again at the next round


def test_an_applied_recommendation_leaves_the_list_and_the_task_shows_where_it_was(client_as, operator, cluster):
    recommendations.compute(cluster)
    [move, *_] = recommendations.latest(cluster).moves
    client = client_as(operator)

    response = client.post(reverse("cluster-apply", args=[cluster.pk]), {"vm": move.vm_id, "to": move.destination_id}, follow=True)

    task = MigrationTask.objects.get()
    assert task.vm_id == move.vm_id and f"Task #{task.pk}" in response.content.decode()
    assert move.vm_id not in [m.vm_id for m in recommendations.latest(cluster).moves]


def test_a_stored_move_whose_vm_is_moving_shows_its_task_instead_of_apply(client_as, operator, cluster):
    recommendations.compute(cluster)
    [move, *_] = recommendations.latest(cluster).moves
    vm = VirtualMachine.objects.get(pk=move.vm_id)
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination_id=move.destination_id)

    page = overview_of(client_as(operator), cluster).content.decode()

    assert f'data-testid="recommendation-under-way">Task #{task.pk} under way' in page


def test_a_viewer_sees_the_overview_without_a_button(client_as, viewer, cluster):
    recommendations.compute(cluster)
    rule = AffinityRule.objects.create(cluster=cluster, name="apart", kind=RuleKind.APART)
    AffinityRuleVm.objects.bulk_create([AffinityRuleVm(rule=rule, vm=vm, vm_name=vm.name) for vm in VirtualMachine.objects.filter(name__startswith="app-")])

    page = overview_of(client_as(viewer), cluster).content.decode()

    assert "busy → idle" in page and "Violated:" in page
    for action in ("cluster-apply", "cluster-recompute"):
        assert reverse(action, args=[cluster.pk]) not in page, action
    assert reverse("rule-fix", args=[rule.pk]) not in page and "<form" not in page.split("<main>", 1)[1]


def test_an_operator_gets_apply_fix_and_recompute_on_the_overview_and_no_settings_form(client_as, operator, cluster):
    recommendations.compute(cluster)
    rule = AffinityRule.objects.create(cluster=cluster, name="apart", kind=RuleKind.APART)
    AffinityRuleVm.objects.bulk_create([AffinityRuleVm(rule=rule, vm=vm, vm_name=vm.name) for vm in VirtualMachine.objects.filter(name__startswith="app-")])
    client = client_as(operator)

    overview = overview_of(client, cluster).content.decode()
    settings = settings_of(client, cluster).content.decode()

    assert all(reverse(action, args=[cluster.pk]) in overview for action in ("cluster-apply", "cluster-recompute"))
    assert reverse("rule-fix", args=[rule.pk]) in overview
    for form in ("automation-form", "proactive-form", "cpu-mode-form", "encryption-form", "rule-form"):
        assert f'data-testid="{form}"' not in settings, form
    assert reverse("rule-delete", args=[rule.pk]) not in settings


def test_the_overview_and_the_settings_link_to_each_other_as_tabs(client_as, viewer, cluster):
    client = client_as(viewer)

    overview = overview_of(client, cluster).content.decode()
    settings = settings_of(client, cluster).content.decode()

    assert f'<a href="{reverse("cluster-detail", args=[cluster.pk])}" aria-current="page">Overview</a>' in overview
    assert f'<a href="{reverse("cluster-settings", args=[cluster.pk])}" aria-current="page">Settings</a>' in settings


# The settings


def test_an_administrator_gets_every_settings_form_and_a_viewer_reads_the_settings(client_as, administrator, viewer, cluster):
    BalancingPolicy.objects.create(cluster=cluster, level=AutomationLevel.AUTOMATIC, threshold=4)

    administered = settings_of(client_as(administrator), cluster).content.decode()
    viewed = settings_of(client_as(viewer), cluster).content.decode()

    for form in ("automation-form", "proactive-form", "cpu-mode-form", "encryption-form", "rule-form"):
        assert f'data-testid="{form}"' in administered and f'data-testid="{form}"' not in viewed, form
    assert "<form" not in viewed.split("<main>", 1)[1]
    assert 'data-testid="balancing-policy">Automatic' in viewed and "threshold 4" in viewed


# Each settings form, refused: (URL name, what is sent, the field with the error, what must not have changed).
REFUSED = [
    ("cluster-policy", {"level": "automatic", "threshold": "9", "max_moves": "2", "interval_minutes": "5", "cooldown_minutes": "30"}, "field-error-threshold",
     lambda cluster: BalancingPolicy.of(cluster).level == AutomationLevel.MANUAL),
    ("cluster-health-policy", {"level": "evacuate", "slow_latency_ms": "10", "slow_samples": "3", "failed_reads": "3", "failed_window_minutes": "5",
                               "memory_free_percent": "5", "memory_minutes": "10"}, "field-error-slow_latency_ms",
     lambda cluster: ProactivePolicy.of(cluster).level == ProactiveLevel.OFF),
    ("cluster-cpu-mode", {"mode": "named", "model": ""}, "field-error-model", lambda cluster: cluster.cpu_mode == ClusterCpuMode.COMPUTED),
    ("cluster-encryption", {"mode": "sometimes"}, "field-error-mode", lambda cluster: cluster.migration_encryption != "sometimes"),
    ("rule-add", {"name": "", "kind": "apart", "strength": "must", "vm_names": "app-0"}, "rule-field-error-name", lambda cluster: not AffinityRule.objects.exists()),
]


@pytest.mark.parametrize("name, sent, error, unchanged", REFUSED, ids=[case[0] for case in REFUSED])
def test_a_refused_settings_form_comes_back_on_the_settings_with_its_errors_and_400(client_as, administrator, cluster, name, sent, error, unchanged):
    response = client_as(administrator).post(reverse(name, args=[cluster.pk]), sent)

    page = response.content.decode()
    assert response.status_code == 400 and f'data-testid="{error}"' in page
    assert response.templates[0].name == "migrations_app/cluster_settings.html"
    assert 'aria-current="page">Settings</a>' in page and 'data-testid="affinity-rules"' in page and 'data-testid="cluster-cpu"' in page
    assert unchanged(Cluster.objects.get(pk=cluster.pk))


@pytest.mark.parametrize("name, sent, section, saved", [
    ("cluster-policy", {"level": "off", "threshold": "3", "max_moves": "2", "interval_minutes": "5", "cooldown_minutes": "30"}, "automation",
     lambda cluster: BalancingPolicy.of(cluster).level == AutomationLevel.OFF),
    ("cluster-encryption", {"mode": "required"}, "cluster-encryption", lambda cluster: cluster.migration_encryption == MigrationEncryption.REQUIRED),
    ("rule-add", {"name": "apart", "kind": "apart", "strength": "must", "vm_names": "app-0 app-1"}, "affinity-rules", lambda cluster: AffinityRule.objects.filter(name="apart").exists()),
], ids=["cluster-policy", "cluster-encryption", "rule-add"])
def test_a_saved_settings_form_says_so_and_goes_back_to_its_section(client_as, administrator, cluster, name, sent, section, saved):
    response = client_as(administrator).post(reverse(name, args=[cluster.pk]), sent, follow=True)

    assert response.redirect_chain == [(f"{reverse('cluster-settings', args=[cluster.pk])}#{section}", 302)]
    assert saved(Cluster.objects.get(pk=cluster.pk)) and response.content.decode().count('class="messages"') == 1


def test_saving_the_automation_or_a_rule_queues_the_recommendations_again(client_as, administrator, cluster):
    recommendations.compute(cluster)
    client = client_as(administrator)

    client.post(reverse("cluster-policy", args=[cluster.pk]), {"level": "manual", "threshold": "1", "max_moves": "1", "interval_minutes": "5", "cooldown_minutes": "30"})

    assert recommendations.latest(cluster).queued and recommendations.due_round() == 1
    client.post(reverse("rule-add", args=[cluster.pk]), {"name": "apart", "kind": "apart", "strength": "must", "vm_names": "app-0 app-1"})
    assert recommendations.latest(cluster).queued
