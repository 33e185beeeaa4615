"""Balancing recommendations computed in the background: the scheduler's round computes and
stores each cluster's, with their forecasts; a page's "recompute now" makes them due; what is
stored says which VMs have started moving since."""

from datetime import timedelta

import pytest

from core import scheduler
from inventory.models import VirtualMachine
from migrations_app.automation import recommendations
from migrations_app.models import ClusterRecommendations, MigrationTask
from tests.driver_hosts import measured
from tests.factories import ClusterFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


def test_the_scheduler_runs_the_round_that_computes_them():
    task = scheduler.periodic_registry["balancing recommendations"]

    assert task.action == "migrations_app.automation.recommendations.due_round" and task.interval == "RECOMMENDATION_TICK_SECONDS"


def test_a_round_computes_and_stores_each_clusters_recommendations_with_their_forecasts(cluster, settings, libvirt_forbidden):
    settings.RECOMMENDATION_INTERVAL_SECONDS = 300
    for vm in VirtualMachine.objects.filter(name__startswith="app-"):
        measured(vm, seconds_ago=40, dirty_rate_bytes_s=2 * 1000**2, resident_bytes=GIB)

    assert recommendations.due_round() == 1

    record = ClusterRecommendations.objects.get(cluster=cluster)
    [move, *_] = recommendations.latest(cluster).moves
    assert (move.source_name, move.destination_name) == ("busy", "idle") and move.vm_name.startswith("app-")
    assert move.has_forecast and move.total_ms > 0 and move.measured_ago.startswith("measured 4")
    assert record.spread > 0 and record.error == "" and record.computed_at is not None
    assert timedelta(seconds=299) < record.due_at - record.computed_at <= timedelta(seconds=300)
    assert recommendations.due_round() == 0  # not due again for five minutes
    assert libvirt_forbidden == []


def test_a_guest_not_measured_yet_is_measured_meanwhile_and_its_cluster_computed_again_soon(cluster, monkeypatch):
    asked = []
    monkeypatch.setattr("inventory.enqueue.ask", lambda *args, **kwargs: asked.append(kwargs["wait_seconds"]) or recommendations.enqueue.Answer(why_not="an inventory worker has been asked to measure it"))

    record = recommendations.compute(cluster)

    assert asked == [0]  # asked, not waited for
    [move, *_] = recommendations.latest(cluster).moves
    assert not move.has_forecast and move.forecast_error == "Not measured yet: an inventory worker has been asked to measure it."
    assert record.due_at - record.computed_at == recommendations.MEASURED_AGAIN_AFTER


def test_recompute_now_makes_the_cluster_due_at_the_next_round(cluster, no_inventory_worker):
    recommendations.compute(cluster)
    assert recommendations.due_round() == 0 and not recommendations.latest(cluster).queued

    recommendations.request(cluster)

    assert recommendations.latest(cluster).queued
    assert recommendations.due_round() == 1 and not recommendations.latest(cluster).queued


def test_a_cluster_without_stored_recommendations_is_queued_and_shows_none(cluster):
    latest = recommendations.latest(cluster)

    assert latest.record is None and latest.moves == [] and latest.queued


def test_a_round_stops_once_its_budget_is_spent_and_the_others_wait_for_the_next(cluster, no_inventory_worker):
    ClusterFactory(name="other")

    assert recommendations.due_round(budget_seconds=0) == 0
    assert recommendations.due_round(budget_seconds=60) == 2


def test_a_cluster_whose_computation_fails_keeps_the_error_and_the_others_are_computed(cluster, monkeypatch, no_inventory_worker):
    other = ClusterFactory(name="other")
    real = recommendations.balance.cluster_balance

    def fails_for_prod(c):
        if c.pk == cluster.pk:
            raise RuntimeError("the database said no")
        return real(c)

    monkeypatch.setattr(recommendations.balance, "cluster_balance", fails_for_prod)

    assert recommendations.due_round() == 2
    assert ClusterRecommendations.objects.get(cluster=cluster).error == "RuntimeError: the database said no"
    assert ClusterRecommendations.objects.get(cluster=other).computed_at is not None


def test_a_stored_move_whose_vm_started_moving_since_says_so(cluster, no_inventory_worker):
    recommendations.compute(cluster)
    [move, *_] = recommendations.latest(cluster).moves
    vm = VirtualMachine.objects.get(pk=move.vm_id)
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination_id=move.destination_id)

    [moving, *_] = recommendations.latest(cluster).moves

    assert moving.task_id == task.pk and moving.vm_id not in [m.vm_id for m in recommendations.latest(cluster).pending]


def test_applied_moves_leave_the_stored_list_and_the_rest_are_computed_again(cluster, no_inventory_worker):
    recommendations.compute(cluster)
    [move, *_] = recommendations.latest(cluster).moves

    recommendations.applied(cluster, [move.vm_id])

    latest = recommendations.latest(cluster)
    assert move.vm_id not in [m.vm_id for m in latest.moves] and latest.queued
