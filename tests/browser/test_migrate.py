"""An operator moves a VM from the browser and watches it arrive; virsh has the last word."""

import pytest
from playwright.sync_api import expect

from inventory.models import Host, VirtualMachine
from lab.commands import domain_names, virsh

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_an_operator_migrates_a_vm_from_its_page_and_follows_it_live(page, app_server, lab_inventory, workers, operator, lab_config):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm3")
    source = vm.host
    destination = Host.objects.exclude(pk=source.pk).order_by("name").first()
    sign_in(page, app_server, "operator")
    try:
        page.goto(f"{app_server.url}{vm.get_absolute_url()}")
        page.click("text=Migrate…")
        page.select_option("select[name=destination]", label=destination.name)
        page.click("button[name=check]")
        expect(page.locator("#check-report h2")).to_have_text("Pre-flight checks: passed")
        page.fill("input[name=bandwidth_mib_s]", "20")  # slow enough to watch the copy
        page.click("button[name=migrate]")

        # The progress fragment updates in place while memory moves...
        expect(page.get_by_test_id("task-phase")).to_contain_text("Copying memory, pass", timeout=60_000)
        expect(page.get_by_test_id("task-chart")).to_be_visible(timeout=30_000)
        # ...and once the task ends, the page reloads whole: state, bar, timeline and all.
        expect(page.get_by_test_id("task-state")).to_have_text("Succeeded", timeout=90_000)
        expect(page.get_by_test_id("task-percent")).to_have_attribute("data-percent", "100")
        expect(page.locator("#task-progress")).to_contain_text(f"lab-vm3 runs on {destination.name}")
        expect(page.locator("#task-timeline")).to_contain_text(f"lab-vm3 runs on {destination.name}")
        assert "lab-vm3" in domain_names(destination.uri)
        assert "lab-vm3" not in domain_names(source.uri, all_domains=True)
    finally:
        here = next(h for h in Host.objects.all() if "lab-vm3" in domain_names(h.uri))
        home = Host.objects.get(name=lab_config.home_host("lab-vm3"))
        if here != home:
            virsh(here.uri, "migrate", "--live", "--p2p", "--persistent", "--undefinesource", "lab-vm3", home.peer_uri)


def test_a_failing_check_shows_every_result_and_moves_nothing(page, app_server, lab_inventory, operator):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm1")
    destination = Host.objects.exclude(pk=vm.host_id).order_by("name").first()
    Host.objects.filter(pk=destination.pk).update(state="maintenance")
    sign_in(page, app_server, "operator")

    page.goto(f"{app_server.url}/vms/{vm.pk}/migrate/")
    page.select_option("select[name=destination]", label=destination.name)
    page.click("button[name=migrate]")

    expect(page.get_by_test_id("migrate-error")).to_contain_text("takes no new VMs")
    expect(page.locator("#check-report")).to_contain_text("FAIL")
    assert "lab-vm1" in domain_names(vm.host.uri)
