"""Live migration end to end in the lab: real libvirt hosts, real Redis, real rqworker processes.
Each test checks where the VM runs with virsh, an independent client."""

from __future__ import annotations

import json
import signal
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection as db_connection
from django.core.management.base import CommandError

from hypervisor.connection import Connection
from hypervisor.events import event_loop_running
from hypervisor.guest import Guest
from hypervisor.migration import MigrationRequest, MigrationRun
from inventory import sync
from inventory.models import Host, VirtualMachine
from migrations_app import services
from migrations_app.placement import store as assistant
from migrations_app.engine import run as engine
from migrations_app.choices import Priority, TaskState
from migrations_app.forecast.history import first_pass_hints
from migrations_app.models import MigrationLimits, MigrationTask
from migrations_app.options import MigrationOptions
from lab import control as lab_control
from lab.commands import domain_names, virsh
from lab.probes import EchoProbe, SerialWatcher
from tests import processes
from tests.lab.conftest import defined_on, final_within, wait_for_state, where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]


def migrate_cli(*args: str) -> dict:
    out = StringIO()
    call_command("vmotion", "migrate", *args, "--wait", "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def guest(lab, name):
    return next(g for g in lab.guests if g.name == name)


def other_host(vm_name: str) -> str:
    here = VirtualMachine.objects.get(name=vm_name).host.name
    return next(h.name for h in Host.objects.order_by("name") if h.name != here)


def test_an_idle_guest_moves_live_keeping_its_memory_and_its_tcp_connection(lab, workers, home_hosts, operator):
    name = "lab-vm1"
    destination = other_host(name)
    watcher = SerialWatcher(guest(lab, name).serial_log).start()
    echo = EchoProbe(lab.netns, guest(lab, name).ip).start()
    time.sleep(0.5)

    result = migrate_cli(name, "--to", destination, "--max-downtime", "300", "--user", "operator")

    time.sleep(0.5)
    connection = echo.stop()
    serial = watcher.stop()
    assert result["state"] == "succeeded", result
    assert 0 <= result["downtime_ms"] <= 300 and result["total_ms"] > 0 and result["bytes"] > 0
    assert where_runs(name) == [destination] and defined_on(name) == [destination]
    assert serial.kept_running and serial.mismatches == 0 and not serial.missing_seqs, serial
    assert connection.connected and connection.intact and connection.reconnects == 0, connection
    vm = VirtualMachine.objects.get(name=name)
    assert vm.host.name == destination
    assert MigrationTask.objects.get(pk=result["task"]).requested_by == operator


def test_a_guest_moved_after_its_task_was_queued_fails_the_task_saying_where_it_runs_now(lab, lab_inventory, home_hosts):
    name = "lab-vm2"
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    source = vm.host
    elsewhere, destination = Host.objects.exclude(pk=source.pk).order_by("name")
    task = services.submit_migration(vm, destination, MigrationOptions())
    virsh(source.uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource", name, elsewhere.peer_uri)
    # No sync since: the inventory still places it on its old host, as between two syncs.
    assert VirtualMachine.objects.get(name=name).host == source

    engine.run_task(task.pk, queue_granted=lambda granted: None)

    task.refresh_from_db()
    assert task.state == TaskState.FAILED, task.error
    assert task.error == f"{name} now runs on {elsewhere.name}, not on {source.name} as when it was submitted."
    assert where_runs(name) == [elsewhere.name]
    assert VirtualMachine.objects.get(name=name).host == elsewhere


def test_a_guest_dirtying_faster_than_the_link_still_converges_through_the_policy(lab, workers, home_hosts):
    name = "lab-vm4"  # rewrites its working set at 150 MB/s, above the 110 MiB/s cap
    destination = other_host(name)
    watcher = SerialWatcher(guest(lab, name).serial_log).start()

    result = migrate_cli(name, "--to", destination, "--bandwidth", "110", "--max-downtime", "300")

    serial = watcher.stop()
    task = MigrationTask.objects.get(pk=result["task"])
    assert result["state"] == "succeeded", [e.message for e in task.events.all()]
    assert result["downtime_ms"] <= 300
    assert where_runs(name) == [destination]
    assert serial.kept_running and serial.mismatches == 0, serial
    assert task.samples.count() > 0 and task.predicted_total_ms is not None
    # The next forecast knows what the first pass sent: less than QEMU's resident set, which
    # holds QEMU's own memory too, and less than all that moved, which includes the resends.
    hint = first_pass_hints([task.vm])[task.vm.pk]
    assert 0 < hint.sent_bytes < min(task.resident_bytes, task.bytes_transferred), (hint, task.resident_bytes, task.bytes_transferred)


def test_a_new_installations_first_forecast_of_an_idle_guest_is_within_25_percent_of_the_move(lab, workers, home_hosts):
    name = "lab-vm1"  # 128 MiB, rewriting 16 MiB at 1 MB/s
    destination = other_host(name)
    assert not MigrationTask.objects.exists()  # nothing has taught this installation what a first pass sends

    # Capped well below what the machine copies even when other labs load its CPUs (20-30 MiB/s
    # at a load of 30 on 2 cores), so the link's rate is the cap and the memory decides.
    result = migrate_cli(name, "--to", destination, "--bandwidth", "16")

    task = MigrationTask.objects.get(pk=result["task"])
    assert result["state"] == "succeeded", [e.message for e in task.events.all()]
    vm = VirtualMachine.objects.get(name=name)
    sent = first_pass_hints([vm])[vm.pk].sent_bytes
    # The worker sampled the guest's memory: what holds data, far less than QEMU's resident set.
    assert vm.nonzero_memory_bytes is not None and vm.nonzero_memory_bytes < 0.8 * task.resident_bytes, (vm.nonzero_memory_bytes, task.resident_bytes)
    assert abs(vm.nonzero_memory_bytes - sent) <= 0.25 * sent, (vm.nonzero_memory_bytes, sent)
    assert abs(task.predicted_total_ms - task.total_ms) <= 0.25 * task.total_ms, (task.predicted_total_ms, task.total_ms, task.prediction)


def test_post_copy_moves_a_guest_that_outruns_the_link_with_its_memory_intact(lab, workers, home_hosts):
    name = "lab-vm4"  # rewrites 32 MB at 150 MB/s: far above a 20 MiB/s cap
    destination = other_host(name)
    watcher = SerialWatcher(guest(lab, name).serial_log).start()

    result = migrate_cli(name, "--to", destination, "--bandwidth", "20", "--post-copy")

    serial = watcher.stop()
    task = MigrationTask.objects.get(pk=result["task"])
    timeline = [event.message for event in task.events.all()]
    assert result["state"] == "succeeded", timeline
    assert any("switching to post-copy" in message for message in timeline), timeline
    assert any(f"now runs on {destination}; the rest of its memory follows" in message for message in timeline), timeline
    assert where_runs(name) == [destination] and defined_on(name) == [destination]
    assert serial.kept_running and serial.mismatches == 0, serial


def test_libvirt_reports_the_end_of_each_pass_as_it_happens(lab_inventory, home_hosts):
    name = "lab-vm4"  # rewrites 32 MB at 150 MB/s: at 20 MiB/s every pass leaves work for another
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.get(name=other_host(name))
    assert event_loop_running()
    passes: list[int] = []
    with Connection(vm.host.uri, 10) as connection:
        guest = Guest(connection, str(vm.uuid))
        stop = guest.on_pass_end(passes.append)
        request = MigrationRequest(uuid=str(vm.uuid), destination_uri=destination.peer_uri, bandwidth_mib_s=20)
        run = MigrationRun(vm.host.uri, request).start()
        try:
            deadline = time.monotonic() + 60
            while len(passes) < 3 and time.monotonic() < deadline and not run.wait(0.1):
                pass
        finally:
            guest.abort_job()
            assert run.wait(60)
            stop()

    assert len(passes) >= 3 and passes == sorted(set(passes)), passes
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]


def test_cancel_mid_flight_leaves_the_guest_running_on_the_source(lab, workers, home_hosts):
    name = "lab-vm4"
    source = VirtualMachine.objects.get(name=name).host.name
    vm = VirtualMachine.objects.get(name=name)
    task = services.submit_migration(vm, Host.objects.get(name=other_host(name)), services.MigrationOptions(bandwidth_mib_s=5))
    wait_for_state(task, [TaskState.MIGRATING])
    time.sleep(0.5)

    services.cancel_task(task)

    task = wait_for_state(task, [TaskState.CANCELLED, TaskState.FAILED, TaskState.SUCCEEDED])
    assert task.state == TaskState.CANCELLED, task.error
    assert where_runs(name) == [source] and defined_on(name) == [source]
    assert f"still runs on {source}" in task.events.last().message


def test_a_stopped_destination_daemon_fails_clearly_and_leaves_the_vm_alone(lab, lab_config, lab_inventory, home_hosts):
    name = "lab-vm2"
    vm = VirtualMachine.objects.get(name=name)
    source = vm.host.name
    destination = Host.objects.get(name=other_host(name))
    task = services.submit_migration(vm, destination, services.MigrationOptions())
    lab_control.stop_host_daemon(lab_config, destination.name, log=lambda line: None)
    try:
        worker = processes.start_worker()
        try:
            task = wait_for_state(task, [TaskState.FAILED, TaskState.SUCCEEDED, TaskState.CANCELLED])
        finally:
            processes.stop(worker)
    finally:
        lab_control.start_host_daemon(lab_config, destination.name, log=lambda line: None)
    assert task.state == TaskState.FAILED
    assert destination.name in task.error and "not reachable" in task.error
    assert where_runs(name) == [source]


def test_a_stopped_destination_daemon_on_the_cli_is_refused_before_anything_moves(lab, lab_config, lab_inventory):
    name = "lab-vm3"
    destination = Host.objects.get(name=other_host(name))
    lab_control.stop_host_daemon(lab_config, destination.name, log=lambda line: None)
    try:
        sync.sync_host(destination)
        with pytest.raises(CommandError, match="not reachable"):
            migrate_cli(name, "--to", destination.name)
    finally:
        lab_control.start_host_daemon(lab_config, destination.name, log=lambda line: None)
    assert MigrationTask.objects.count() == 0


def test_bad_cli_input_exits_with_a_clear_message_and_changes_nothing(lab_inventory, viewer):
    here = VirtualMachine.objects.get(name="lab-vm1").host.name
    for args, message in (
        (("lab-vm1", "--to", other_host("lab-vm1"), "--user", "viewer"), "does not have the Operator role"),
        (("lab-vm1", "--to", other_host("lab-vm1"), "--user", "nobody-here"), "No active vmotion user"),
        (("no-such-vm", "--to", here), "No VM named"),
        (("lab-vm1", "--to", "no-such-host"), "No host named"),
        (("lab-vm1", "--to", here), "already runs on"),
        (("lab-vm1", "--to", other_host("lab-vm1"), "--max-downtime", "0"), "Max downtime"),
    ):
        with pytest.raises(CommandError, match=message):
            migrate_cli(*args)
    assert MigrationTask.objects.count() == 0


def test_migrations_submitted_at_once_respect_the_limits_and_high_priority_goes_first(lab, workers, home_hosts):
    MigrationLimits.objects.update_or_create(pk=1, defaults={"max_outgoing_per_host": 1, "max_incoming_per_host": 1, "max_concurrent": 2})
    hosts = list(Host.objects.order_by("name"))
    names = ["lab-vm1", "lab-vm2", "lab-vm3", "lab-vm5", "lab-vm6", "lab-vm7"]
    samples, stop_sampling = [], threading.Event()

    def sample_running():
        try:
            while not stop_sampling.is_set():
                samples.append(list(MigrationTask.objects.filter(state__in=(TaskState.MIGRATING, TaskState.POST_COPY)).values_list("source_id", "destination_id")))
                time.sleep(0.05)
        finally:
            db_connection.close()  # this thread's own connection, or the test database stays in use

    sampler = threading.Thread(target=sample_running)
    sampler.start()
    tasks = []
    try:
        for name in names[:-1]:
            vm = VirtualMachine.objects.get(name=name)
            destination = hosts[(hosts.index(vm.host) + 1) % len(hosts)]
            tasks.append(services.submit_migration(vm, destination, services.MigrationOptions(priority=Priority.LOW, bandwidth_mib_s=40)))
        vm = VirtualMachine.objects.get(name=names[-1])
        urgent = services.submit_migration(vm, hosts[(hosts.index(vm.host) + 1) % len(hosts)], services.MigrationOptions(priority=Priority.HIGH, bandwidth_mib_s=40))
        for task in tasks + [urgent]:
            wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED], timeout=240)
    finally:
        stop_sampling.set()
        sampler.join()

    for task in tasks + [urgent]:
        task.refresh_from_db()
        assert task.state == TaskState.SUCCEEDED, (task, task.error)
    assert samples
    for running in samples:
        assert len(running) <= 2
        assert max([sum(1 for s, _ in running if s == h.pk) for h in hosts]) <= 1
        assert max([sum(1 for _, d in running if d == h.pk) for h in hosts]) <= 1
    # No low-priority task took a slot the urgent one needed between its arrival and its own
    # slot. A low-priority task between other hosts may go first while the urgent one's host
    # is busy: a slot nobody ahead can use is not left idle.
    overtaken = [t for t in tasks if t.slot_granted_at > urgent.created_at]
    assert overtaken, "every low-priority task had a slot before the urgent one arrived"
    ahead = [t for t in overtaken if t.slot_granted_at < urgent.slot_granted_at]
    assert not [t for t in ahead if t.source_id == urgent.source_id or t.destination_id == urgent.destination_id], ahead


