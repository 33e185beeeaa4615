"""Degraded hosts and the proactive policy in the pages: marking and restoring a host
(administrators only, a reason required), the banner, the dashboard badge, and the
cluster's policy form with its ranges."""

import pytest
from auditlog.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from inventory import degradation
from inventory.models import HostHealthSample
from migrations_app.choices import ProactiveLevel
from migrations_app.models import ProactivePolicy, ProactiveRefusal
from tests.factories import ClusterFactory, HostFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def kvm1():
    return HostFactory(name="kvm1", cluster=ClusterFactory(name="prod"), last_seen=timezone.now())


def page_of(client, host) -> str:
    return client.get(reverse("host-detail", args=[host.pk])).content.decode()


# The host page


def test_an_administrator_marks_a_host_degraded_with_a_reason_and_the_trail_names_them(client_as, administrator, kvm1):
    client = client_as(administrator)

    response = client.post(reverse("host-degrade", args=[kvm1.pk]), {"reason": "  ECC errors on DIMM 3 "})

    assert response.status_code == 302 and response["Location"] == kvm1.get_absolute_url()
    kvm1.refresh_from_db()
    assert (kvm1.degraded_reason, kvm1.degraded_by) == ("ECC errors on DIMM 3", "administrator administrator") and kvm1.degraded_since
    entry = LogEntry.objects.get_for_object(kvm1).latest("timestamp")
    assert entry.actor == administrator and entry.changes_dict["degraded_reason"] == ["", "ECC errors on DIMM 3"]
    page = page_of(client, kvm1)
    assert 'data-testid="host-degraded"' in page and "by administrator administrator: ECC errors on DIMM 3" in page
    assert "Restore (no longer degraded)" in page and "Mark degraded" not in page


@pytest.mark.parametrize("reason, why", [("", "the reason is empty"), ("   ", "the reason is empty"), ("x" * 501, "at most 500 fit")])
def test_a_mark_without_a_usable_reason_is_refused_and_changes_nothing(client_as, administrator, kvm1, reason, why):
    client = client_as(administrator)
    entries = LogEntry.objects.count()

    response = client.post(reverse("host-degrade", args=[kvm1.pk]), {"reason": reason}, follow=True)

    assert why in response.content.decode()
    kvm1.refresh_from_db()
    assert not kvm1.is_degraded and LogEntry.objects.count() == entries


def test_marking_a_degraded_host_again_is_refused_and_keeps_the_first_reason(client_as, administrator, kvm1):
    degradation.mark_degraded(kvm1, "fan failing", degradation.BY_CLI)

    response = client_as(administrator).post(reverse("host-degrade", args=[kvm1.pk]), {"reason": "something else"}, follow=True)

    assert "kvm1 is already degraded" in response.content.decode()
    kvm1.refresh_from_db()
    assert kvm1.degraded_reason == "fan failing"


def test_an_administrator_restores_a_host_and_restoring_a_healthy_one_is_refused(client_as, administrator, kvm1):
    degradation.mark_degraded(kvm1, "fan failing", degradation.BY_CLI)
    client = client_as(administrator)

    client.post(reverse("host-restore", args=[kvm1.pk]))
    again = client.post(reverse("host-restore", args=[kvm1.pk]), follow=True).content.decode()

    kvm1.refresh_from_db()
    assert not kvm1.is_degraded and "kvm1 is not degraded." in again
    assert 'data-testid="host-degraded"' not in page_of(client, kvm1)


def test_an_operator_can_neither_mark_nor_restore_and_sees_no_buttons(client_as, operator, kvm1):
    client = client_as(operator)

    assert client.post(reverse("host-degrade", args=[kvm1.pk]), {"reason": "fan failing"}).status_code == 403
    kvm1.refresh_from_db()
    assert not kvm1.is_degraded
    assert "Mark degraded" not in page_of(client, kvm1)


def test_the_banner_says_what_the_policy_advises_and_the_health_summary_sums_up_the_reads(client_as, viewer, kvm1):
    ProactivePolicy.objects.create(cluster=kvm1.cluster, level=ProactiveLevel.RECOMMEND)
    degradation.mark_degraded(kvm1, "3 failed reads ≥ 3 in 5 min", degradation.by_health_rule("failing calls"))
    now = timezone.now()
    for seconds, ok, latency in [(0, True, 30), (30, False, 5), (60, True, 50), (90, True, 10)]:
        HostHealthSample.objects.create(host=kvm1, at=now - timezone.timedelta(seconds=seconds), ok=ok, latency_ms=latency,
                                        memory_free_bytes=16 * 1024**3 if ok else None, memory_total_bytes=64 * 1024**3 if ok else None)

    page = page_of(client_as(viewer), kvm1)

    assert "by health rule &#x27;failing calls&#x27;: 3 failed reads ≥ 3 in 5 min" in page
    assert "Evacuating kvm1 is recommended" in page
    assert "4 reads since" in page and "1 failed; libvirt answers in 30 ms (median), 50 ms at the slowest; 25.0% of memory free" in page


