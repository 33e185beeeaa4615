"""Balancing a cluster from the inventory: the page, Apply, the policy, and automatic rounds."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from inventory.models import VirtualMachine
from migrations_app.automation import balancing as balance
from migrations_app.automation import recommendations
from migrations_app.choices import AutomationLevel, TaskState
from migrations_app.models import BalancingPolicy, MigrationTask
from tests.api import token_client
from tests.driver_hosts import measured
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


def test_the_cluster_page_shows_the_load_and_a_recommendation_that_applies_as_a_task(client_as, operator, cluster, libvirt_forbidden):
    client = client_as(operator)
    for vm in VirtualMachine.objects.filter(name__startswith="app-"):
        measured(vm, seconds_ago=40, dirty_rate_bytes_s=2 * 1000**2, resident_bytes=GIB)

    recommendations.compute(cluster)  # as the scheduler does in the background

    page = client.get(reverse("cluster-detail", args=[cluster.pk])).content.decode()

    assert "busy → idle" in page and "spread drops from" in page
    # The recommendation's forecast, from the inventory's measurement, says how old it is.
    forecast = re.search(r'data-testid="recommendation-forecast">(.*?)</td>', page).group(1)
    assert re.search(r"about \d+ s with a \d+ ms pause <span[^>]*>\(measured 4\d s ago\)", forecast), forecast
    assert libvirt_forbidden == []
    state = balance.cluster_balance(cluster)
    [first, *_] = state.recommendations
    response = client.post(reverse("cluster-apply", args=[cluster.pk]), {"vm": first.vm.vm_id, "to": first.destination_id})
    task = MigrationTask.objects.get()
    assert response.status_code == 302 and task.destination.name == "idle" and task.requested_by == operator
    assert task.reason.startswith("Balancing cluster prod: load spread")


def test_a_recommendation_that_no_longer_holds_is_refused_and_changes_nothing(client_as, operator, cluster):
    response = client_as(operator).post(reverse("cluster-apply", args=[cluster.pk]), {"vm": "999", "to": "1"}, follow=True)

    assert "no longer holds" in response.content.decode() and not MigrationTask.objects.exists()


def test_policy_values_out_of_range_get_a_field_error(client_as, administrator, cluster):
    response = client_as(administrator).post(reverse("cluster-policy", args=[cluster.pk]), {
        "level": "automatic", "threshold": "9", "max_moves": "2", "interval_minutes": "5", "cooldown_minutes": "30",
    })

    assert response.status_code == 400 and 'data-testid="field-error-threshold"' in response.content.decode()
    assert BalancingPolicy.of(cluster).level == "manual"


def test_an_automatic_round_applies_then_waits_for_its_moves_and_never_moves_a_vm_back(cluster):
    BalancingPolicy.objects.update_or_create(cluster=cluster, defaults={"level": "automatic", "max_moves": 1, "interval_minutes": 1})

    assert balance.automatic_rounds() == 1
    task = MigrationTask.objects.get()
    assert task.destination.name == "idle" and "Automatic balancing of cluster prod" in task.events.last().message

    BalancingPolicy.objects.update(last_round_at=None)
    assert balance.automatic_rounds() == 0  # its migration is under way: the cluster waits

    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING)
    task.transition(TaskState.SUCCEEDED, "moved")
    task.vm.host = task.destination
    task.vm.save()
    BalancingPolicy.objects.update(last_round_at=None)
    balance.automatic_rounds()
    assert not MigrationTask.objects.filter(vm=task.vm).exclude(pk=task.pk).exists()  # in its cooldown, it stays


def test_the_cli_shows_the_recommendations_and_applies_them_with_json(cluster, operator, no_inventory_worker):
    out, err = StringIO(), StringIO()
    call_command("vmotion", "balance", "prod", "--apply", "--user", "operator", "--json", stdout=out, stderr=err)

    result = json.loads(out.getvalue())
    assert result["recommendations"] and result["recommendations"][0]["to"] == "idle"
    assert len(result["tasks"]) == len(result["recommendations"]) == MigrationTask.objects.count()
    # Each move's forecast, or why there is none: the inventory has not measured these guests.
    assert result["recommendations"][0]["predicted_total_ms"] is None
    assert "no forecast (Not measured yet: no inventory worker is running.)" in err.getvalue()


OFF_REASON = "Balancing of cluster prod is off: no recommendation is applied."


def set_level(cluster, level: str) -> None:
    BalancingPolicy.objects.update_or_create(cluster=cluster, defaults={"level": level})


def apply_through(door: str, cluster, operator, client_as) -> str:
    """Apply every recommendation of `cluster` through a door; what it answered."""
    if door == "page":
        response = client_as(operator).post(reverse("cluster-apply", args=[cluster.pk]), {"all": "1"}, follow=True)
        assert response.status_code == 200
        return response.content.decode()
    if door == "api":
        response = token_client(operator).post(f"/api/v1/clusters/{cluster.pk}/balance/")
        return f"{response.status_code} {response.json()}"
    out = StringIO()
    try:
        call_command("vmotion", "balance", "prod", "--apply", "--user", "operator", stdout=out)
    except CommandError as error:
        return f"refused: {error}"
    return out.getvalue()


@pytest.mark.parametrize("door", ["page", "api", "cli"])
def test_balancing_off_applies_no_recommendation_through_any_door_and_says_why(door, client_as, operator, cluster):
    set_level(cluster, AutomationLevel.OFF)
    assert balance.cluster_balance(cluster).recommendations  # there is a move to refuse

    answer = apply_through(door, cluster, operator, client_as)

    assert OFF_REASON in answer
    assert {"page": "An administrator can set it", "api": "409 ", "cli": "refused: "}[door] in answer
    assert not MigrationTask.objects.exists()


@pytest.mark.parametrize("level", [AutomationLevel.MANUAL, AutomationLevel.AUTOMATIC])
@pytest.mark.parametrize("door", ["page", "api", "cli"])
def test_balancing_manual_or_automatic_applies_the_recommendations_through_every_door(door, level, client_as, operator, cluster):
    set_level(cluster, level)
    expected = [(r.vm.facts.name, r.destination_id) for r in balance.cluster_balance(cluster).recommendations]

    answer = apply_through(door, cluster, operator, client_as)

    tasks = MigrationTask.objects.order_by("pk")
    assert expected and [(task.vm.name, task.destination_id) for task in tasks] == expected
    assert all(task.requested_by == operator and task.destination.name == "idle" for task in tasks)
    assert OFF_REASON not in answer
    if door == "api":
        assert answer.startswith("202 ") and str([task.pk for task in tasks]) in answer


def test_the_page_of_a_cluster_with_balancing_off_shows_the_moves_without_apply_and_says_why(client_as, operator, cluster):
    set_level(cluster, AutomationLevel.OFF)
    recommendations.compute(cluster)

    page = client_as(operator).get(reverse("cluster-detail", args=[cluster.pk])).content.decode()

    assert "busy → idle" in page and 'data-testid="apply-refused"' in page and OFF_REASON in page
    assert reverse("cluster-apply", args=[cluster.pk]) not in page


def test_applying_a_recommendation_of_a_cluster_with_balancing_off_is_refused_at_the_source(cluster):
    set_level(cluster, AutomationLevel.OFF)
    state = balance.cluster_balance(cluster)

    with pytest.raises(balance.BalancingOff, match=OFF_REASON):
        balance.apply(state, state.recommendations[0])

    assert not MigrationTask.objects.exists()


@pytest.mark.parametrize("level, moves", [(AutomationLevel.OFF, 0), (AutomationLevel.MANUAL, 0), (AutomationLevel.AUTOMATIC, 1)])
def test_only_an_automatic_cluster_gets_automatic_rounds(level, moves, cluster):
    BalancingPolicy.objects.update_or_create(cluster=cluster, defaults={"level": level, "max_moves": 1, "interval_minutes": 1})

    assert balance.automatic_rounds() == moves

    assert MigrationTask.objects.count() == moves


def test_an_automatic_round_waits_while_a_migration_comes_into_the_cluster(cluster):
    BalancingPolicy.objects.update_or_create(cluster=cluster, defaults={"level": "automatic", "max_moves": 1, "interval_minutes": 1})
    elsewhere = HostFactory(name="elsewhere", cluster=ClusterFactory(name="other"), uri="test:///default", last_seen=timezone.now(), last_error="")
    arriving = VirtualMachineFactory(name="arriving", host=elsewhere, cpu_cores_used=0.5, memory_in_use_bytes=GIB)
    incoming = MigrationTask.objects.create(vm=arriving, source=elsewhere, destination=cluster.hosts.get(name="idle"))

    assert balance.automatic_rounds() == 0  # the idle host's load is about to change: the cluster waits

    assert list(MigrationTask.objects.all()) == [incoming]
    incoming.transition(TaskState.CANCELLED, "cancelled")
    BalancingPolicy.objects.update(last_round_at=None)
    assert balance.automatic_rounds() == 1  # once it has ended, the round goes ahead
