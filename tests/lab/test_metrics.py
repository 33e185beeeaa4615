"""/metrics after a real migration: gunicorn, as production serves it, shows what a real
worker recorded when the task ended, and the running migration's figures
while it moved."""

from __future__ import annotations

import time

import pytest

from inventory.models import Host, VirtualMachine
from migrations_app import services
from migrations_app.choices import FINAL_STATES, TaskState
from tests.lab.conftest import at_full_speed, wait_for_state, where_runs
from tests.scrape import families, over_http, value

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]


def scrape(app_server) -> dict:
    return families(over_http(f"{app_server.url}/metrics"))


def scrape_until(app_server, ready, timeout: float = 15) -> dict:
    """The first scrape that `ready` accepts; the last one when the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        exposition = scrape(app_server)
        if ready(exposition) or time.monotonic() > deadline:
            return exposition
        time.sleep(0.2)


def test_a_migration_through_the_worker_shows_in_the_duration_and_downtime_histograms(lab, workers, home_hosts, app_server):
    name = "lab-vm1"
    vm = VirtualMachine.objects.get(name=name)
    destination = next(host for host in Host.objects.order_by("name") if host.pk != vm.host_id)
    migration = {"vm": name, "source": vm.host.name, "destination": destination.name}
    before = scrape(app_server)
    ended_before = value(before, "vmotion_migrations_total", result="succeeded", reason="completed")

    # Capped so that it runs long enough to be seen running, then let go.
    task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=8, max_downtime_ms=300))
    wait_for_state(task, [TaskState.MIGRATING, *FINAL_STATES])
    running = scrape_until(app_server, lambda exposition: value(exposition, "vmotion_migration_data_processed_bytes", **migration) > 0)
    at_full_speed(task)
    task = wait_for_state(task, FINAL_STATES, timeout=120)
    # The worker records once the end is committed, a moment after the state shows.
    after = scrape_until(app_server, lambda e: value(e, "vmotion_migrations_total", result="succeeded", reason="completed") > ended_before)

    assert task.state == TaskState.SUCCEEDED, [event.message for event in task.events.all()]
    assert where_runs(name) == [destination.name]
    assert value(running, "vmotion_migration_data_processed_bytes", **migration) > 0
    assert value(running, "vmotion_migrations_in_running_phase") >= 1
    assert task.total_ms and task.downtime_ms is not None

    def grew(sample_name: str, **labels: str) -> float:
        return value(after, sample_name, **labels) - value(before, sample_name, **labels)

    assert grew("vmotion_migrations_total", result="succeeded", reason="completed") == 1
    assert grew("vmotion_migration_duration_seconds_count", result="succeeded") == 1
    assert grew("vmotion_migration_duration_seconds_sum", result="succeeded") == pytest.approx(task.total_ms / 1000)
    assert grew("vmotion_migration_downtime_seconds_count", mode="precopy") == 1
    assert grew("vmotion_migration_downtime_seconds_sum", mode="precopy") == pytest.approx(task.downtime_ms / 1000)
    if task.predicted_total_ms:
        assert grew("vmotion_migration_prediction_ratio_count", figure="duration") == 1
    # Over: no running series for it any more.
    assert not [sample for sample in after["vmotion_migration_data_remaining_bytes"].samples if sample.labels["vm"] == name]
