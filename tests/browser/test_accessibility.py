"""axe-core (vendored in tests/browser/assets, MPL-2.0) finds no serious or critical
accessibility violation on any page, for the role that sees the most of it."""

from pathlib import Path

import pytest

from inventory.models import Host, VirtualMachine
from migrations_app.choices import TaskState
from migrations_app.models import Evacuation, MigrationBatch, MigrationTask, Schedule, ScheduleRun

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "assets" / "axe.min.js"
BLOCKING = ("serious", "critical")


@pytest.fixture
def page(browser):
    """A page that lets the test inject axe-core as an inline script: the product's
    Content-Security-Policy refuses any, rightly, and has tests of its own."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']][:3]}"
        for v in found
        if v["impact"] in BLOCKING
    ]


def test_no_page_has_a_serious_accessibility_violation(page, app_server, lab_inventory, administrator):
    page.goto(f"{app_server.url}/login/")
    assert violations(page) == [], "login"
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm1")
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=Host.objects.exclude(pk=vm.host_id).first())
    task.transition(TaskState.FAILED, error="lab-vm1 still runs on its source: an example failure.")
    batch = MigrationBatch.objects.create(reason="an example batch")
    MigrationTask.objects.filter(pk=task.pk).update(batch=batch)
    wizard = f"/migrate/?vm={vm.pk}"
    schedule = Schedule.objects.create(name="nightly", vm_names=["lab-vm1"], recurrence="daily", time_of_day="02:00")
    ScheduleRun.objects.create(schedule=schedule, due_at=task.created_at, state="missed", result="Missed: an example.")
    evacuation = Evacuation.objects.create(host=vm.host, batch=batch, state="stopped", message="Stopped: an example evacuation.")
    options = "options=1&priority=2&max_downtime_ms=300&allow_auto_converge=on"
    sign_in(page, app_server, "administrator")
    paths = {
        "dashboard": "/",
        "VM list": "/vms/",
        "VM list, filtered": "/vms/?state=running&host=lab",
        "VM": vm.get_absolute_url(),
        "host": vm.host.get_absolute_url(),
        "wizard: destination": wizard,
        "wizard: options": f"{wizard}&step=options",
        "wizard: options with an error": f"{wizard}&step=confirm&options=1&priority=2&max_downtime_ms=0",
        "wizard: confirm": f"{wizard}&step=confirm&{options}",
        "batch": batch.get_absolute_url(),
        "maintenance plan": f"/hosts/{vm.host_id}/maintenance/",
        "evacuation": evacuation.get_absolute_url(),
        "schedules": "/schedules/",
        "new schedule": "/schedules/new/",
        "new schedule with an error": "/schedules/new/?name=x&recurrence=cron&cron=bad",
        "schedule": schedule.get_absolute_url(),
        "preferences": "/preferences/",
        "task history": "/tasks/",
        "task": task.get_absolute_url(),
        "audit": "/audit/",
    }
    found = {}
    for name, path in paths.items():
        page.goto(f"{app_server.url}{path}")
        page.wait_for_load_state("networkidle")
        found[name] = violations(page)
    assert {name: problems for name, problems in found.items() if problems} == {}
