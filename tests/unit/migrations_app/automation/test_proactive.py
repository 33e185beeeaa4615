"""Proactive evacuation against the database: the sync's health history, the scheduler's
rounds marking failing hosts degraded and, under "evacuate", entering maintenance for them;
a host that does not answer is refused, the refusal kept and tried again. The hosts' libvirt
is the test driver, as in test_maintenance; the lab test moves real guests."""

from datetime import timedelta

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.utils import timezone

from inventory import degradation, sync
from inventory.choices import HostState
from inventory.models import HostHealthSample
from migrations_app.automation import maintenance
from migrations_app.automation import proactive
from migrations_app.choices import EvacuationState, EventKind, ProactiveLevel
from migrations_app.models import Evacuation, MigrationTask, ProactivePolicy, ProactiveRefusal
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

from tests.unit.node_files import NodeSpec

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3
MEMORY_RULE = "health rule 'memory pressure' fired on kvm1: free memory 3% < 5% for 10 min"


@pytest.fixture
def cluster():
    return ClusterFactory(name="prod")


@pytest.fixture
def hosts(cluster, no_libvirt_sync):
    def host(name: str, **fields):
        return HostFactory(name=name, uri="test:///default", cluster=cluster, last_seen=timezone.now(), last_error="", **fields)

    return host("kvm1"), host("kvm2", memory_free_bytes=8 * GIB), host("kvm3", memory_free_bytes=8 * GIB)


def policy(cluster, level: str, **thresholds) -> ProactivePolicy:
    return ProactivePolicy.objects.create(cluster=cluster, level=level, **thresholds)


def short_of_memory(host, minutes: int = 10, free_percent: float = 3) -> None:
    """A read every 30 s for `minutes`, the newest now, each with `free_percent` of 64 GiB free."""
    now = timezone.now()
    HostHealthSample.objects.bulk_create(
        HostHealthSample(host=host, at=now - timedelta(seconds=30 * i), ok=True, latency_ms=20,
                         memory_free_bytes=int(64 * GIB * free_percent / 100), memory_total_bytes=64 * GIB)
        for i in range(minutes * 2 + 1)
    )


def failing(host, reads: int = 3) -> None:
    now = timezone.now()
    HostHealthSample.objects.bulk_create(HostHealthSample(host=host, at=now - timedelta(seconds=30 * i), ok=False, latency_ms=3) for i in range(reads))


# The sync's health history


def test_each_sync_records_whether_libvirt_answered_how_fast_and_the_free_memory(tmp_path):
    host = HostFactory(name="h1", uri=NodeSpec().write(tmp_path / "h1.xml"))
    gone = HostFactory(name="h2", uri=f"qemu+unix:///system?socket={tmp_path}/no-such-socket")

    sync.sync_host(host)
    sync.sync_host(gone)

    answered = HostHealthSample.objects.get(host=host)
    assert answered.ok and answered.latency_ms >= 0 and answered.memory_total_bytes == 8 * GIB and answered.memory_free_bytes is not None
    failed = HostHealthSample.objects.get(host=gone)
    assert not failed.ok and failed.latency_ms >= 0 and failed.memory_free_bytes is None


def test_the_history_keeps_only_the_last_hour(tmp_path, settings):
    host = HostFactory(name="h1", uri=NodeSpec().write(tmp_path / "h1.xml"))
    HostHealthSample.objects.create(host=host, at=timezone.now() - timedelta(minutes=settings.HEALTH_HISTORY_MINUTES + 1), ok=False, latency_ms=1)
    kept = HostHealthSample.objects.create(host=host, at=timezone.now() - timedelta(minutes=settings.HEALTH_HISTORY_MINUTES - 1), ok=False, latency_ms=1)

    sync.sync_host(host)

    assert HostHealthSample.objects.filter(host=host).count() == 2 and HostHealthSample.objects.filter(pk=kept.pk).exists()


def test_the_scheduler_judges_host_health_every_health_interval(monkeypatch, settings):
    settings.HEALTH_INTERVAL_SECONDS = 7
    seen = []
    monkeypatch.setattr("core.management.commands.scheduler.run_periodic", lambda tasks, stop, **options: seen.extend(tasks))

    call_command("scheduler")

    [task] = [task for task in seen if task.name == "host health"]
    assert task.interval_seconds == 7 and task.action is proactive.tick


