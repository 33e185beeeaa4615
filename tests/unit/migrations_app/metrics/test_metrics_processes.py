"""What several processes record adds up in one scrape: processes that really run (a
Python process, an RQ worker's work horse, gunicorn's workers) share the test session's
directory of metric files, as a deployment's processes share theirs, and the files of
finished processes are folded without losing a count."""

import glob
import os
import subprocess
import sys

import django_rq
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from core import metric_files
from migrations_app.metrics import recording as metrics
from migrations_app.choices import EndReason, TaskState
from tests.processes import ROOT, process_env
from tests.scrape import AUTHORIZATION, TOKEN, families, over_http, value

RECORD_A_FAILURE = """
import os
import django
django.setup()
from tests.unit.migrations_app.metrics.test_metrics_processes import record_a_failure
print(record_a_failure())
"""


def record_a_failure() -> int:
    """One failed migration of 3 s, as a worker records it; returns the process's pid."""
    metrics.record(metrics.Ending(
        result=TaskState.FAILED, reason=EndReason.PREFLIGHT, post_copy=False, started_at=None, finished_at=None,
        total_ms=3000, downtime_ms=None, predicted_total_ms=None, predicted_downtime_ms=None,
    ))
    return os.getpid()


def record_in_another_process(**env: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", RECORD_A_FAILURE], cwd=ROOT, env=process_env(**env), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def files_of(pid: int) -> list[str]:
    return glob.glob(os.path.join(metric_files.directory(), f"*_{metric_files.pid_namespace()}-{pid}.db"))


def failures(exposition) -> tuple[float, float, float]:
    return (
        value(exposition, "vmotion_migrations_total", result="failed", reason="preflight"),
        value(exposition, "vmotion_migration_duration_seconds_count", result="failed"),
        value(exposition, "vmotion_migration_duration_seconds_sum", result="failed"),
    )


def series(metric_families, names: set[str]) -> dict:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metric_families if family.name in names for sample in family.samples
    }


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN
    return lambda: families(client.get("/metrics", **AUTHORIZATION).content.decode())


@pytest.mark.django_db
def test_what_this_process_and_another_one_record_shows_in_one_scrape(scrape):
    before = failures(scrape())

    record_a_failure()
    record_in_another_process()

    count, observed, seconds = (after - earlier for after, earlier in zip(failures(scrape()), before))
    assert (count, observed, seconds) == (2, 2, pytest.approx(6.0))


@pytest.mark.django_db
def test_a_finished_process_files_are_folded_and_its_counts_kept(scrape):
    pid = record_in_another_process()
    assert {os.path.basename(file).split("_")[0] for file in files_of(pid)} >= {"counter", "histogram"}
    recorded = {"vmotion_migrations", "vmotion_migration_duration_seconds"}
    unfolded = series(MultiProcessCollector.merge(glob.glob(os.path.join(metric_files.directory(), "*.db"))), recorded)

    first = scrape()

    assert files_of(pid) == []
    assert os.path.exists(os.path.join(metric_files.directory(), "counter_folded.db"))
    assert series(first.values(), recorded) == unfolded
    assert series(scrape().values(), recorded) == unfolded


@pytest.mark.django_db
def test_a_file_another_process_has_created_but_not_sized_yet_is_read_as_holding_nothing(scrape):
    # A process creates its file empty and sizes it a moment later, with no lock held: a
    # scrape in between sees it empty. Named by this (running) process: not folded.
    record_a_failure()
    before = failures(scrape())
    creating = os.path.join(metric_files.directory(), f"gauge_livesum_{metric_files.process_identity()}.db")
    open(creating, "wb").close()
    try:
        assert failures(scrape()) == before
    finally:
        os.remove(creating)


@pytest.mark.django_db
def test_an_empty_file_a_process_left_when_it_ended_before_sizing_it_is_folded_away(scrape):
    record_a_failure()
    before = failures(scrape())
    ended = subprocess.Popen(["true"])  # a pid that no longer runs
    ended.wait()
    left_empty = os.path.join(metric_files.directory(), f"counter_{metric_files.pid_namespace()}-{ended.pid}.db")
    open(left_empty, "wb").close()

    after = failures(scrape())

    assert not os.path.exists(left_empty)
    assert after == before


@pytest.mark.django_db
def test_a_process_that_records_nothing_leaves_no_file_of_vmotion_and_the_rest_is_folded(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", "import os, django; django.setup(); from migrations_app import metrics; print(os.getpid())"],
        cwd=ROOT, env=process_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path)), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    left = os.listdir(tmp_path)
    # A library's metric without labels (django-rq's summary) has its file from the start.
    assert not [name for name in left if name.startswith(("counter_", "histogram_"))]
    assert all(name.endswith(f"_{metric_files.pid_namespace()}-{result.stdout.split()[-1]}.db") for name in left), left

    metric_files.fold_finished_processes(str(tmp_path))

    assert not [name for name in os.listdir(tmp_path) if name.endswith(f"-{result.stdout.split()[-1]}.db")]


@pytest.mark.django_db
def test_a_worker_records_in_its_own_process_and_its_files_are_folded_once_it_ended(scrape):
    queue = django_rq.get_queue("low")
    queue.empty()
    before = failures(scrape())
    job = queue.enqueue(record_a_failure)

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "rqworker", "low", "--burst", "--worker-class", "migrations_app.engine.worker.VmotionWorker"],
        cwd=ROOT, env=process_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _, errors = worker.communicate(timeout=120)

    assert worker.returncode == 0, errors
    job.refresh()
    assert job.return_value() == worker.pid  # no work horse: the job ran in the worker
    metric_files.fold_finished_processes()
    assert files_of(worker.pid) == []
    assert failures(scrape())[0] - before[0] == 1


@pytest.mark.django_db(transaction=True)
def test_every_gunicorn_worker_shows_what_other_processes_recorded(app_server):
    def scrape_over_http():
        return families(over_http(f"{app_server.url}/metrics"))

    before = failures(scrape_over_http())

    record_a_failure()
    record_in_another_process()

    # gunicorn runs two workers here: whichever answers, the sum is the same.
    grown = {tuple(round(after - earlier, 6) for after, earlier in zip(failures(scrape_over_http()), before)) for _ in range(6)}
    assert grown == {(2, 2, 6.0)}
