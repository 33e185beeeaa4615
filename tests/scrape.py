"""Reading /metrics as Prometheus does: the exposition parsed by prometheus_client's parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

# The METRICS_TOKEN of the test processes (tests.production_server gives it to gunicorn), as a
# deployment gives its Prometheus one: without it /metrics answers 401 when DEBUG is off.
TOKEN = "test-metrics-token"
AUTHORIZATION = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def over_http(url: str) -> str:
    """The exposition at `url`, asked for as Prometheus asks."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


def families(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(exposition: dict[str, Metric], sample_name: str, **labels: str) -> float:
    """The sample's value, 0 when the scrape has no such series (a counter not yet counted)."""
    for family in exposition.values():
        for sample in family.samples:
            if sample.name == sample_name and sample.labels == labels:
                return sample.value
    return 0.0


def sample_names(exposition: dict[str, Metric]) -> set[str]:
    return {sample.name for family in exposition.values() for sample in family.samples}


def labels_of(exposition: dict[str, Metric], sample_name: str) -> set[str]:
    return {label for family in exposition.values() for sample in family.samples if sample.name == sample_name for label in sample.labels}


def a_series_of_every_metric() -> None:
    """Data behind at least one series of every metric /metrics exports: a running
    migration with a progress sample and a slot, a synced host, and one succeeded end."""
    from django.utils import timezone

    from migrations_app.metrics import recording as metrics
    from migrations_app.choices import EndReason, TaskState
    from migrations_app.models import MigrationTask, ProgressSample
    from tests.factories import HostFactory, VirtualMachineFactory

    now = timezone.now()
    source, destination = HostFactory(last_seen=now), HostFactory()
    running = MigrationTask.objects.create(
        vm=VirtualMachineFactory(host=source), source=source, destination=destination, state=TaskState.MIGRATING, slot_granted_at=now,
    )
    ProgressSample.objects.create(task=running, elapsed_ms=500, data_remaining=2**20, data_processed=2**21, dirty_rate_bytes_s=10, throughput_bytes_s=20)
    metrics.record(metrics.Ending(
        result=TaskState.SUCCEEDED, reason=EndReason.COMPLETED, post_copy=False, started_at=now, finished_at=now,
        total_ms=4000, downtime_ms=120, predicted_total_ms=5000, predicted_downtime_ms=100,
    ))