def test_a_hosts_bandwidth_budget_goes_to_the_high_priority_migration_first_and_then_to_the_rest(lab, workers, home_hosts):
    source = Host.objects.get(name="lab-host1")
    source.migration_bandwidth_mib_s = 15
    source.save()
    normal_vm, high_vm = VirtualMachine.objects.get(name="lab-vm1"), VirtualMachine.objects.get(name="lab-vm7")
    assert normal_vm.host == high_vm.host == source
    normal = services.submit_migration(normal_vm, Host.objects.get(name="lab-host2"), services.MigrationOptions())
    wait_for_state(normal, [TaskState.MIGRATING])
    high = services.submit_migration(high_vm, Host.objects.get(name="lab-host3"), services.MigrationOptions(priority=Priority.HIGH))
    wait_for_state(high, [TaskState.MIGRATING])

    speeds = []  # what libvirt says each migration may use, while either runs
    while MigrationTask.objects.filter(pk__in=(normal.pk, high.pk), state=TaskState.MIGRATING).exists():
        speeds.append(tuple(int(virsh(source.uri, "migrate-getspeed", vm.name, check=False).stdout.strip() or 0) for vm in (high_vm, normal_vm)))
        time.sleep(0.2)
    normal, high = wait_for_state(normal, [TaskState.SUCCEEDED, TaskState.FAILED]), wait_for_state(high, [TaskState.SUCCEEDED, TaskState.FAILED])

    assert normal.state == high.state == TaskState.SUCCEEDED, (normal.error, high.error)
    assert high.finished_at < normal.finished_at  # submitted second, done first
    assert (10, 5) in speeds, speeds  # 4 and 2 of the 6 weights of 15 MiB/s
    assert speeds.index((10, 5)) < max(i for i, (_, normal_speed) in enumerate(speeds) if normal_speed == 15), speeds  # the whole budget once alone
    timeline = [event.message for event in normal.events.all()]
    assert "Bandwidth 5 MiB/s: its share of the 15 MiB/s lab-host1 sends with, by priority (normal, weight 2 of 6 among 2 migrations)." in timeline, timeline
    assert where_runs("lab-vm1") == ["lab-host2"] and where_runs("lab-vm7") == ["lab-host3"]


