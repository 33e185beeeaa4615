"""The `vmotion` command with --json: stdout holds exactly one JSON document, success or
failure, so that `vmotion show 3 --json | jq` works; what a person reads goes to stderr. A
failure exits non-zero with {"error": ..., "checks": [...]} on stdout and its message on stderr."""

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from inventory.choices import HostState
from inventory.models import Datastore, DatastoreMount, VirtualDisk
from migrations_app import cli
from migrations_app.choices import TaskState
from migrations_app.management.commands.vmotion import Command
from migrations_app.models import MigrationTask, Schedule
from tests import processes
from tests.driver_hosts import TEST_GUEST_UUID, driver_host
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible", "no_inventory_worker", "no_libvirt_sync")]


@pytest.fixture
def world(operator, administrator) -> dict[str, str]:
    """A cluster of two hosts (and one degraded, one in maintenance), VMs, a queued and a
    migrating task, a rule and a schedule; returns the ids the cases below name, by placeholder."""
    prod = ClusterFactory(name="prod")
    kvm1, kvm2 = driver_host("kvm1", cluster=prod), driver_host("kvm2", cluster=prod)
    HostFactory(name="failing", cluster=prod, degraded_reason="fan failing", degraded_by="vmotion CLI", degraded_since=timezone.now())
    HostFactory(name="resting", cluster=prod, state=HostState.MAINTENANCE)
    web = VirtualMachineFactory(name="web-01", host=kvm1, uuid=TEST_GUEST_UUID)
    nfs = Datastore.objects.create(name="nfs", kind="netfs", source_key="nfs://filer/vms", available_bytes=500 * 1024**3)
    ssd = Datastore.objects.create(name="ssd (kvm1)", kind="dir", source_key=f"host-{kvm1.pk}:directory://ssd", available_bytes=50 * 1024**3)
    for host, store, pool in ((kvm1, nfs, "nfs"), (kvm2, nfs, "nfs"), (kvm1, ssd, "ssd")):
        DatastoreMount.objects.create(datastore=store, host=host, pool_name=pool, target_path=f"/srv/{pool}", active=True)
    VirtualDisk.objects.create(vm=web, target="vda", source="/srv/nfs/web-01.qcow2", format="qcow2", datastore=nfs, capacity_bytes=1024**3, allocation_bytes=1024**2)
    VirtualMachineFactory(name="db-01", host=kvm2)
    queued = MigrationTask.objects.create(vm=VirtualMachineFactory(name="app-1", host=kvm2), source=kvm2, destination=kvm1)
    migrating = MigrationTask.objects.create(vm=VirtualMachineFactory(name="app-2", host=kvm2), source=kvm2, destination=kvm1, state=TaskState.MIGRATING)
    call_command("vmotion", "rules", "add", "spread", "--cluster", "prod", "--kind", "apart", "--vm", web.name, "--vm", "db-01", "--should", stdout=StringIO())
    call_command("vmotion", "schedule", "add", "nightly", "--vm", web.name, "--daily", "02:00", "--user", "operator", stdout=StringIO())
    return {"{queued}": str(queued.pk), "{migrating}": str(migrating.pk), "{schedule}": str(Schedule.objects.get().pk)}


