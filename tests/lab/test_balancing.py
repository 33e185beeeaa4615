"""Balancing and affinity rules against the lab: the load libvirt measures drives a
recommendation to the idle host, the scheduler applies it in automatic mode and later rounds
do not move it back, and VMs kept apart never share a host, through maintenance too. virsh
says where each guest runs, and every guest keeps its memory intact."""

import subprocess
import sys
import time

import pytest

from inventory import sync
from inventory.models import Host, VirtualMachine
from migrations_app.affinity import store as affinity_rules
from migrations_app.automation import balancing as balance
from migrations_app.automation import maintenance
from migrations_app.choices import ACTIVE_STATES, AutomationLevel, EvacuationState, RuleKind, RuleStrength, TaskState
from migrations_app.models import BalancingPolicy, MigrationTask
from migrations_app.options import MigrationOptions
from migrations_app.services import submit_migration
from tests.processes import ROOT, process_env

from tests.lab.conftest import wait_for_state, where_runs
from .test_maintenance import wait_until_ended

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def wait_for_no_migration(timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while MigrationTask.objects.filter(state__in=ACTIVE_STATES).exists():
        assert time.monotonic() < deadline, list(MigrationTask.objects.filter(state__in=ACTIVE_STATES).values_list("vm__name", "state"))
        time.sleep(0.3)


def move(vm_name: str, host: Host) -> None:
    task = submit_migration(VirtualMachine.objects.get(name=vm_name), host, MigrationOptions(reason="setting the load up"))
    assert wait_for_state(task, {TaskState.SUCCEEDED, TaskState.FAILED}, timeout=120).state == TaskState.SUCCEEDED, task.error


def measured_load() -> None:
    """Two inventory reads a few seconds apart: each guest's CPU demand over that window."""
    sync.sync_all_hosts()
    time.sleep(4)
    sync.sync_all_hosts()


def test_the_loaded_host_gives_a_guest_to_the_idle_one_and_automatic_rounds_do_not_move_it_back(
    lab_inventory, workers, home_hosts, guests_stay_intact
):
    host1, host2, host3 = (Host.objects.get(name=f"lab-host{n}") for n in (1, 2, 3))
    cluster = host1.cluster
    # lab-vm4 rewrites its memory faster than the link moves it: a rule keeps it home.
    affinity_rules.add_rule(cluster, "busy-stays", RuleKind.ON_HOSTS, RuleStrength.MUST, [VirtualMachine.objects.get(name="lab-vm4")], [host1])
    # lab-host1 takes lab-host3's guests: five guests, the busy one among them, and lab-host3 idles.
    for name in ("lab-vm3", "lab-vm6"):
        move(name, host1)
    assert where_runs("lab-vm3") == where_runs("lab-vm6") == ["lab-host1"]
    policy = BalancingPolicy.of(cluster)
    policy.threshold, policy.max_moves, policy.cooldown_minutes = 5, 1, 30
    policy.save()
    measured_load()

    state = balance.cluster_balance(cluster)
    (first,) = state.recommendations
    assert (first.source_id, first.destination_id) == (host1.pk, host3.pk), first
    assert first.vm.facts.name != "lab-vm4"  # the rule holds it
    assert first.spread_after < first.spread_before
    forecast = balance.forecast_recommendations(state)[first.vm.vm_id]
    assert forecast.forecast is not None and forecast.forecast.prediction.total_ms > 0, forecast.error

    # Off means off: the command line refuses to apply the move, and no round applies it.
    policy.level = AutomationLevel.OFF
    policy.save()
    refused = subprocess.run(
        [sys.executable, "manage.py", "vmotion", "balance", cluster.name, "--apply", "--json"],
        cwd=ROOT, env=process_env(), capture_output=True, text=True, timeout=120,
    )
    assert refused.returncode != 0 and f"Balancing of cluster {cluster.name} is off" in refused.stdout, refused.stdout + refused.stderr
    time.sleep(3)  # three of the scheduler's rounds
    assert not MigrationTask.objects.filter(reason__startswith="Balancing cluster").exists()

    policy.level = AutomationLevel.AUTOMATIC
    policy.save()  # the scheduler's next round (every second here) applies it
    deadline = time.monotonic() + 30
    while not MigrationTask.objects.filter(reason__startswith="Balancing cluster").exists():
        assert time.monotonic() < deadline, "no automatic round applied the recommendation"
        time.sleep(0.3)
    wait_for_no_migration()
    (applied,) = MigrationTask.objects.filter(reason__startswith="Balancing cluster")
    assert applied.state == TaskState.SUCCEEDED, applied.error
    assert any("Automatic balancing of cluster" in event.message for event in applied.events.all())
    moved = applied.vm.name
    assert where_runs(moved) == ["lab-host3"]

    for _ in range(2):  # two more rounds on fresh measurements
        measured_load()
        BalancingPolicy.objects.filter(pk=policy.pk).update(last_round_at=None)
        deadline = time.monotonic() + 30
        while BalancingPolicy.objects.get(pk=policy.pk).last_round_at is None:
            assert time.monotonic() < deadline, "the scheduler ran no balancing round"
            time.sleep(0.3)
        wait_for_no_migration()
    assert where_runs(moved) == ["lab-host3"]
    assert MigrationTask.objects.filter(vm__name=moved, reason__startswith="Balancing cluster").count() == 1
    assert not MigrationTask.objects.filter(reason__startswith="Balancing cluster", source=host3, destination=host1).exists()
    assert where_runs("lab-vm4") == ["lab-host1"]


def test_vms_kept_apart_never_share_a_host_through_maintenance(lab_inventory, workers, home_hosts, guests_stay_intact):
    host1, host2, host3 = (Host.objects.get(name=f"lab-host{n}") for n in (1, 2, 3))
    # lab-vm1 runs on lab-host1, lab-vm2 on lab-host2; lab-host1 has room for lab-vm2.
    apart = [VirtualMachine.objects.get(name=name) for name in ("lab-vm1", "lab-vm2")]
    affinity_rules.add_rule(host1.cluster, "vm1-vm2-apart", RuleKind.APART, RuleStrength.MUST, apart)

    plan = maintenance.plan(host2, measure=False)
    assert {item.vm.name: item.destination.name for item in plan.placed}["lab-vm2"] == "lab-host3"
    evacuation = wait_until_ended(maintenance.enter(host2))
    assert evacuation.state == EvacuationState.COMPLETED, evacuation.message
    assert where_runs("lab-vm1") == ["lab-host1"] and where_runs("lab-vm2") == ["lab-host3"]

    # With lab-host2 still in maintenance, lab-host3's evacuation has nowhere for lab-vm2 but
    # lab-vm1's host: it stops with the rule named and lab-vm2 stays where it runs.
    evacuation = wait_until_ended(maintenance.enter(Host.objects.get(pk=host3.pk)))
    assert evacuation.state == EvacuationState.STOPPED
    assert "lab-vm2" in evacuation.message and "rule 'vm1-vm2-apart'" in evacuation.message, evacuation.message
    assert where_runs("lab-vm2") == ["lab-host3"] and where_runs("lab-vm1") == ["lab-host1"]
    for host in (host2, host3):
        maintenance.exit_maintenance(Host.objects.get(pk=host.pk))
