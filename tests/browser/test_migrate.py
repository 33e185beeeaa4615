"""Operators move VMs from the browser through the wizard and watch them arrive; virsh has
the last word on where each guest runs."""

import re

import pytest
from playwright.sync_api import expect

from inventory.choices import HostState
from inventory.models import Host, VirtualMachine
from tests.lab.conftest import where_runs

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def checked_host(page, vm_name: str) -> str:
    """The host whose radio is ticked for a VM on the destination step."""
    return page.locator(f'fieldset[data-vm="{vm_name}"] tr:has(input:checked)').get_attribute("data-host")


def test_an_operator_migrates_a_vm_through_the_wizard_on_the_assistants_choice(
    page, app_server, lab_inventory, workers, operator, home_hosts, guests_stay_intact
):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm3")
    source = vm.host
    closed, *_ = Host.objects.exclude(pk=source.pk).order_by("name")
    Host.objects.filter(pk=closed.pk).update(state=HostState.MAINTENANCE)
    sign_in(page, app_server, "operator")

    page.goto(f"{app_server.url}{vm.get_absolute_url()}")
    page.click("text=Migrate…")
    # Destination: every other host ranked with its reasons; the one in maintenance is disabled and says why.
    blocked = page.locator(f'tr[data-host="{closed.name}"]')
    expect(blocked.locator("input[type=radio]")).to_be_disabled()
    expect(blocked.get_by_test_id("blocked-reason")).to_contain_text("takes no new VMs")
    choice = checked_host(page, "lab-vm3")
    assert choice not in (source.name, closed.name)
    expect(page.locator(f'tr[data-host="{choice}"]')).to_contain_text("GiB free after the move")
    page.click("text=Next: options")

    page.fill("input[name=bandwidth_mib_s]", "20")  # slow enough to watch the copy
    page.click("text=Next: check and forecast")
    # Confirm: the forecast from the inventory's measurement of the guest (an inventory worker
    # measures it if none is recent), with its age, before anything is submitted.
    row = page.locator('[data-testid=forecast] tr[data-vm="lab-vm3"]')
    expect(row.get_by_test_id("predicted-total")).to_have_text(re.compile(r"about \d+ s"))
    expect(row.get_by_test_id("predicted-pause")).to_contain_text("ms")
    expect(row.get_by_test_id("measured-ago")).to_have_text(re.compile(r"Measured \d+ (s|min) ago\."))
    page.click("button[name=submit]")

    expect(page.get_by_test_id("task-phase")).to_contain_text("Copying memory, pass", timeout=60_000)
    expect(page.get_by_test_id("task-chart")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("task-state")).to_have_text("Succeeded", timeout=90_000)
    expect(page.get_by_test_id("task-percent")).to_have_attribute("data-percent", "100")
    expect(page.locator("#task-timeline")).to_contain_text(f"lab-vm3 runs on {choice}")
    assert where_runs("lab-vm3") == [choice]


def test_a_batch_of_two_guests_moves_and_its_page_follows_both(page, app_server, lab_inventory, workers, operator, home_hosts, guests_stay_intact):
    sign_in(page, app_server, "operator")
    page.goto(f"{app_server.url}/vms/")
    for name in ("lab-vm1", "lab-vm2"):
        page.check(f'tr[data-vm="{name}"] input[name=vm]')
    page.click("text=Migrate selected…")

    chosen = {name: checked_host(page, name) for name in ("lab-vm1", "lab-vm2")}
    page.click("text=Next: options")
    page.click("text=Next: check and forecast")
    expect(page.get_by_test_id("predicted-total")).to_have_count(2)
    page.click("button[name=submit]")

    expect(page.locator("h1")).to_contain_text("Batch #")
    expect(page.get_by_test_id("batch-summary")).to_have_text("Every migration of this batch has ended.", timeout=120_000)
    expect(page.get_by_test_id("batch-task-state")).to_have_text(["Succeeded", "Succeeded"])
    for name, host in chosen.items():
        assert where_runs(name) == [host]


def test_cancel_from_the_task_page_leaves_the_vm_on_its_source(page, app_server, lab_inventory, workers, operator, home_hosts, guests_stay_intact):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm2")
    source = vm.host.name
    sign_in(page, app_server, "operator")
    page.goto(f"{app_server.url}/migrate/?vm={vm.pk}")
    page.click("text=Next: options")
    page.fill("input[name=bandwidth_mib_s]", "2")  # the copy takes a minute: time to cancel it
    page.click("text=Next: check and forecast")
    page.click("button[name=submit]")

    expect(page.get_by_test_id("task-phase")).to_contain_text("Copying memory", timeout=60_000)
    page.reload()  # the buttons are on the page, not in the polled fragment
    page.click("button:has-text('Cancel')")

    expect(page.get_by_test_id("task-state")).to_have_text("Cancelled", timeout=60_000)
    assert where_runs("lab-vm2") == [source]