# Each subcommand that takes --json, once succeeding and once failing (several ways for some).
SUCCEEDS = [
    ("migrate", ["migrate", "web-01", "--to", "kvm2", "--user", "operator"]),
    ("check", ["check", "web-01", "--to", "kvm2"]),
    ("move-storage", ["move-storage", "web-01", "--datastore", "ssd", "--user", "operator"]),
    ("recommend", ["recommend", "web-01"]),
    ("tasks", ["tasks"]),
    ("show", ["show", "{queued}"]),
    ("cancel", ["cancel", "{queued}"]),
    ("force-complete", ["force-complete", "{migrating}"]),
    ("maintenance", ["maintenance", "plan", "kvm1"]),
    ("maintenance", ["maintenance", "enter", "kvm1", "--user", "administrator"]),
    ("maintenance", ["maintenance", "exit", "resting"]),
    ("host degrade", ["host", "degrade", "kvm2", "--reason", "fan failing"]),
    ("host restore", ["host", "restore", "failing"]),
    ("host migration-tls", ["host", "migration-tls", "kvm2", "yes"]),
    ("host bandwidth", ["host", "bandwidth", "kvm2"]),
    ("host bandwidth", ["host", "bandwidth", "kvm2", "200"]),
    ("host add", ["host", "add", "kvm9", "qemu+ssh://root@127.0.0.1:1/system"]),
    ("host uri", ["host", "uri", "kvm2", "--migration-uri", "qemu+tls://127.0.0.2:1/system"]),
    ("balance", ["balance", "prod"]),
    ("rules list", ["rules", "list", "--cluster", "prod"]),
    ("rules add", ["rules", "add", "home", "--cluster", "prod", "--kind", "on_hosts", "--vm", "web-01", "--host", "kvm1"]),
    ("rules delete", ["rules", "delete", "spread", "--cluster", "prod"]),
    ("rules fix", ["rules", "fix", "spread", "--cluster", "prod"]),
    ("cluster cpu", ["cluster", "cpu", "prod"]),
    ("cluster encryption", ["cluster", "encryption", "prod", "available"]),
    ("cluster bandwidth", ["cluster", "bandwidth", "prod", "120"]),
    ("cluster disk-images", ["cluster", "disk-images", "prod", "keep", "--user", "administrator"]),
    ("schedule add", ["schedule", "add", "weekend", "--vm", "db-01", "--weekly", "sunday", "03:00", "--user", "operator"]),
    ("schedule list", ["schedule", "list"]),
    ("schedule show", ["schedule", "show", "{schedule}"]),
    ("schedule enable", ["schedule", "enable", "{schedule}"]),
    ("schedule disable", ["schedule", "disable", "{schedule}"]),
    ("schedule delete", ["schedule", "delete", "{schedule}"]),
]
FAILS = [
    ("migrate", ["migrate", "no-such-vm", "--to", "kvm2"]),
    ("check", ["check", "web-01", "--to", "kvm1"]),
    ("move-storage", ["move-storage", "web-01", "--datastore", "nope"]),
    ("move-storage", ["move-storage", "web-01", "--disk", "vda=nfs"]),
    ("recommend", ["recommend", "no-such-vm"]),
    ("show", ["show", "999999"]),
    ("cancel", ["cancel", "999999"]),
    ("force-complete", ["force-complete", "{queued}"]),
    ("maintenance", ["maintenance", "abort", "kvm1"]),
    ("maintenance", ["maintenance", "enter", "kvm1", "--user", "operator"]),
    ("host degrade", ["host", "degrade", "kvm9", "--reason", "fan failing"]),
    ("host restore", ["host", "restore", "kvm2"]),
    ("host migration-tls", ["host", "migration-tls", "kvm9", "yes"]),
    ("host bandwidth", ["host", "bandwidth", "kvm2", "fast"]),
    ("host add", ["host", "add", "kvm1", "qemu+ssh://root@127.0.0.1:1/system"]),
    ("host uri", ["host", "uri", "kvm9", "qemu+ssh://root@127.0.0.1:1/system"]),
    ("balance", ["balance", "nope"]),
    ("rules list", ["rules", "list", "--cluster", "nope"]),
    ("rules add", ["rules", "add", "home", "--cluster", "prod", "--kind", "apart", "--vm", "no-such-vm"]),
    ("rules delete", ["rules", "delete", "nope", "--cluster", "prod"]),
    ("rules fix", ["rules", "fix", "nope", "--cluster", "prod"]),
    ("cluster cpu", ["cluster", "cpu", "nope"]),
    ("cluster encryption", ["cluster", "encryption", "prod", "maybe"]),
    ("cluster bandwidth", ["cluster", "bandwidth", "prod", "fast"]),
    ("cluster disk-images", ["cluster", "disk-images", "prod", "maybe"]),
    ("schedule add", ["schedule", "add", "bad", "--vm", "web-01", "--cron", "0 25 * * *", "--user", "operator"]),
    ("schedule show", ["schedule", "show", "999999"]),
    ("schedule enable", ["schedule", "enable", "999999"]),
    ("schedule disable", ["schedule", "disable", "999999"]),
    ("schedule delete", ["schedule", "delete", "999999"]),
]