def test_a_worker_killed_mid_migration_is_reconciled_with_libvirt(lab, lab_inventory, home_hosts, record_property):
    name = "lab-vm2"
    vm = VirtualMachine.objects.get(name=name)
    task = services.submit_migration(vm, Host.objects.get(name=other_host(name)), services.MigrationOptions(bandwidth_mib_s=10))
    worker = processes.start_worker()
    task = wait_for_state(task, [TaskState.MIGRATING])
    # The worker runs the job itself: kill it mid-migration.
    assert int(task.worker.rpartition(":")[2]) == worker.pid
    killed = time.monotonic()
    processes.stop(worker, sig=signal.SIGKILL)

    replacement = processes.start_worker(1)
    scheduler = processes.start_scheduler()
    try:
        task = final_within(task, 120, killed, record_property)
    finally:
        processes.stop_all([replacement, scheduler])
    running = where_runs(name)
    timeline = "\n".join(f"{e.at:%H:%M:%S.%f} {e.message}" for e in task.events.all())
    assert len(running) == 1, running
    assert running == [task.destination.name if task.state == TaskState.SUCCEEDED else task.source.name], timeline
    if task.state == TaskState.SUCCEEDED:
        assert running == [task.destination.name] and "libvirt finished it" in task.events.last().message
        # The figures come from libvirt's statistics of the completed job, not from the lost worker.
        assert task.total_ms > 0 and task.downtime_ms is not None and task.bytes_transferred > 0, task.events.last().message
    else:
        assert running == [task.source.name] and "Worker lost" in task.error


