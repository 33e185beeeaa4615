"""Faults in vmotion's own services while a lab guest moves. After each, the guest runs on
exactly one host per virsh, its memory is intact, and the task is final and says what
happened."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from inventory.models import Host, VirtualMachine
from lab import link
from lab.commands import virsh
from lab.config import LabError
from lab.hosts import host_subdir
from lab.processes import start_in_session, stop_session
from migrations_app import services
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask, ProgressSample
from tests import processes
from tests.lab.conftest import FINAL, at_full_speed, defined_on, final_within, timeline, wait_for_state, where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]

OUTAGE_NOTED = "The database did not answer for"  # the worker's note, once the database answers again


def terminate_every_other_connection() -> int:
    """As an administrator's pg_terminate_backend: every session of the database but the
    test's own (the workers', the scheduler's) is dropped by the server."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def wait_for_progress(task: MigrationTask, timeout: float = 60) -> None:
    """Until memory flows: the stream is open and the copy under way."""
    deadline = time.monotonic() + timeout
    while not ProgressSample.objects.filter(task=task, data_processed__gt=0).exists():
        assert time.monotonic() < deadline, "the migration reported no progress"
        time.sleep(0.1)


def moving(name: str, bandwidth_mib_s: int) -> tuple[VirtualMachine, Host, MigrationTask]:
    """The guest, where it goes and its task, once the capped copy is under way."""
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=bandwidth_mib_s))
    wait_for_state(task, [TaskState.MIGRATING])
    wait_for_progress(task)
    return vm, destination, task


def test_the_database_dropping_the_workers_connections_mid_migration_loses_nothing(lab, workers, home_hosts, record_property):
    name = "lab-vm3"
    vm, destination, task = moving(name, bandwidth_mib_s=5)

    dropped = time.monotonic()
    assert terminate_every_other_connection() > 0

    # Once the worker is back on the database, the cap that kept the copy going has served.
    deadline = time.monotonic() + 60
    while not task.events.filter(message__contains=OUTAGE_NOTED).exists():
        task.refresh_from_db()
        if task.is_final:
            break
        assert time.monotonic() < deadline, timeline(task)
        time.sleep(0.1)
    at_full_speed(task)
    task = final_within(task, 120, dropped, record_property)
    assert task.state == TaskState.SUCCEEDED, timeline(task)
    assert where_runs(name) == [destination.name] and defined_on(name) == [destination.name]
    assert "The database did not answer for" in timeline(task)
    # Nothing else was lost either: the next migration of the guest, back, goes through.
    back = services.submit_migration(VirtualMachine.objects.get(name=name), Host.objects.get(pk=vm.host_id), services.MigrationOptions())
    back = wait_for_state(back, FINAL, timeout=120)
    assert back.state == TaskState.SUCCEEDED, timeline(back)
    assert where_runs(name) == [vm.host.name]


def qemu_pid(lab_config, host: str, vm_name: str) -> int:
    """The QEMU of the guest on `host`, from the pid file of that host's libvirtd. (Not a search
    by command line: every lab host's QEMU runs on this one machine.)"""
    pid = int((host_subdir(lab_config, host, "run") / "qemu" / f"{vm_name}.pid").read_text())
    assert Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"/usr/bin/qemu-system")
    return pid


def incoming_qemu_pid(lab_config, host: str, vm_name: str) -> int:
    """The QEMU that receives the guest on `host`, which the destination's libvirtd started for
    this migration. (A guest that arrived by an earlier migration runs in a QEMU started with
    `-incoming` too: only the pid file tells them apart.)"""
    pid = qemu_pid(lab_config, host, vm_name)
    assert "-incoming" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    return pid


def test_the_destinations_incoming_qemu_killed_mid_migration_leaves_the_guest_on_its_source(lab, lab_config, workers, home_hosts, record_property):
    name = "lab-vm5"
    vm, destination, task = moving(name, bandwidth_mib_s=2)

    killed = time.monotonic()
    os.kill(incoming_qemu_pid(lab_config, destination.name, name), signal.SIGKILL)

    task = final_within(task, 60, killed, record_property)
    assert task.state == TaskState.FAILED, timeline(task)
    assert f"still runs on {vm.host.name}" in task.error
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]
    assert VirtualMachine.objects.get(name=name).host == vm.host


def test_the_migration_link_cut_mid_pre_copy_fails_the_task_with_the_guest_on_its_source(lab, lab_config, workers, home_hosts, record_property):
    name = "lab-vm2"
    vm, destination, task = moving(name, bandwidth_mib_s=5)

    with link.down(lab_config, destination.name) as cut:
        task = final_within(task, 60, cut, record_property)

    assert task.state == TaskState.FAILED, timeline(task)
    assert "the migration link is down" in task.error and f"still runs on {vm.host.name}" in task.error, task.error
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]


