"""An administrator puts a lab host into maintenance from the browser: the plan, the
confirmation, the guests moving live, the host in maintenance, and back in service."""

import re

import pytest
from playwright.sync_api import expect

from inventory.models import Host
from lab.commands import domain_names
from tests.lab.conftest import where_runs

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_an_administrator_evacuates_a_host_from_its_page_and_returns_it_to_service(
    page, app_server, lab_inventory, lab_config, workers, administrator, home_hosts, guests_stay_intact
):
    host = Host.objects.get(name=lab_config.home_host("lab-vm2"))  # none of its guests outruns the link
    guests = sorted(name for name in domain_names(host.uri) if name.startswith("lab-vm"))
    sign_in(page, app_server, "administrator")

    page.goto(f"{app_server.url}{host.get_absolute_url()}")
    page.click("text=Enter maintenance…")
    plan = page.get_by_test_id("evacuation-plan")
    for name in guests:
        expect(plan.locator(f'tr[data-vm="{name}"]').get_by_test_id("planned-destination")).not_to_have_text(host.name)
    expect(page.get_by_test_id("evacuation-forecast")).to_have_text(re.compile(r"The whole evacuation: about \d+ s"))
    page.click("button:has-text('Enter maintenance and move')")

    expect(page.locator("h1")).to_have_text(f"Evacuating {host.name}")
    expect(page.get_by_test_id("evacuation-state")).to_have_text("Completed", timeout=180_000)
    expect(page.get_by_test_id("host-state")).to_have_text(f"{host.name}: in maintenance")
    expect(page.get_by_test_id("batch-task-state")).to_have_text(["Succeeded"] * len(guests))
    assert {name for name in domain_names(host.uri) if name.startswith("lab-vm")} == set()
    for name in guests:
        assert len(where_runs(name)) == 1, name

    page.goto(f"{app_server.url}{host.get_absolute_url()}")
    page.click("button:has-text('Exit maintenance')")
    expect(page.locator(".messages")).to_contain_text("is back in service")
    host.refresh_from_db()
    assert host.state == "connected"