# Rounds under "recommend"


def test_under_recommend_a_rule_marks_the_host_degraded_and_nothing_moves(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.RECOMMEND)
    VirtualMachineFactory(name="app-1", host=kvm1)
    short_of_memory(kvm1)

    assert proactive.tick() == 0

    kvm1.refresh_from_db()
    assert (kvm1.degraded_by, kvm1.degraded_reason) == ("health rule 'memory pressure'", "free memory 3% < 5% for 10 min")
    assert kvm1.degraded_since is not None and kvm1.state == HostState.CONNECTED
    assert not Evacuation.objects.exists() and not MigrationTask.objects.exists()
    [item] = proactive.degraded_hosts(cluster, ProactivePolicy.of(cluster))
    assert item.why == MEMORY_RULE and item.advice == "Evacuating kvm1 is recommended: enter maintenance to move its VMs off it."


def test_under_recommend_a_host_that_does_not_answer_is_recommended_for_when_it_answers_again(cluster, hosts):
    kvm1 = hosts[0]
    kvm1.state, kvm1.last_error = HostState.DISCONNECTED, "Failed to connect: connection refused"
    kvm1.save()
    policy(cluster, ProactiveLevel.RECOMMEND)
    failing(kvm1)

    proactive.tick()

    [item] = proactive.degraded_hosts(cluster, ProactivePolicy.of(cluster))
    assert item.advice.startswith("Evacuating kvm1 is recommended once it answers again")
    assert not ProactiveRefusal.objects.exists()


def test_the_degradation_is_in_the_audit_trail_as_the_systems(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.RECOMMEND)
    short_of_memory(kvm1)

    proactive.tick()

    entry = LogEntry.objects.get_for_object(kvm1).latest("timestamp")
    assert entry.actor is None
    assert entry.changes_dict["degraded_by"] == ["", "health rule 'memory pressure'"]
    assert entry.changes_dict["degraded_reason"][1] == "free memory 3% < 5% for 10 min"


def test_a_degraded_host_stays_degraded_when_its_reads_recover(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.RECOMMEND)
    failing(kvm1)
    proactive.tick()
    HostHealthSample.objects.create(host=kvm1, at=timezone.now() + timedelta(seconds=1), ok=True, latency_ms=10, memory_free_bytes=GIB, memory_total_bytes=2 * GIB)

    proactive.tick()

    kvm1.refresh_from_db()
    assert kvm1.is_degraded and kvm1.degraded_by == "health rule 'failing calls'"


@pytest.mark.parametrize("state", [HostState.MAINTENANCE, HostState.ENTERING_MAINTENANCE])
def test_a_host_in_or_entering_maintenance_is_left_alone(cluster, hosts, state):
    kvm1 = hosts[0]
    kvm1.state = state
    kvm1.save()
    policy(cluster, ProactiveLevel.EVACUATE)
    short_of_memory(kvm1)

    proactive.tick()

    kvm1.refresh_from_db()
    assert not kvm1.is_degraded and not Evacuation.objects.exists()


def test_with_the_policy_off_no_rule_judges_and_a_marked_host_is_not_moved(cluster, hosts, administrator):
    kvm1, kvm2, _ = hosts
    policy(cluster, ProactiveLevel.OFF)
    short_of_memory(kvm1)
    degradation.mark_degraded(kvm2, "fan failing", degradation.by_administrator(administrator))
    VirtualMachineFactory(host=kvm2)

    proactive.tick()

    kvm1.refresh_from_db()
    assert not kvm1.is_degraded and not Evacuation.objects.exists()


def test_the_policys_thresholds_decide(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.RECOMMEND, memory_free_percent=2, memory_minutes=10)
    short_of_memory(kvm1, free_percent=3)

    proactive.tick()

    kvm1.refresh_from_db()
    assert not kvm1.is_degraded


# Rounds under "evacuate"


