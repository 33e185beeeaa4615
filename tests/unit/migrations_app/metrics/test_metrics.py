"""/metrics: the exposition Prometheus parses, the ends of tasks counted once each, the
gauges read from the database, and who may scrape."""

import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from hypervisor.job import JobSample
from hypervisor.states import DomainState
from migrations_app import services
from migrations_app.engine import conclusion
from migrations_app.engine import recovery
from migrations_app.choices import EndReason, TaskState
from migrations_app.engine.conclusion import conclude
from migrations_app.models import MigrationLimits, MigrationTask, ProgressSample
from tests.factories import HostFactory, VirtualMachineFactory
from tests.scrape import AUTHORIZATION, TOKEN, a_series_of_every_metric, families, value

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[4]
METRICS_DOC = ROOT / "docs" / "reference" / "metrics.md"

EXPORTED = {
    "vmotion_migrations": "counter",
    "vmotion_migration_duration_seconds": "histogram",
    "vmotion_migration_downtime_seconds": "histogram",
    "vmotion_migration_prediction_ratio": "histogram",
    "vmotion_migration_tasks": "gauge",
    "vmotion_migrations_in_running_phase": "gauge",
    "vmotion_migration_data_remaining_bytes": "gauge",
    "vmotion_migration_data_processed_bytes": "gauge",
    "vmotion_migration_dirty_memory_rate_bytes": "gauge",
    "vmotion_migration_memory_transfer_rate_bytes": "gauge",
    "vmotion_migration_slots_in_use": "gauge",
    "vmotion_migration_slots_limit": "gauge",
    "vmotion_workqueue_depth": "gauge",
    "vmotion_inventory_last_sync_timestamp_seconds": "gauge",
}


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def read():
        response = client.get("/metrics", **AUTHORIZATION)
        assert response.status_code == 200, response.content
        return families(response.content.decode())

    return read


def grew(before, after, sample_name: str, **labels: str) -> float:
    return value(after, sample_name, **labels) - value(before, sample_name, **labels)


@pytest.fixture
def migrating():
    """A task copying memory on its worker, and libvirt's figures once it completes."""
    vm = VirtualMachineFactory(name="web-01", host=HostFactory(name="kvm-a"))
    task = MigrationTask.objects.create(
        vm=vm, source=vm.host, destination=HostFactory(name="kvm-b"), predicted_total_ms=4000, predicted_downtime_ms=200,
    )
    task.claim("elsewhere:1", "claimed")
    task.transition(TaskState.MIGRATING)
    return task


@pytest.fixture
def libvirt_kept_figures(monkeypatch):
    """What libvirt's completed job says, without libvirt: 5 s, a 150 ms pause."""
    sample = JobSample(
        elapsed_ms=5000, data_total=2**30, data_processed=2**30, data_remaining=0, memory_dirty_rate=0,
        memory_iteration=3, memory_bps=0, auto_converge_throttle=0, post_copy=False, downtime_ms=150,
    )
    monkeypatch.setattr(conclusion, "_keep_figures", lambda task: task.record_result(sample))
    monkeypatch.setattr(conclusion, "_undefine_on_source", lambda task: None)


def test_the_exposition_parses_and_holds_every_metric_with_its_type(scrape):
    a_series_of_every_metric()

    exposition = scrape()

    assert {name: family.type for name, family in exposition.items() if name.startswith("vmotion_")} == EXPORTED


def test_the_metrics_reference_lists_every_metric_and_no_other():
    listed = {line.split("`")[1] for line in METRICS_DOC.read_text().splitlines() if line.startswith("| `vmotion_")}

    assert listed == {f"{name}_total" if kind == "counter" else name for name, kind in EXPORTED.items()}


