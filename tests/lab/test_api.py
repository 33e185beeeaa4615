"""A script's view of vmotion: an operator's API token, curl against gunicorn as production
serves it, and a lab guest that really moves (virsh says where it runs)."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from core import api_tokens
from inventory.models import Host, VirtualMachine
from tests.lab.conftest import where_runs

pytestmark = [pytest.mark.lab, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("guests_stay_intact")]


def curl(app_server, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    command = ["curl", "-sS", "-X", method, "-H", f"Authorization: Bearer {token}", "-w", "\n%{http_code}", f"{app_server.url}{path}"]
    if body is not None:
        command += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    text, _, status = output.rpartition("\n")
    return int(status), json.loads(text) if text else {}


def test_curl_with_a_token_migrates_a_lab_guest_and_the_task_succeeds(lab, workers, home_hosts, operator, app_server):
    name = "lab-vm2"
    vm = VirtualMachine.objects.get(name=name)
    destination = next(host for host in Host.objects.order_by("name") if host.pk != vm.host_id)
    _, secret = api_tokens.issue(operator, "lab script")

    status, checked = curl(app_server, secret, "POST", "/api/v1/tasks/check/", {"vm": vm.pk, "target": destination.pk})
    assert status == 200 and checked["passed"], checked
    status, task = curl(
        app_server, secret, "POST", "/api/v1/tasks/",
        {"vm": vm.pk, "target": destination.pk, "priority": "high", "max_downtime_ms": 300, "reason": "API walk"},
    )
    assert status == 202, task
    again_status, again = curl(app_server, secret, "POST", "/api/v1/tasks/", {"vm": vm.pk, "target": destination.pk})
    assert again_status == 409, again  # one active migration per VM

    deadline = time.monotonic() + 180
    while task["state"] not in ("succeeded", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(1)
        status, task = curl(app_server, secret, "GET", f"/api/v1/tasks/{task['id']}/")
        assert status == 200, task

    assert task["state"] == "succeeded", task
    assert where_runs(name) == [destination.name]
    # The token's user is who asked, on the task and on its timeline.
    assert task["requested_by"] == operator.username and task["reason"] == "API walk"
    assert any(event["actor"] == operator.username for event in task["events"]), task["events"]