def filled(argv: list[str], ids: dict[str, str]) -> list[str]:
    return [ids.get(word, word) for word in argv]


def case_id(case) -> str:
    return " ".join(case[1])


def subcommands_with_json() -> set[str]:
    parser = Command().create_parser("manage.py", "vmotion")
    return {each.prog.removeprefix("manage.py vmotion ") for each in cli.every_parser(parser) if any(action.dest == "json" for action in each._actions)}


def test_every_subcommand_with_json_is_tried_succeeding_and_failing():
    # `tasks` and `schedule list` fail only on a command line argparse refuses, tried for all below.
    assert {name for name, _ in SUCCEEDS} == {name for name, _ in FAILS} | {"tasks", "schedule list"} == subcommands_with_json()


@pytest.mark.parametrize("case", SUCCEEDS, ids=case_id)
def test_a_success_prints_one_json_document_and_says_the_rest_on_stderr(world, case):
    out, err = StringIO(), StringIO()

    call_command("vmotion", *filled(case[1], world), "--json", stdout=out, stderr=err)

    document = json.loads(out.getvalue())
    assert isinstance(document, dict) and not document.keys() >= {"error", "checks"}
    assert err.getvalue().strip() and not err.getvalue().startswith("{")  # a person's lines, not a second document


@pytest.mark.parametrize("case", FAILS, ids=case_id)
def test_a_failure_prints_one_json_error_document_and_fails(world, case):
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("vmotion", *filled(case[1], world), "--json", stdout=out, stderr=StringIO())

    document = json.loads(out.getvalue())
    assert document["error"] and document["error"] in str(failure.value)
    assert isinstance(document["checks"], list)


@pytest.mark.parametrize("words", sorted(subcommands_with_json()))
def test_a_command_line_argparse_refuses_prints_one_json_error_document_and_exits_2(words, capsys):
    out = StringIO()

    with pytest.raises(SystemExit) as stopped:
        Command(stdout=out).run_from_argv(["manage.py", "vmotion", *words.split(), "--no-such-option", "--json"])

    assert stopped.value.code == 2
    document = json.loads(out.getvalue())
    assert f"error: {document['error']}" in capsys.readouterr().err and document["checks"] == []


def test_without_json_the_lines_are_on_stdout_and_no_json(world):
    out, err = StringIO(), StringIO()
    call_command("vmotion", "show", world["{queued}"], stdout=out, stderr=err)
    assert out.getvalue().startswith(f"#{world['{queued}']}") and err.getvalue() == ""

    out = StringIO()
    with pytest.raises(CommandError, match="No VM named"):
        call_command("vmotion", "migrate", "no-such-vm", "--to", "kvm1", stdout=out)
    assert out.getvalue() == ""


def test_an_unknown_vm_is_a_json_error_with_no_checks():
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("vmotion", "migrate", "no-such-vm", "--to", "kvm1", "--json", stdout=out, stderr=StringIO())

    assert json.loads(out.getvalue()) == {"error": "No VM named 'no-such-vm' is in the inventory.", "checks": []}


def test_failed_checks_are_the_error_with_every_check():
    vm = VirtualMachineFactory()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("vmotion", "check", vm.name, "--to", vm.host.name, "--json", stdout=out, stderr=StringIO())

    document = json.loads(out.getvalue())
    assert "already runs on" in document["error"]
    assert {"name": "distinct_hosts", "status": "fail"}.items() <= document["checks"][1].items()


