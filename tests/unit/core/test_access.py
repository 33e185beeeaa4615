"""Every page needs a login, and each role reaches what it may and no more."""

import pytest
from django.urls import reverse

from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def vm():
    return VirtualMachineFactory(name="web-01", host=HostFactory(name="esx-a"))


def page_urls(vm) -> list[str]:
    return [reverse("dashboard"), reverse("host-detail", args=[vm.host.pk]), reverse("vm-list"), reverse("vm-detail", args=[vm.pk])]


def test_anonymous_users_are_sent_to_login_from_every_page(client, vm):
    for url in page_urls(vm) + [reverse("admin:index")]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert "/login/" in response["Location"], url


def test_a_viewer_sees_every_inventory_page(client_as, viewer, vm):
    client = client_as(viewer)
    for url in page_urls(vm):
        response = client.get(url)
        assert response.status_code == 200, url
    # The dashboard shows hosts; each host's VMs are on its own page.
    assert 'data-host="esx-a"' in client.get(reverse("dashboard")).content.decode()
    assert 'data-vm="web-01"' in client.get(reverse("host-detail", args=[vm.host.pk])).content.decode()


def test_a_user_without_a_role_is_refused(client_as, no_role_user, vm):
    assert client_as(no_role_user).get(reverse("dashboard")).status_code == 403


def test_a_viewer_cannot_ask_for_a_sync(client_as, viewer, vm):
    client = client_as(viewer)
    assert client.post(reverse("host-sync", args=[vm.host.pk])).status_code == 403
    assert "Read from libvirt now" not in client.get(reverse("host-detail", args=[vm.host.pk])).content.decode()


def test_an_operator_can_ask_for_a_sync(client_as, operator, vm, monkeypatch):
    queued = []
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", queued.append)
    response = client_as(operator).post(reverse("host-sync", args=[vm.host.pk]))
    assert response.status_code == 302
    assert queued == [vm.host]


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_only_administrators_reach_the_admin_site(client_as, request, persona):
    client = client_as(request.getfixturevalue(persona))
    response = client.get(reverse("admin:inventory_host_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_administrator_manages_hosts_in_the_admin_site(client_as, administrator, vm):
    client = client_as(administrator)
    response = client.get(reverse("admin:inventory_host_changelist"))
    assert response.status_code == 200
    assert "esx-a" in response.content.decode()
    assert client.get(reverse("admin:auth_user_changelist")).status_code == 200


def test_htmx_gets_only_the_fragment(client_as, viewer, vm):
    response = client_as(viewer).get(reverse("dashboard"), headers={"HX-Request": "true"})
    body = response.content.decode()
    assert 'id="dashboard-hosts"' in body and "<html" not in body


def test_the_audit_trail_names_the_administrator_who_changed_a_host(client_as, administrator, vm, monkeypatch):
    from auditlog.models import LogEntry

    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    host = vm.host
    response = client_as(administrator).post(
        reverse("admin:inventory_host_change", args=[host.pk]),
        {"name": host.name, "uri": "qemu+ssh://root@esx-a.example/system", "migration_uri": "", "cluster": "", "state": host.state},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = LogEntry.objects.get_for_object(host).latest("timestamp")
    assert entry.actor == administrator
    assert "qemu+ssh://root@esx-a.example/system" in str(entry.changes)
