"""A viewer reads every page but is offered no action, and every action's URL refuses them."""

import pytest
from playwright.sync_api import expect

from inventory.models import Host, VirtualMachine
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_a_viewer_sees_no_action_and_every_action_url_answers_403(page, app_server, lab_inventory, viewer):
    vm = VirtualMachine.objects.select_related("host").get(name="lab-vm1")
    destination = Host.objects.exclude(pk=vm.host_id).first()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=destination)
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.WAITING, "Waiting for a slot.")
    sign_in(page, app_server, "viewer")

    page.goto(f"{app_server.url}/vms/")
    expect(page.locator('tr[data-vm="lab-vm1"]')).to_be_visible()
    expect(page.locator("input[name=vm]")).to_have_count(0)
    expect(page.get_by_text("Migrate selected…")).to_have_count(0)
    page.goto(f"{app_server.url}{vm.get_absolute_url()}")
    expect(page.get_by_text("Migrate…")).to_have_count(0)
    page.goto(f"{app_server.url}{vm.host.get_absolute_url()}")
    expect(page.get_by_text("Read from libvirt now")).to_have_count(0)
    page.goto(f"{app_server.url}{task.get_absolute_url()}")
    expect(page.get_by_test_id("task-state")).to_have_text("Waiting for a slot")
    expect(page.locator("button", has_text="Cancel")).to_have_count(0)

    csrf = next(cookie["value"] for cookie in page.context.cookies() if cookie["name"] == "csrftoken")
    posts = [f"/tasks/{task.pk}/cancel/", f"/tasks/{task.pk}/force-complete/", f"/hosts/{vm.host_id}/sync/", "/migrate/"]
    gets = [f"/vms/{vm.pk}/migrate/", f"/migrate/?vm={vm.pk}", "/audit/"]
    answers = {path: page.request.post(f"{app_server.url}{path}", headers={"X-CSRFToken": csrf}, form={"vm": str(vm.pk)}, max_redirects=0).status for path in posts}
    answers |= {path: page.request.get(f"{app_server.url}{path}", max_redirects=0).status for path in gets}
    assert answers == {path: 403 for path in posts + gets}
    task.refresh_from_db()
    assert task.state == TaskState.WAITING and not task.cancel_requested