def test_prometheus_may_ask_for_openmetrics(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0", **AUTHORIZATION)

    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().endswith("# EOF\n")


def test_a_succeeded_migration_is_counted_once_with_its_duration_downtime_and_prediction(
    scrape, migrating, libvirt_kept_figures, django_capture_on_commit_callbacks
):
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        assert conclude(migrating, DomainState.STOPPED, DomainState.RUNNING)
        stale = MigrationTask.objects.get(pk=migrating.pk)
        stale.state = TaskState.MIGRATING  # a second conclusion, as a racing recovery would try
        conclude(stale, DomainState.STOPPED, DomainState.RUNNING)

    after = scrape()
    assert MigrationTask.objects.get(pk=migrating.pk).state == TaskState.SUCCEEDED
    assert grew(before, after, "vmotion_migrations_total", result="succeeded", reason="completed") == 1
    assert grew(before, after, "vmotion_migration_duration_seconds_count", result="succeeded") == 1
    assert grew(before, after, "vmotion_migration_duration_seconds_sum", result="succeeded") == pytest.approx(5.0)
    assert grew(before, after, "vmotion_migration_duration_seconds_bucket", result="succeeded", le="5.0") == 1
    assert grew(before, after, "vmotion_migration_duration_seconds_bucket", result="succeeded", le="2.5") == 0
    assert grew(before, after, "vmotion_migration_downtime_seconds_sum", mode="precopy") == pytest.approx(0.15)
    assert grew(before, after, "vmotion_migration_downtime_seconds_bucket", mode="precopy", le="0.2") == 1
    assert grew(before, after, "vmotion_migration_downtime_seconds_bucket", mode="precopy", le="0.1") == 0
    assert grew(before, after, "vmotion_migration_prediction_ratio_sum", figure="duration") == pytest.approx(5000 / 4000)
    assert grew(before, after, "vmotion_migration_prediction_ratio_sum", figure="downtime") == pytest.approx(150 / 200)


def test_a_failure_after_post_copy_and_a_cancel_count_under_their_result_and_reason(scrape, migrating, django_capture_on_commit_callbacks):
    queued = MigrationTask.objects.create(vm=VirtualMachineFactory(host=migrating.source), source=migrating.source, destination=migrating.destination)
    migrating.transition(TaskState.POST_COPY)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        conclude(migrating, DomainState.STOPPED, DomainState.STOPPED, failure="libvirt could not migrate the VM.", failure_reason=EndReason.LIBVIRT_ERROR)
        services.cancel_task(queued)

    after = scrape()
    assert grew(before, after, "vmotion_migrations_total", result="failed", reason="libvirt_error") == 1
    assert grew(before, after, "vmotion_migrations_total", result="cancelled", reason="operator") == 1
    # The failed one had moved memory: its time counts; the cancelled one never started.
    assert grew(before, after, "vmotion_migration_duration_seconds_count", result="failed") == 1
    assert grew(before, after, "vmotion_migration_duration_seconds_count", result="cancelled") == 0
    # A failure has no downtime, even after post-copy began.
    assert grew(before, after, "vmotion_migration_downtime_seconds_count", mode="postcopy") == 0


def test_recovery_after_a_lost_worker_counts_the_end_once(scrape, monkeypatch, django_capture_on_commit_callbacks):
    vm = VirtualMachineFactory()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory())
    task.claim(f"{socket.gethostname()}:{2**22 + 7}", "claimed")  # above pid_max: a dead worker
    task.transition(TaskState.MIGRATING)
    monkeypatch.setattr(recovery, "domain_state", lambda uri, uuid, timeout: DomainState.RUNNING if uri == vm.host.uri else DomainState.ABSENT)
    monkeypatch.setattr(recovery.sync, "sync_host", lambda host: None)
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        assert recovery.reconcile_orphaned_tasks() == [task.pk]
        assert recovery.reconcile_orphaned_tasks() == []

    assert grew(before, scrape(), "vmotion_migrations_total", result="failed", reason="worker_lost") == 1


def test_an_end_rolled_back_is_not_counted(scrape, django_capture_on_commit_callbacks):
    vm = VirtualMachineFactory()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory())
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            task.transition(TaskState.CANCELLED, end_reason=EndReason.OPERATOR)
            raise RuntimeError("the request failed after the cancel")

    assert callbacks == []
    assert grew(before, scrape(), "vmotion_migrations_total", result="cancelled", reason="operator") == 0
    assert MigrationTask.objects.get(pk=task.pk).state == TaskState.QUEUED