def test_a_fault_of_the_command_itself_still_leaves_one_json_document(world, monkeypatch):
    def broken(task):
        raise RuntimeError("presenter broke")

    monkeypatch.setattr("migrations_app.cli.tasks.task_summary", broken)
    out = StringIO()

    with pytest.raises(RuntimeError):
        call_command("vmotion", "show", world["{queued}"], "--json", stdout=out, stderr=StringIO())

    assert json.loads(out.getvalue()) == {"error": "RuntimeError: presenter broke", "checks": []}


@pytest.mark.django_db(transaction=True)
def test_from_a_shell_stdout_parses_whole_and_the_exit_status_tells_success_from_failure():
    vm = VirtualMachineFactory(name="vm1")
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm1"))

    def vmotion(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "vmotion", *argv, "--json"],
            cwd=processes.ROOT, env=processes.process_env(), capture_output=True, text=True, timeout=60,
        )

    shown = vmotion("show", str(task.pk))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["task"] == task.pk and f"#{task.pk}" in shown.stderr

    missing = vmotion("show", "999999")
    assert missing.returncode == 1
    assert json.loads(missing.stdout) == {"error": "No migration task #999999.", "checks": []}
    assert "CommandError: No migration task #999999." in missing.stderr

    refused = vmotion("migrate", "vm1", "--to", "kvm1", "--max-downtime", "soon")
    assert refused.returncode == 2
    assert "invalid int value: 'soon'" in json.loads(refused.stdout)["error"]


def test_migrate_with_post_copy_where_libvirt_cannot_resume_it_warns_on_stderr_and_in_the_json(world):
    HostFactory._meta.model.objects.filter(name__in=["kvm1", "kvm2"]).update(libvirt_version="11.3.0")
    out, err = StringIO(), StringIO()

    call_command("vmotion", "migrate", "web-01", "--to", "kvm2", "--user", "operator", "--post-copy", "--json", stdout=out, stderr=err)

    document = json.loads(out.getvalue())
    [warning] = document["warnings"]
    assert warning.startswith("kvm1 -> kvm2: a broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0")
    assert f"warning: {warning}" in err.getvalue() and document["state"] == "queued"


def test_migrate_without_json_prints_the_warning_on_stderr_and_none_without_post_copy(world):
    HostFactory._meta.model.objects.filter(name__in=["kvm1", "kvm2"]).update(libvirt_version="11.3.0")
    out, err = StringIO(), StringIO()
    call_command("vmotion", "migrate", "web-01", "--to", "kvm2", "--user", "operator", "--post-copy", stdout=out, stderr=err)
    quiet_out, quiet_err = StringIO(), StringIO()
    call_command("vmotion", "migrate", "db-01", "--to", "kvm1", "--user", "operator", "--json", stdout=quiet_out, stderr=quiet_err)

    assert "fixed in libvirt 11.4.0" in err.getvalue() and "warning:" not in out.getvalue()
    assert json.loads(quiet_out.getvalue())["warnings"] == [] and "warning:" not in quiet_err.getvalue()


def test_a_schedule_allowing_post_copy_warns_of_its_hosts_libvirt(world):
    HostFactory._meta.model.objects.filter(name="kvm2").update(libvirt_version="11.3.0")
    HostFactory._meta.model.objects.filter(name="kvm1").update(libvirt_version="11.4.0")
    out, err = StringIO(), StringIO()

    call_command("vmotion", "schedule", "add", "late", "--vm", "db-01", "--to", "kvm1", "--daily", "03:00", "--post-copy", "--user", "operator", "--json", stdout=out, stderr=err)

    [warning] = json.loads(out.getvalue())["warnings"]
    assert "kvm2 runs libvirt 11.3.0" in warning and "kvm1 runs" not in warning and f"warning: {warning}" in err.getvalue()
