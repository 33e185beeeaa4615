"""Bad input to the API is a 4xx in JSON that names what is wrong, never a server error nor
a request carried out as if it had been right: numbers in filters bounded to what the
database holds, empty or unknown values of typed filters and pages refused, body values of the
wrong JSON type refused, unknown URLs answered in JSON even while DEBUG is on, and a request
the object's state does not allow now answered 409."""

import pytest
from django.utils import timezone

from inventory.choices import HostState
from migrations_app.choices import TaskState
from migrations_app.models import MigrationTask, Schedule
from tests.api import token_client
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    vm = VirtualMachineFactory(name="web-01")
    return MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(name="kvm2"), state=TaskState.SUCCEEDED)


@pytest.mark.parametrize("path, query, field", [
    ("/api/v1/affinity-rules/", {"cluster": "-6.7e253"}, "cluster"),
    ("/api/v1/tasks/", {"host": "-6.7e253"}, "host"),
    ("/api/v1/networks/", {"host": "-6.7e253"}, "host"),
    ("/api/v1/vms/", {"host": "1.5"}, "host"),
    ("/api/v1/tasks/", {"vm": str(2**63)}, "vm"),
    ("/api/v1/hosts/", {"cluster": "0"}, "cluster"),
    ("/api/v1/evacuations/", {"host": "1e3"}, "host"),
])
def test_a_number_filter_takes_only_a_whole_number_the_database_can_hold(api, path, query, field):
    ClusterFactory()

    response = api.get(path, query)

    assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.content


def test_a_samples_filter_takes_milliseconds_from_zero(api, task):
    assert api.get(f"/api/v1/tasks/{task.pk}/samples/", {"elapsed_after_ms": "0"}).status_code == 200
    refused = api.get(f"/api/v1/tasks/{task.pk}/samples/", {"elapsed_after_ms": "-1"})

    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["elapsed_after_ms"]


@pytest.mark.parametrize("path, query, field", [
    ("/api/v1/vms/", {"uuid": ""}, "uuid"),
    ("/api/v1/vms/", {"host": ""}, "host"),
    ("/api/v1/hosts/", {"degraded": "maybe"}, "degraded"),
    ("/api/v1/hosts/", {"degraded": ""}, "degraded"),
    ("/api/v1/tasks/", {"active": "1"}, "active"),
    ("/api/v1/tasks/", {"created_after": ""}, "created_after"),
    ("/api/v1/schedules/", {"enabled": "yes"}, "enabled"),
    ("/api/v1/hosts/", {"state": ""}, "state"),
])
def test_an_empty_or_unknown_value_of_a_typed_filter_is_a_400_not_no_filter(api, path, query, field):
    response = api.get(path, query)

    assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.content


def test_an_empty_text_filter_still_filters_nothing_out(api):
    VirtualMachineFactory(name="web-01")

    assert api.get("/api/v1/vms/", {"name": ""}).json()["count"] == 1


@pytest.mark.parametrize("query, field", [
    ({"page_size": "null"}, "page_size"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "501"}, "page_size"),
    ({"page_size": "2.5"}, "page_size"),
    ({"page": "abc"}, "page"),
    ({"page": "0"}, "page"),
    ({"page": "last"}, "page"),
])
def test_a_page_or_page_size_that_is_not_a_whole_number_in_range_is_a_400(api, query, field):
    response = api.get("/api/v1/vms/", query)

    assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.content


def test_the_largest_page_size_is_taken(api):
    VirtualMachineFactory()

    assert api.get("/api/v1/vms/", {"page_size": "500"}).json()["count"] == 1


@pytest.mark.parametrize("path, method", [
    ("/api/v1/tasks/-1/samples/", "get"),
    ("/api/v1/tasks/1.5/", "get"),
    ("/api/v1/nothing-here/", "get"),
    ("/api/v1/nothing-here", "post"),
    ("/api/", "get"),
])
def test_an_unknown_url_under_the_api_is_a_json_404_even_while_debug_is_on(settings, api, path, method):
    settings.DEBUG = True

    response = getattr(api, method)(path)

    assert response.status_code == 404 and response["Content-Type"] == "application/json", response.content[:200]
    assert response.json()["message"] == f"Nothing at {path}: see /api/schema/ for the endpoints."


def test_an_endpoint_without_its_slash_is_a_json_404_that_names_it(settings, api):
    settings.DEBUG = True

    response = api.post("/api/v1/tasks", {"vm": 1}, format="json")

    assert response.status_code == 404 and response.json()["message"] == "Nothing at /api/v1/tasks: the endpoint is /api/v1/tasks/ (with the slash)."


def test_an_unknown_url_under_the_api_is_json_for_an_anonymous_client_too(client):
    response = client.get("/api/v1/nothing-here/")

    assert response.status_code == 404 and response["Content-Type"] == "application/json"


def test_cancelling_a_task_that_has_ended_is_a_409_with_the_reason(api, task):
    response = api.post(f"/api/v1/tasks/{task.pk}/cancel/")

    assert response.status_code == 409 and response.json()["message"] == f"Task #{task.pk} is already succeeded."


def test_exiting_maintenance_of_a_host_in_service_is_a_409(administrator):
    host = HostFactory(name="kvm1", state=HostState.CONNECTED, last_seen=timezone.now())

    response = token_client(administrator).post(f"/api/v1/hosts/{host.pk}/maintenance/exit/")

    assert response.status_code == 409 and response.json()["message"] == "kvm1 is not in maintenance."


def test_the_schema_documents_each_409(api):
    paths = api.get("/api/schema/").json()["paths"]

    for path in ("/api/v1/tasks/{id}/cancel/", "/api/v1/tasks/{id}/force-complete/", "/api/v1/hosts/{id}/maintenance/enter/",
                 "/api/v1/hosts/{id}/maintenance/exit/", "/api/v1/evacuations/{id}/abort/"):
        assert "409" in paths[path]["post"]["responses"], path


@pytest.mark.parametrize("body, field", [
    ({"cron": 0}, "cron"),
    ({"name": 5}, "name"),
    ({"allow_post_copy": "true"}, "allow_post_copy"),
    ({"allow_auto_converge": 1}, "allow_auto_converge"),
    ({"max_downtime_ms": "300"}, "max_downtime_ms"),
    ({"vm_names": "web-01"}, "vm_names"),
    ({"vm_names": [1]}, "vm_names"),
    ({"priority": 1}, "priority"),
])
def test_a_body_value_of_another_json_type_is_a_400_naming_it_and_saves_nothing(api, body, field):
    VirtualMachineFactory(name="web-01")
    schedule = {"name": "nightly", "action": "move", "vm_names": ["web-01"], "recurrence": "daily", "time_of_day": "02:00", "time_zone": "UTC"}

    response = api.post("/api/v1/schedules/", {**schedule, **body}, format="json")

    assert response.status_code == 400 and list(response.json()["errors"]) == [field], response.content
    assert not Schedule.objects.exists()


def test_a_migrations_ids_must_be_numbers(api):
    vm = VirtualMachineFactory(name="web-01")

    response = api.post("/api/v1/tasks/check/", {"vm": str(vm.pk), "target": str(HostFactory().pk)}, format="json")

    assert response.status_code == 400 and set(response.json()["errors"]) == {"vm", "target"}