def test_a_reason_outside_the_set_is_counted_as_other(scrape, django_capture_on_commit_callbacks):
    vm = VirtualMachineFactory()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory())
    before = scrape()

    with django_capture_on_commit_callbacks(execute=True):
        task.transition(TaskState.FAILED, error="x", end_reason="the host said: disk /dev/sda1 is full")

    after = scrape()
    assert grew(before, after, "vmotion_migrations_total", result="failed", reason="other") == 1
    assert not any("disk" in sample.labels.get("reason", "") for sample in after["vmotion_migrations"].samples)


def test_tasks_by_state_and_running_migrations_come_from_the_database(scrape):
    source, destination = HostFactory(name="kvm-a"), HostFactory(name="kvm-b")
    running = MigrationTask.objects.create(vm=VirtualMachineFactory(name="db-01", host=source), source=source, destination=destination, state=TaskState.MIGRATING)
    ProgressSample.objects.create(task=running, elapsed_ms=1000, data_remaining=900, data_processed=100, dirty_rate_bytes_s=7, throughput_bytes_s=8)
    ProgressSample.objects.create(task=running, elapsed_ms=2000, data_remaining=400, data_processed=600, dirty_rate_bytes_s=50, throughput_bytes_s=60)
    waiting = MigrationTask.objects.create(vm=VirtualMachineFactory(name="db-02", host=source), source=source, destination=destination, state=TaskState.WAITING)
    ProgressSample.objects.create(task=waiting, elapsed_ms=1000, data_remaining=1)  # not running: no series
    MigrationTask.objects.create(vm=VirtualMachineFactory(host=source), source=source, destination=destination, state=TaskState.FAILED)

    exposition = scrape()

    assert {sample.labels["state"]: sample.value for sample in exposition["vmotion_migration_tasks"].samples} == {
        "queued": 0, "checking": 0, "waiting": 1, "migrating": 1, "post_copy": 0, "succeeded": 0, "failed": 1, "cancelled": 0,
    }
    assert value(exposition, "vmotion_migrations_in_running_phase") == 1
    migration = {"vm": "db-01", "source": "kvm-a", "destination": "kvm-b"}
    assert value(exposition, "vmotion_migration_data_remaining_bytes", **migration) == 400
    assert value(exposition, "vmotion_migration_data_processed_bytes", **migration) == 600
    assert value(exposition, "vmotion_migration_dirty_memory_rate_bytes", **migration) == 50
    assert value(exposition, "vmotion_migration_memory_transfer_rate_bytes", **migration) == 60
    assert [sample.labels["vm"] for sample in exposition["vmotion_migration_data_remaining_bytes"].samples] == ["db-01"]


def test_slots_in_use_per_host_and_the_limits_come_from_the_database(scrape):
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 3, "max_incoming_per_host": 1, "max_concurrent": 5})
    a, b, c = HostFactory(name="kvm-a"), HostFactory(name="kvm-b"), HostFactory(name="kvm-c")
    now = timezone.now()
    for destination, state in ((b, TaskState.MIGRATING), (c, TaskState.CHECKING), (b, TaskState.SUCCEEDED)):
        MigrationTask.objects.create(vm=VirtualMachineFactory(host=a), source=a, destination=destination, state=state, slot_granted_at=now)
    MigrationTask.objects.create(vm=VirtualMachineFactory(host=a), source=a, destination=c, state=TaskState.WAITING)  # no slot yet

    exposition = scrape()

    in_use = {(s.labels["host"], s.labels["direction"]): s.value for s in exposition["vmotion_migration_slots_in_use"].samples}
    assert in_use == {
        ("kvm-a", "outgoing"): 2, ("kvm-a", "incoming"): 0, ("kvm-b", "outgoing"): 0, ("kvm-b", "incoming"): 1,
        ("kvm-c", "outgoing"): 0, ("kvm-c", "incoming"): 1,
    }
    limits = {s.labels["scope"]: s.value for s in exposition["vmotion_migration_slots_limit"].samples}
    assert limits == {"outgoing_per_host": 3, "incoming_per_host": 1, "concurrent": 5}


