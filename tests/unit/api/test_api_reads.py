"""The API's lists and objects: filtered and paginated, libvirt URIs shown without their
secrets (hosts and the audit trail alike), bad filters and unknown URLs answered in JSON."""

import pytest
from django.utils import timezone

from inventory.choices import PowerState
from inventory.models import Datastore, DatastoreMount
from migrations_app.choices import RuleKind, TaskState
from migrations_app.models import AffinityRule, AffinityRuleVm, MigrationTask
from tests.api import token_client
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
SECRET_URI = "qemu+tcp://root:hunter2@kvm1.invalid/system?auth_token=abc123&keyfile=/etc/k"


@pytest.fixture
def api(viewer):
    return token_client(viewer)


def test_a_hosts_libvirt_uris_are_shown_without_their_secrets(api):
    host = HostFactory(name="kvm1", uri=SECRET_URI, migration_uri="qemu+tls://admin:pw@kvm1-mig.invalid/system")

    shown = [api.get("/api/v1/hosts/").json()["results"][0], api.get(f"/api/v1/hosts/{host.pk}/").json()]

    for body in shown:
        assert body["uri"] == "qemu+tcp://root:********@kvm1.invalid/system?auth_token=********&keyfile=/etc/k"
        assert body["migration_uri"] == "qemu+tls://admin:********@kvm1-mig.invalid/system"
        assert "hunter2" not in str(body) and "abc123" not in str(body) and ":pw@" not in str(body)


def test_the_audit_trail_shows_a_changed_uri_redacted_and_filters_by_object(administrator):
    host = HostFactory(name="kvm1", uri="qemu+tcp://kvm1.invalid/system")
    host.uri = SECRET_URI
    host.save()

    entries = token_client(administrator).get("/api/v1/audit-entries/", {"object_type": "inventory.host", "action": "update"}).json()

    assert entries["count"] == 1
    entry = entries["results"][0]
    assert entry["object_repr"] == "kvm1" and entry["object_type"] == "inventory.host" and entry["action"] == "update"
    assert entry["changes"]["uri"][1] == "qemu+tcp://root:********@kvm1.invalid/system?auth_token=********&keyfile=/etc/k"
    assert "hunter2" not in str(entries)


def test_lists_are_filtered(api):
    cluster = ClusterFactory(name="prod")
    kvm1, kvm2 = HostFactory(name="kvm1", cluster=cluster), HostFactory(name="kvm2", degraded_since=timezone.now(), degraded_reason="disk")
    web = VirtualMachineFactory(name="web-01", host=kvm1)
    VirtualMachineFactory(name="db-01", host=kvm2, power_state=PowerState.SHUT_OFF)
    done = MigrationTask.objects.create(vm=web, source=kvm1, destination=kvm2, state=TaskState.SUCCEEDED)
    queued = MigrationTask.objects.create(vm=web, source=kvm1, destination=kvm2)
    store = Datastore.objects.create(name="nfs", kind="netfs", source_key="netfs:nas:/vm")
    DatastoreMount.objects.create(datastore=store, host=kvm2, pool_name="nfs")
    rule = AffinityRule.objects.create(cluster=cluster, name="apart", kind=RuleKind.APART)
    AffinityRuleVm.objects.create(rule=rule, vm=web, vm_name="web-01")

    def names(path, **filters):
        return [item.get("name", item.get("id")) for item in api.get(path, filters).json()["results"]]

    assert names("/api/v1/vms/", cluster=cluster.pk) == ["web-01"]
    assert names("/api/v1/vms/", power_state="shut_off") == ["db-01"]
    assert names("/api/v1/vms/", name="WEB") == ["web-01"]
    assert names("/api/v1/hosts/", degraded="true") == ["kvm2"]
    assert names("/api/v1/tasks/", state=["succeeded", "failed"]) == [done.pk]
    assert names("/api/v1/tasks/", active="true", host=kvm2.pk) == [queued.pk]
    assert names("/api/v1/datastores/", host=kvm1.pk) == []
    assert names("/api/v1/affinity-rules/", vm=web.pk) == ["apart"]
    assert names("/api/v1/clusters/", name="pro") == ["prod"]


def test_a_filter_of_the_wrong_type_is_a_400_naming_it(api):
    for path, filters, field in (
        ("/api/v1/vms/", {"host": "kvm1"}, "host"),
        ("/api/v1/tasks/", {"state": "sleeping"}, "state"),
        ("/api/v1/tasks/", {"created_after": "yesterday"}, "created_after"),
        ("/api/v1/vms/", {"uuid": "not-a-uuid"}, "uuid"),
    ):
        response = api.get(path, filters)
        assert response.status_code == 400 and field in response.json()["errors"], (path, response.content)


def test_a_time_filter_takes_any_offset_python_takes_and_refuses_a_time_out_of_range(api):
    vm = VirtualMachineFactory()
    MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory())

    far_east = api.get("/api/v1/tasks/", {"created_after": "2000-01-01T00:00:00+23:01"})
    before_year_one = api.get("/api/v1/tasks/", {"created_before": "0001-01-01T00:00:00+01:00"})

    assert far_east.status_code == 200 and far_east.json()["count"] == 1
    assert before_year_one.status_code == 400 and before_year_one.json()["errors"] == {"created_before": ["This time is out of range."]}


def test_lists_are_paginated_and_a_page_past_the_end_is_a_404(api):
    host = HostFactory()
    for number in range(7):
        VirtualMachineFactory(name=f"vm-{number}", host=host)

    first = api.get("/api/v1/vms/", {"page_size": 3}).json()
    last = api.get("/api/v1/vms/", {"page_size": 3, "page": 3}).json()
    past = api.get("/api/v1/vms/", {"page_size": 3, "page": 4})

    assert first["count"] == 7 and [vm["name"] for vm in first["results"]] == ["vm-0", "vm-1", "vm-2"] and first["next"]
    assert [vm["name"] for vm in last["results"]] == ["vm-6"] and last["next"] is None
    assert past.status_code == 404 and past.json()["message"] == "Invalid page."


def test_an_unknown_api_url_is_a_404_in_json(api):
    response = api.get("/api/v1/nothing-here/")

    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["message"] == "Nothing at /api/v1/nothing-here/: see /api/schema/ for the endpoints."


def test_an_unknown_page_outside_the_api_is_still_the_sites_page(client_as, viewer):
    response = client_as(viewer).get("/nothing-here/")

    assert response.status_code == 404 and "text/html" in response["Content-Type"]


def test_a_method_an_endpoint_does_not_take_is_a_405_in_json(api):
    response = api.delete("/api/v1/vms/")

    assert response.status_code == 405 and response.json()["message"] == 'Method "DELETE" not allowed.'