@pytest.mark.parametrize("killed", [False, True], ids=["stopped", "sigkilled"])
def test_a_destination_lost_mid_migration_leaves_the_vm_running_on_the_source(lab, lab_config, workers, home_hosts, killed, record_property):
    name = "lab-vm5"
    vm = VirtualMachine.objects.get(name=name)
    source, destination = vm.host.name, Host.objects.get(name=other_host(name))
    task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=5))
    wait_for_state(task, [TaskState.MIGRATING])
    time.sleep(1)
    lost = time.monotonic()
    lab_control.stop_host_daemon(lab_config, destination.name, log=lambda line: None, kill=killed)
    try:
        task = final_within(task, 120, lost, record_property)
    finally:
        lab_control.start_host_daemon(lab_config, destination.name, log=lambda line: None)
    assert task.state == TaskState.FAILED
    assert f"still runs on {source}" in task.error
    # A killed libvirtd leaves the incoming QEMU behind until the restarted daemon finds its
    # migration gone and ends it; it never ran the guest, whose source was never paused.
    deadline = time.monotonic() + 30
    while where_runs(name) != [source] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert where_runs(name) == [source]
    assert name not in domain_names(destination.uri, all_domains=True)


def test_force_complete_finishes_a_migration_that_would_take_long(lab, workers, home_hosts):
    name = "lab-vm4"
    vm = VirtualMachine.objects.get(name=name)
    destination = Host.objects.get(name=other_host(name))
    task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=30, max_downtime_ms=50, allow_auto_converge=False))
    wait_for_state(task, [TaskState.MIGRATING])
    time.sleep(2)

    services.force_complete(task)

    task = wait_for_state(task, [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED], timeout=120)
    assert task.state == TaskState.SUCCEEDED, task.error
    assert where_runs(name) == [destination.name]
    assert any("Force-complete requested" in e.message for e in task.events.all())
    assert task.downtime_ms > 50  # the operator accepted a longer pause than the SLO


