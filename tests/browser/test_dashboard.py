"""The dashboard and a host's page in a real browser against the lab: what they show agrees
with virsh, and htmx brings changes in without a reload. The dashboard counts each host's
VMs; the host's page lists them."""

import re

import pytest
from playwright.sync_api import expect

from inventory import sync
from inventory.models import Host
from lab.commands import domain_names, virsh

from .conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.lab, pytest.mark.django_db(transaction=True)]


def test_an_anonymous_visitor_lands_on_the_sign_in_page(page, app_server):
    page.goto(f"{app_server.url}/vms/")
    expect(page.locator("h1")).to_have_text("Sign in to vmotion")
    assert "/login/?next=/vms/" in page.url


def test_the_dashboard_counts_the_guests_virsh_sees_on_each_host_and_its_page_lists_them(page, app_server, lab_inventory, viewer):
    sign_in(page, app_server, "viewer")

    expect(page.locator("#hosts-connected")).to_have_text(f"{len(lab_inventory.hosts)} of {len(lab_inventory.hosts)} hosts connected")
    running = {host.name: domain_names(host.uri) for host in Host.objects.all()}
    for name, guests in running.items():
        card = page.locator(f"article[data-host='{name}']")
        expect(card.get_by_test_id("host-state")).to_have_text("Connected")
        expect(card.get_by_test_id("host-vms")).to_have_text(re.compile(rf"^{len(guests)} of \d+ VMs? running$"))
    for host in Host.objects.all():
        page.goto(f"{app_server.url}{host.get_absolute_url()}")
        shown = set(page.locator("#host-summary li[data-vm]").evaluate_all("items => items.map(i => i.dataset.vm)"))
        assert shown == running[host.name]


def test_a_change_in_libvirt_reaches_the_open_host_page_without_a_reload(page, app_server, lab_inventory, viewer):
    sign_in(page, app_server, "viewer")
    host = Host.objects.get(vms__name="lab-vm1")
    page.goto(f"{app_server.url}{host.get_absolute_url()}")
    row = page.locator("#host-summary li[data-vm='lab-vm1'] .power")
    expect(row).to_have_text("Running")
    page.evaluate("window.__not_reloaded = true")

    virsh(host.uri, "suspend", "lab-vm1")
    try:
        sync.sync_host(host)
        expect(row).to_have_text("Paused", timeout=15_000)
        assert page.evaluate("window.__not_reloaded") is True
    finally:
        virsh(host.uri, "resume", "lab-vm1")
        sync.sync_host(host)
