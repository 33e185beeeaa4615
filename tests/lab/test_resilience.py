"""Migrations that keep their promise under stress: many at once for many rounds, and a
Redis that restarts and forgets every queued job."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from inventory.models import Host, VirtualMachine
from migrations_app import services
from migrations_app.choices import TaskState
from migrations_app.models import MigrationLimits, MigrationTask
from tests import processes
from tests.lab.conftest import FINAL, at_full_speed, final_within, wait_for_state, where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]

IDLE_GUESTS = ["lab-vm1", "lab-vm2", "lab-vm3", "lab-vm5"]
ROUNDS = 8


def next_host(vm: VirtualMachine, hosts: list[Host]) -> Host:
    return hosts[(hosts.index(vm.host) + 1) % len(hosts)]


def test_four_guests_moved_at_once_for_eight_rounds_all_arrive(lab, workers, home_hosts):
    """One outgoing migration per host makes some tasks wait for a slot and be picked up again
    by another worker: no task may be taken for an orphan meanwhile."""
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 1, "max_incoming_per_host": 2, "max_concurrent": 8})
    fourth_worker = processes.start_worker(3)
    hosts = list(Host.objects.order_by("name"))
    try:
        for round_number in range(1, ROUNDS + 1):
            tasks = []
            for name in IDLE_GUESTS:
                vm = VirtualMachine.objects.select_related("host").get(name=name)
                tasks.append(services.submit_migration(vm, next_host(vm, hosts), services.MigrationOptions()))
            for task in tasks:
                task = wait_for_state(task, FINAL, timeout=180)
                assert task.state == TaskState.SUCCEEDED, (round_number, task.vm.name, task.error, [e.message for e in task.events.all()])
                assert where_runs(task.vm.name) == [task.destination.name], (round_number, task.vm.name)
    finally:
        processes.stop(fourth_worker)
    waited = MigrationTask.objects.filter(events__to_state=TaskState.WAITING).distinct().count()
    assert waited > 0, "no task ever waited for a slot, so the round trip through a second worker went untested"


def test_tasks_whose_jobs_redis_lost_in_a_restart_are_queued_again_and_all_arrive(lab_inventory, home_hosts, own_redis, record_property):
    redis_url, restart_redis = own_redis.url, own_redis.restart
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 2, "max_incoming_per_host": 2, "max_concurrent": 1})
    hosts = list(Host.objects.order_by("name"))
    moves = []
    for name in ("lab-vm1", "lab-vm2", "lab-vm3"):
        vm = VirtualMachine.objects.select_related("host").get(name=name)
        moves.append((name, next_host(vm, hosts).name))
    # One worker: while it migrates the first VM, the other two tasks' jobs wait in Redis.
    worker = processes.start_worker(0, REDIS_URL=redis_url)
    scheduler = processes.start_scheduler(REDIS_URL=redis_url)
    try:
        # Slow enough to outlast the two submissions below, each a process of its own, made at
        # once (5-8 s on a busy machine), and short of the 60 s completion timeout.
        task_ids = [processes.submit_with_cli(moves[0][0], moves[0][1], "--bandwidth", "3", REDIS_URL=redis_url)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            task_ids += pool.map(lambda move: processes.submit_with_cli(*move, REDIS_URL=redis_url), moves[1:])
        first = wait_for_state(MigrationTask.objects.get(pk=task_ids[0]), [TaskState.MIGRATING], timeout=120)
        assert MigrationTask.objects.filter(pk__in=task_ids[1:], state=TaskState.QUEUED).count() == 2

        restarted = time.monotonic()
        restart_redis()
        at_full_speed(first)  # the cap only kept it under way while the others queued

        for task_id in task_ids:
            task = final_within(MigrationTask.objects.get(pk=task_id), 240, restarted)
            last_final = time.monotonic() - restarted
            assert task.state == TaskState.SUCCEEDED, (task.vm.name, task.error, [e.message for e in task.events.all()])
            assert where_runs(task.vm.name) == [task.destination.name]
        record_property("seconds_to_final", f"{last_final:.1f}")  # when the last of the three was final
    finally:
        processes.stop_all([worker, scheduler])