def wait_for_libvirt_to_let_go(uri: str, name: str, timeout: float = 150) -> None:
    """Until libvirt on the host gives the domain's job statistics again: it holds the domain
    while it connects to a destination, and the next test must find it free."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if virsh(uri, "domjobinfo", name, timeout=5, check=False).returncode == 0:
                return
        except LabError:
            pass  # the call waited for the job: libvirt still connects
        assert time.monotonic() < deadline, f"libvirt still holds {name}'s job"
        time.sleep(1)


def test_the_migration_link_down_before_the_stream_opens_fails_the_task_within_a_minute(lab, lab_config, workers, home_hosts, record_property):
    """libvirt on the source connects to the destination's migration port itself, holding the
    domain: until TCP gives up (about 130 s) neither statistics nor an abort get through. The
    engine stops the destination's waiting copy instead, which ends the migration for certain."""
    name = "lab-vm2"
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    with link.down(lab_config, destination.name):
        submitted = time.monotonic()
        task = services.submit_migration(vm, destination, services.MigrationOptions(bandwidth_mib_s=5))
        task = final_within(task, 60, submitted, record_property)
        # Both hosts say so while the link is still down: nothing can move any more.
        assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]

    assert task.state == TaskState.FAILED, timeline(task)
    assert f"The migration link to {destination.name} did not answer" in task.error, task.error
    assert f"still runs on {vm.host.name}" in task.error, task.error
    assert f"libvirt on {vm.host.name} has not given the migration's statistics" in timeline(task)
    assert f"keeps {name}'s migration job until its connect to {destination.name} fails" in timeline(task)
    # With the link back, libvirt's next attempt to connect is refused and it lets go of the guest.
    wait_for_libvirt_to_let_go(vm.host.uri, name)
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]


def test_the_migration_link_flapping_mid_migration_ends_the_task_within_a_minute(lab, lab_config, workers, home_hosts, record_property):
    """Down 5 s, up 5 s, down again: the stream stalls, moves again, stalls for good."""
    name = "lab-vm7"
    vm, destination, task = moving(name, bandwidth_mib_s=2)

    with link.down(lab_config, destination.name) as first_cut:
        time.sleep(5)
        link.restore(lab_config, destination.name)
        time.sleep(5)
        link.cut(lab_config, destination.name)
        task = final_within(task, 60, first_cut, record_property)

    assert task.state == TaskState.FAILED, timeline(task)
    assert "the migration link is down" in task.error and f"still runs on {vm.host.name}" in task.error, task.error
    assert "moved again after" in timeline(task), timeline(task)
    assert where_runs(name) == [vm.host.name] and defined_on(name) == [vm.host.name]


def test_the_destination_gone_from_the_network_mid_migration_leaves_the_guest_on_its_source(lab, lab_config, workers, home_hosts, record_property):
    """The destination vanishes from the network mid-copy, as when its network namespace is
    removed: every packet to and from its addresses is dropped without a reset (lab.link.isolate),
    its migration address and its management address alike. So the source's libvirtd loses
    the destination's libvirtd (their peer-to-peer connection) as well as the stream, and
    vmotion, which reaches the destination here over that management network (TLS), loses it
    too. What differs from removing a real namespace: the destination's processes keep running
    and its unix socket still answers (the test reads virsh through it only after the host
    is back); nothing sends an ICMP unreachable, which a router in front of a real host
    might; and the host comes back afterwards, so its libvirtd must clean up the incoming copy
    itself, as it does when the source's connection times out."""
    name = "lab-vm6"
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    destination.uri = next(host.tls_uri for host in lab.hosts if host.name == destination.name)
    destination.save(update_fields=["uri"])
    vm, destination, task = moving(name, bandwidth_mib_s=2)

    with link.isolated(lab_config, destination.name) as gone:
        task = final_within(task, 60, gone, record_property)

    assert task.state == TaskState.FAILED, timeline(task)
    assert f"still runs on {vm.host.name}" in task.error, task.error
    # vmotion reaches the destination's libvirt over that network too: its silence ends the
    # migration (aborted on the source) before the stream's own stall rule would.
    assert f"libvirt on {destination.name} did not answer" in timeline(task), timeline(task)
    # The destination's libvirtd drops its copy once the source's connection timed out.
    deadline = time.monotonic() + 60
    while where_runs(name) != [vm.host.name]:
        assert time.monotonic() < deadline, where_runs(name)
        time.sleep(1)
    assert defined_on(name) == [vm.host.name]


POSTGRES_BIN = Path("/usr/lib/postgresql") / max(os.listdir("/usr/lib/postgresql"), key=int) / "bin"
OWN_POSTGRES_PORT = 55439


