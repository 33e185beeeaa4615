"""The `vmotion` command: with --json, every outcome ends with one JSON line, failures included."""

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests import processes
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def run_failing(*args: str) -> dict:
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("vmotion", *args, stdout=out)
    return last_json_line(out.getvalue())


def test_an_unknown_vm_ends_with_a_json_error_and_no_checks():
    line = run_failing("migrate", "no-such-vm", "--to", "kvm1", "--json")

    assert line == {"error": "No VM named 'no-such-vm' is in the inventory.", "checks": []}


def test_failed_checks_end_with_the_error_and_every_check():
    vm = VirtualMachineFactory()

    line = run_failing("check", vm.name, "--to", vm.host.name, "--json")

    assert "already runs on" in line["error"]
    assert {"name": "distinct_hosts", "status": "fail"}.items() <= line["checks"][1].items()


def test_a_task_that_does_not_exist_ends_with_a_json_error():
    assert run_failing("show", "999999", "--json") == {"error": "No migration task #999999.", "checks": []}


def test_without_json_a_failure_prints_no_json():
    out = StringIO()
    with pytest.raises(CommandError, match="No VM named"):
        call_command("vmotion", "migrate", "no-such-vm", "--to", "kvm1", stdout=out)
    assert out.getvalue() == ""


@pytest.mark.django_db(transaction=True)
def test_an_argument_the_command_line_rejects_also_ends_with_a_json_line_and_a_failing_status():
    HostFactory(name="kvm1")
    result = subprocess.run(
        [sys.executable, "manage.py", "vmotion", "migrate", "vm1", "--to", "kvm1", "--max-downtime", "soon", "--json"],
        cwd=processes.ROOT, env=processes.process_env(), capture_output=True, text=True, timeout=60,
    )

    assert result.returncode != 0
    assert "invalid int value: 'soon'" in last_json_line(result.stdout)["error"]