@pytest.mark.parametrize("killed", [False, True], ids=["stopped", "sigkilled"])
def test_a_source_lost_mid_migration_ends_with_the_vm_on_exactly_one_host(lab, lab_config, workers, home_hosts, killed, record_property):
    name = "lab-vm6"
    vm = VirtualMachine.objects.get(name=name)
    source, destination = vm.host, Host.objects.get(name=other_host(name))
    task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=5))
    wait_for_state(task, [TaskState.MIGRATING])
    time.sleep(1)
    lost = time.monotonic()
    lab_control.stop_host_daemon(lab_config, source.name, log=lambda line: None, kill=killed)
    time.sleep(3)
    assert not MigrationTask.objects.get(pk=task.pk).is_final, "no verdict while the source is silent"
    lab_control.start_host_daemon(lab_config, source.name, log=lambda line: None)
    task = final_within(task, 120, lost, record_property)
    # QEMU moves the memory itself, so the move may finish without the source's libvirtd.
    # Either way the VM must end on exactly one host, and the task must say which and why.
    timeline = [e.message for e in task.events.all()]
    assert any(f"{source.name} stopped answering" in line for line in timeline), "\n".join(timeline)
    said = task.error if task.state == TaskState.FAILED else timeline[-1]
    assert "lost contact with a host" in said
    expected = destination.name if task.state == TaskState.SUCCEEDED else source.name
    assert where_runs(name) == [expected], said


def test_the_assistants_first_choice_takes_the_vm(lab, workers, home_hosts):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm1")
    ranking = assistant.recommend(vm)

    assert {choice.host.name for choice in ranking} == {h.name for h in Host.objects.exclude(pk=vm.host_id)}
    assert all(choice.eligible for choice in ranking), [(c.host.name, c.blocked_by) for c in ranking]
    best = ranking[0].host.name
    result = migrate_cli("lab-vm1", "--to", best)

    assert result["state"] == "succeeded" and where_runs("lab-vm1") == [best]