def test_queue_depth_comes_from_redis(scrape):
    queue = django_rq.get_queue("low")
    queue.empty()
    try:
        for _ in range(2):
            queue.enqueue("migrations_app.engine.jobs.hand_on_slots")
        exposition = scrape()
    finally:
        queue.empty()

    assert value(exposition, "vmotion_workqueue_depth", queue="low") == 2
    assert {sample.labels["queue"] for sample in exposition["vmotion_workqueue_depth"].samples} == {"high", "default", "low", "inventory"}


def test_without_redis_the_scrape_still_answers_without_the_queues(scrape, monkeypatch):
    def unreachable(name):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(django_rq, "get_queue", unreachable)

    exposition = scrape()

    assert "vmotion_workqueue_depth" not in exposition
    assert "vmotion_migration_tasks" in exposition


def test_the_last_inventory_sync_of_each_host_is_its_unix_time(scrape):
    seen = timezone.now() - timedelta(minutes=3)
    HostFactory(name="kvm-a", last_seen=seen)
    HostFactory(name="kvm-never")

    exposition = scrape()

    assert value(exposition, "vmotion_inventory_last_sync_timestamp_seconds", host="kvm-a") == pytest.approx(seen.timestamp())
    assert [s.labels["host"] for s in exposition["vmotion_inventory_last_sync_timestamp_seconds"].samples] == ["kvm-a"]


def test_a_scraper_needs_no_login_session(client, settings):
    settings.METRICS_TOKEN = TOKEN
    response = client.get("/metrics", **AUTHORIZATION)

    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    assert client.post("/metrics", **AUTHORIZATION).status_code == 405


def test_without_a_token_it_is_closed_in_production_even_to_a_signed_in_administrator(client_as, administrator, settings):
    settings.DEBUG, settings.METRICS_TOKEN = False, ""
    assert settings.METRICS_PUBLIC is False  # the default with DEBUG off, as the tests run

    response = client_as(administrator).get("/metrics")

    assert response.status_code == 401 and b"vmotion_" not in response.content
    assert "set METRICS_TOKEN" in response.content.decode() and "METRICS_PUBLIC=1" in response.content.decode()


def test_metrics_public_opens_it_on_purpose(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_PUBLIC = "", True

    response = client.get("/metrics")

    assert response.status_code == 200 and b"vmotion_migration_tasks" in response.content


@pytest.mark.parametrize("env, open_by_default", [({"DEBUG": "0"}, False), ({"DEBUG": "1"}, True), ({"DEBUG": "0", "METRICS_PUBLIC": "1"}, True)])
def test_only_debug_or_metrics_public_opens_it_without_a_token(env, open_by_default):
    code = "from django.conf import settings; print(settings.METRICS_PUBLIC)"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "vmotion.settings", "SECRET_KEY": "x", **env},
    )

    assert result.stdout.strip() == str(open_by_default), result.stderr


def test_check_deploy_warns_about_an_open_metrics_endpoint(settings):
    settings.METRICS_TOKEN, settings.METRICS_PUBLIC = "", True
    assert [warning.id for warning in run_checks(include_deployment_checks=True) if warning.id.startswith("vmotion.")] == ["vmotion.W001"]

    settings.METRICS_TOKEN = "s3cret"
    assert not [warning for warning in run_checks(include_deployment_checks=True) if warning.id.startswith("vmotion.")]
    settings.METRICS_TOKEN, settings.METRICS_PUBLIC = "", False
    assert not [warning for warning in run_checks(include_deployment_checks=True) if warning.id.startswith("vmotion.")]


def test_with_a_token_set_only_its_bearer_may_scrape(client_as, viewer, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    client = client_as(viewer)  # a session is not enough

    refused = [
        client.get("/metrics"),
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"),
        client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-token"),
    ]
    accepted = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")

    assert [response.status_code for response in refused] == [401, 401, 401]
    assert refused[0]["WWW-Authenticate"].startswith("Bearer")
    assert b"vmotion_" not in refused[0].content
    assert accepted.status_code == 200 and b"vmotion_migration_tasks" in accepted.content