@pytest.fixture
def own_postgres():
    """A PostgreSQL server this test starts, restarts and stops itself, holding a copy of the
    test's database (the lab as registered): the control plane's processes run on it."""
    home = Path(tempfile.mkdtemp(prefix="vmotion-test-postgres-"))
    shutil.chown(home, "postgres")
    as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    subprocess.run([*as_postgres, str(POSTGRES_BIN / "initdb"), "-D", str(home / "data"), "-A", "trust", "-U", "postgres"], check=True, capture_output=True)
    command = [
        *as_postgres, str(POSTGRES_BIN / "postgres"), "-D", str(home / "data"), "-p", str(OWN_POSTGRES_PORT), "-k", str(home),
        "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
    ]  # fmt: skip

    def start() -> subprocess.Popen:
        process = start_in_session(command, cwd=home, env={"PATH": os.environ["PATH"]}, log_path=home / f"postgres-{time.monotonic_ns()}.log")
        for _ in range(200):
            if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(OWN_POSTGRES_PORT)]).returncode == 0:
                return process
            time.sleep(0.05)
        raise AssertionError("the test's PostgreSQL did not start")

    server = {"process": start()}
    try:
        _copy_test_database_to(OWN_POSTGRES_PORT)

        def restart(down_seconds: float) -> None:
            stop_session(server["process"], signal.SIGINT)  # PostgreSQL's fast shutdown: every session ends
            time.sleep(down_seconds)
            server["process"] = start()

        yield f"postgres://postgres@127.0.0.1:{OWN_POSTGRES_PORT}/vmotion", restart
    finally:
        stop_session(server["process"], signal.SIGINT)
        shutil.rmtree(home, ignore_errors=True)


def _copy_test_database_to(port: int) -> None:
    db = connection.settings_dict
    source = ["-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432), "-U", db["USER"]]
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "vmotion"], check=True, capture_output=True)
    dump = subprocess.run(["pg_dump", *source, "-Fc", db["NAME"]], check=True, capture_output=True, env=env).stdout
    subprocess.run(["pg_restore", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "vmotion", "--no-owner"], input=dump, check=True, capture_output=True)


def _task_row(database_url: str, task_id: int) -> tuple[str, str, list[str], int]:
    """The task's state and error, its timeline and how many bytes its samples saw move, as
    the control plane's own database holds them."""
    with psycopg.connect(database_url) as conn:
        state, error = conn.execute("SELECT state, error FROM migrations_app_migrationtask WHERE id = %s", (task_id,)).fetchone()
        events = [row[0] for row in conn.execute("SELECT message FROM migrations_app_taskevent WHERE task_id = %s ORDER BY id", (task_id,))]
        moved = conn.execute("SELECT coalesce(max(data_processed), 0) FROM migrations_app_progresssample WHERE task_id = %s", (task_id,)).fetchone()[0]
    return state, error, events, moved


def test_the_database_restarted_mid_migration_loses_nothing(lab_inventory, home_hosts, own_postgres, record_property):
    database_url, restart_database = own_postgres
    name = "lab-vm3"
    vm = VirtualMachine.objects.select_related("host").get(name=name)
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    started = [processes.start_worker(0, DATABASE_URL=database_url), processes.start_scheduler(DATABASE_URL=database_url)]
    try:
        task_id = processes.submit_with_cli(name, destination.name, "--bandwidth", "5", DATABASE_URL=database_url)
        deadline = time.monotonic() + 60
        while _task_row(database_url, task_id)[3] == 0:
            assert time.monotonic() < deadline, _task_row(database_url, task_id)
            time.sleep(0.2)

        restarted = time.monotonic()
        restart_database(down_seconds=3)

        # Once the worker is back on the database, the cap that kept the copy going has served
        # (as at_full_speed does; the task is in this test's own database).
        deadline = time.monotonic() + 60
        while (row := _task_row_when_answering(database_url, task_id))[0] not in ("succeeded", "failed", "cancelled"):
            if len(row) > 2 and any(OUTAGE_NOTED in event for event in row[2]):
                virsh(vm.host.uri, "migrate-setspeed", name, "1000", check=False)
                break
            assert time.monotonic() < deadline, row
            time.sleep(0.2)
        deadline = time.monotonic() + 120
        while (row := _task_row_when_answering(database_url, task_id))[0] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, row
            time.sleep(0.2)
        record_property("seconds_to_final", f"{time.monotonic() - restarted:.1f}")
    finally:
        processes.stop_all(started)
    state, error, events, _ = row
    assert state == "succeeded", (error, events)
    assert where_runs(name) == [destination.name] and defined_on(name) == [destination.name]
    assert any("The database did not answer for" in event for event in events), events


def _task_row_when_answering(database_url: str, task_id: int) -> tuple:
    try:
        return _task_row(database_url, task_id)
    except psycopg.OperationalError:
        return ("database not answering",)