def test_the_banner_says_when_the_host_could_not_be_evacuated(client_as, viewer, kvm1):
    ProactivePolicy.objects.create(cluster=kvm1.cluster, level=ProactiveLevel.EVACUATE)
    kvm1 = degradation.mark_degraded(kvm1, "fan failing", degradation.BY_CLI)
    ProactiveRefusal.objects.create(host=kvm1, degraded_since=kvm1.degraded_since, attempts=3, message="Could not evacuate kvm1 automatically: kvm1 does not answer.")

    page = page_of(client_as(viewer), kvm1)

    assert "Could not evacuate kvm1 automatically: kvm1 does not answer. (tried 3 times; tries again every round)." in page


def test_the_dashboard_shows_a_degraded_badge(client_as, viewer, kvm1):
    HostFactory(name="kvm2")
    degradation.mark_degraded(kvm1, "fan failing", degradation.BY_CLI)

    page = client_as(viewer).get(reverse("dashboard")).content.decode()

    assert page.count('data-testid="host-degraded"') == 1 and 'title="vmotion CLI: fan failing">Degraded' in page


# The cluster's proactive policy


def test_an_administrator_sets_the_policy_and_the_trail_records_it(client_as, administrator, kvm1):
    fields = {"level": "evacuate", "slow_latency_ms": 1500, "slow_samples": 4, "failed_reads": 3, "failed_window_minutes": 5,
              "memory_free_percent": 5, "memory_minutes": 10}

    response = client_as(administrator).post(reverse("cluster-health-policy", args=[kvm1.cluster.pk]), fields)

    assert response.status_code == 302 and response["Location"] == reverse("cluster-settings", args=[kvm1.cluster.pk]) + "#proactive-policy"
    policy = ProactivePolicy.of(kvm1.cluster)
    assert (policy.level, policy.slow_latency_ms, policy.slow_samples) == (ProactiveLevel.EVACUATE, 1500, 4)
    assert LogEntry.objects.get_for_object(policy).latest("timestamp").actor == administrator


@pytest.mark.parametrize("field, value", [
    ("slow_latency_ms", 10), ("slow_latency_ms", 60_001), ("slow_samples", 0), ("slow_samples", 21), ("failed_reads", 0), ("failed_reads", 51),
    ("failed_window_minutes", 0), ("failed_window_minutes", 61), ("memory_free_percent", 0), ("memory_free_percent", 51),
    ("memory_minutes", 0), ("memory_minutes", 61), ("level", "sometimes"), ("slow_samples", "three"),
])
def test_an_out_of_range_value_gets_a_field_error_and_changes_nothing(client_as, administrator, kvm1, field, value):
    before = ProactivePolicy.of(kvm1.cluster)
    fields = {"level": "evacuate", "slow_latency_ms": 1500, "slow_samples": 4, "failed_reads": 3, "failed_window_minutes": 5,
              "memory_free_percent": 5, "memory_minutes": 10, field: value}

    response = client_as(administrator).post(reverse("cluster-health-policy", args=[kvm1.cluster.pk]), fields)

    assert response.status_code == 400 and f'data-testid="field-error-{field}"' in response.content.decode()
    assert list(response.context["proactive_form"].errors) == [field] and response.context["proactive_policy"].level == ProactiveLevel.OFF
    assert ProactivePolicy.objects.get(pk=before.pk).level == ProactiveLevel.OFF
    assert 'data-testid="proactive-form"' in response.content.decode()  # shown again on the settings, with what was sent


def test_the_failing_hosts_former_page_leads_to_the_overview_which_lists_them(client_as, viewer, kvm1):
    degradation.mark_degraded(kvm1, "fan failing", degradation.BY_CLI)

    response = client_as(viewer).get(reverse("cluster-health", args=[kvm1.cluster.pk]), follow=True)

    assert response.redirect_chain == [(reverse("cluster-detail", args=[kvm1.cluster.pk]) + "#cluster-health", 302)]
    page = response.content.decode()
    assert "kvm1 was marked degraded by vmotion CLI: fan failing" in page and "The cluster&#x27;s proactive policy is off" in page


def test_the_overview_lists_the_degraded_hosts_and_the_settings_show_the_policy_to_viewers(client_as, viewer, administrator, kvm1):
    ProactivePolicy.objects.create(cluster=kvm1.cluster, level=ProactiveLevel.RECOMMEND)
    degradation.mark_degraded(kvm1, "fan failing", degradation.BY_CLI)
    overview, settings = reverse("cluster-detail", args=[kvm1.cluster.pk]), reverse("cluster-settings", args=[kvm1.cluster.pk])

    as_viewer = client_as(viewer).get(overview).content.decode()
    as_administrator = client_as(administrator).get(overview).content.decode()

    assert "kvm1 was marked degraded by vmotion CLI: fan failing" in as_viewer and "Evacuating kvm1 is recommended" in as_viewer
    assert reverse("maintenance-plan", args=[kvm1.pk]) not in as_viewer and reverse("maintenance-plan", args=[kvm1.pk]) in as_administrator
    viewed = client_as(viewer).get(settings).content.decode()
    assert 'data-testid="proactive-policy">Recommend' in viewed and 'data-testid="proactive-form"' not in viewed
    assert "Save the proactive policy" in client_as(administrator).get(settings).content.decode()