def test_under_evacuate_the_degraded_host_enters_maintenance_with_the_rule_as_the_reason(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.EVACUATE)
    for name in ("app-1", "app-2"):
        VirtualMachineFactory(name=name, host=kvm1, memory_bytes=2 * GIB)
    short_of_memory(kvm1)

    assert proactive.tick() == 1

    kvm1.refresh_from_db()
    evacuation = Evacuation.objects.get(host=kvm1)
    assert kvm1.state == HostState.ENTERING_MAINTENANCE and evacuation.state == EvacuationState.RUNNING
    assert evacuation.requested_by is None and evacuation.batch.reason == f"Automatic evacuation: {MEMORY_RULE}"
    tasks = list(evacuation.batch.tasks.all())
    assert sorted(task.vm.name for task in tasks) == ["app-1", "app-2"]
    for task in tasks:
        assert task.reason == evacuation.batch.reason
        assert task.events.filter(kind=EventKind.INFO, message=f"Automatic evacuation: {MEMORY_RULE}.").exists()
    [item] = proactive.degraded_hosts(cluster, ProactivePolicy.of(cluster))
    assert item.advice == "kvm1 is entering maintenance."


def test_a_host_an_administrator_marked_is_evacuated_with_their_reason(cluster, hosts, administrator):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.EVACUATE)
    VirtualMachineFactory(name="app-1", host=kvm1)
    degradation.mark_degraded(kvm1, "ECC errors on DIMM 3", degradation.by_administrator(administrator))

    proactive.tick()

    evacuation = Evacuation.objects.get(host=kvm1)
    assert evacuation.batch.reason == "Automatic evacuation: kvm1 was marked degraded by administrator administrator: ECC errors on DIMM 3"


def test_a_degradation_is_evacuated_once_even_after_maintenance_is_exited(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.EVACUATE)
    VirtualMachineFactory(name="app-1", host=kvm1)
    short_of_memory(kvm1)
    proactive.tick()

    proactive.tick()
    maintenance.exit_maintenance(kvm1)
    proactive.tick()

    assert Evacuation.objects.filter(host=kvm1).count() == 1
    kvm1.refresh_from_db()
    assert kvm1.is_degraded and kvm1.state == HostState.CONNECTED
    [item] = proactive.degraded_hosts(cluster, ProactivePolicy.of(cluster))
    assert item.advice.startswith(f"Evacuation #{Evacuation.objects.get().pk} aborted; the policy does not evacuate it again")


def test_a_host_that_fails_every_call_is_not_evacuated_the_refusal_is_kept_and_tried_again(cluster, hosts):
    kvm1 = hosts[0]
    kvm1.state, kvm1.last_error = HostState.DISCONNECTED, "Failed to connect: connection refused"
    kvm1.save()
    vm = VirtualMachineFactory(name="app-1", host=kvm1)
    policy(cluster, ProactiveLevel.EVACUATE)
    failing(kvm1)

    proactive.tick()
    proactive.tick()

    kvm1.refresh_from_db()
    assert kvm1.degraded_by == "health rule 'failing calls'" and kvm1.degraded_reason == "3 failed reads ≥ 3 in 5 min"
    assert not Evacuation.objects.exists() and not MigrationTask.objects.exists()
    vm.refresh_from_db()
    assert vm.host == kvm1
    refusal = ProactiveRefusal.objects.get(host=kvm1)
    assert refusal.attempts == 2 and refusal.is_current
    assert refusal.message == "Could not evacuate kvm1 automatically: kvm1 does not answer (Failed to connect: connection refused): its VMs cannot be moved live."
    [item] = proactive.degraded_hosts(cluster, ProactivePolicy.of(cluster))
    assert item.refusal == refusal and "(tried 2 times; tries again every round)" in item.advice

    kvm1.state, kvm1.last_error = HostState.CONNECTED, ""  # libvirt answers again
    kvm1.save()
    assert proactive.tick() == 1

    assert Evacuation.objects.get(host=kvm1).batch.tasks.get().vm == vm
    assert not ProactiveRefusal.objects.exists()


def test_restoring_ends_the_degradation_and_the_history_starts_afresh(cluster, hosts):
    kvm1 = hosts[0]
    policy(cluster, ProactiveLevel.RECOMMEND)
    failing(kvm1)
    proactive.tick()

    message = degradation.restore(kvm1)
    proactive.tick()

    kvm1.refresh_from_db()
    assert message == "kvm1 is restored: no longer degraded."
    assert not kvm1.is_degraded and (kvm1.degraded_by, kvm1.degraded_reason) == ("", "")
    assert not HostHealthSample.objects.filter(host=kvm1).exists()
    assert proactive.degraded_hosts(cluster, ProactivePolicy.of(cluster)) == []
