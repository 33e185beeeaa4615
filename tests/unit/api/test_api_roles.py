"""Every API operation against every role, generated from the OpenAPI schema and the URL
conf: no token is a 401, a user without a role or below the operation's role a 403 that names
the role, and each role at or above it is served. An operation added without a row here
fails the first test; an /api/ URL outside the schema fails the second."""

import re
from contextlib import contextmanager

import pytest
from auditlog.models import LogEntry
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.urls import URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator

from core.roles import Role
from inventory.models import Datastore, DatastoreMount, Network, NetworkAttachment
from migrations_app.choices import RuleKind
from migrations_app.models import AffinityRule, Evacuation, MigrationBatch, MigrationTask, ProgressSample, Schedule
from tests.api import token_client
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db

V, O, A = Role.VIEWER, Role.OPERATOR, Role.ADMINISTRATOR
# operationId -> the role it needs: the same as the page that does the same thing.
OPERATIONS = {
    "clusters_list": V, "clusters_retrieve": V, "clusters_balance_create": O,
    "hosts_list": V, "hosts_retrieve": V,
    "hosts_maintenance_plan_retrieve": A, "hosts_maintenance_enter_create": A, "hosts_maintenance_exit_create": A,
    "datastores_list": V, "datastores_retrieve": V,
    "networks_list": V, "networks_retrieve": V,
    "vms_list": V, "vms_retrieve": V, "vms_recommendations_retrieve": O,
    "tasks_list": V, "tasks_retrieve": V, "tasks_samples_list": V,
    "tasks_create": O, "tasks_check_create": O, "tasks_storage_create": O, "tasks_cancel_create": O, "tasks_force_complete_create": O,
    "evacuations_list": V, "evacuations_retrieve": V, "evacuations_abort_create": A,
    "schedules_list": V, "schedules_retrieve": V, "schedules_create": O, "schedules_update": O, "schedules_partial_update": O,
    "schedules_destroy": O, "schedules_enable_create": O, "schedules_disable_create": O,
    "affinity_rules_list": V, "affinity_rules_retrieve": V,
    "audit_entries_list": A, "audit_entries_retrieve": A,
}
# /api/ URLs that are not operations of the schema: the schema itself, the page over it, and
# the JSON 404 of every other URL.
OUTSIDE_THE_SCHEMA = {"api:schema", "api:docs", "api:unknown"}
PERSONAS = {"viewer": V, "operator": O, "administrator": A}


def schema_operations() -> list[tuple[str, str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(method.upper(), path, operation["operationId"]) for path, methods in schema["paths"].items() for method, operation in methods.items()]


OPERATION_LIST = schema_operations()


@pytest.fixture(autouse=True)
def scheduler(db):
    """The creator of the schedules below: an Operator, so that editing one is judged by the editor's role."""
    user = User.objects.create(username="scheduler")
    user.groups.add(Group.objects.get(name=Role.OPERATOR.group_name))
    return user


def make_objects() -> dict[str, int]:
    """One object of each kind, for the ids in the paths. No host answers: nothing reaches libvirt."""
    host = HostFactory(uri="test:///default")
    vm = VirtualMachineFactory(host=host)
    task = MigrationTask.objects.create(vm=vm, source=host, destination=HostFactory(uri="test:///default"))
    ProgressSample.objects.create(task=task, elapsed_ms=1000)
    datastore = Datastore.objects.create(name="nfs", kind="netfs", source_key="netfs:nas:/vm")
    DatastoreMount.objects.create(datastore=datastore, host=host, pool_name="nfs")
    network = Network.objects.create(name="lan")
    NetworkAttachment.objects.create(network=network, host=host)
    evacuation = Evacuation.objects.create(host=host, batch=MigrationBatch.objects.create())
    rule = AffinityRule.objects.create(cluster=ClusterFactory(), name="apart", kind=RuleKind.APART)
    schedule = Schedule.objects.create(name="nightly", vm_names=[vm.name], created_by=User.objects.get(username="scheduler"))
    return {
        "clusters": rule.cluster_id, "hosts": host.pk, "datastores": datastore.pk, "networks": network.pk, "vms": vm.pk, "tasks": task.pk,
        "evacuations": evacuation.pk, "schedules": schedule.pk, "affinity-rules": rule.pk, "audit-entries": LogEntry.objects.latest("pk").pk,
    }


def url_of(path: str, objects: dict[str, int]) -> str:
    resource = path.split("/")[3]
    return re.sub(r"\{(id|task_pk)\}", str(objects[resource]), path)


@contextmanager
def rolled_back():
    """Each operation meets the same objects: what one changes is undone before the next."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def call_every_operation(client) -> dict[str, tuple[int, dict]]:
    answers = {}
    for method, path, operation_id in OPERATION_LIST:
        with rolled_back():
            response = getattr(client, method.lower())(url_of(path, make_objects()), {}, format="json")
            answers[operation_id] = (response.status_code, response.json() if response.content else {})
    return answers


def test_every_operation_of_the_schema_has_its_role_here():
    assert {operation_id for _, _, operation_id in OPERATION_LIST} == set(OPERATIONS)


def test_every_api_url_is_an_operation_of_the_schema_or_named_here():
    def patterns(resolver: URLResolver, namespace: str):
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                yield from patterns(pattern, pattern.namespace or namespace)
            else:
                yield namespace, pattern

    api = next(pattern for pattern in get_resolver().url_patterns if isinstance(pattern, URLResolver) and pattern.namespace == "api")
    outside = set()
    for namespace, pattern in patterns(api, "api"):
        view = pattern.callback
        if getattr(view, "cls", None) is None or f"{namespace}:{pattern.name}" == "api:schema":
            outside.add(f"{namespace}:{pattern.name}")
    assert outside == OUTSIDE_THE_SCHEMA


def test_every_operation_says_in_the_schema_the_role_it_needs():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, methods in schema["paths"].items():
        for operation in methods.values():
            assert operation["description"].endswith(f"Needs the {OPERATIONS[operation['operationId']].group_name} role."), operation["operationId"]


def test_without_a_token_every_operation_is_a_401_in_json_and_never_the_sign_in_page():
    answers = call_every_operation(token_client())

    wrong = {name: answer for name, answer in answers.items() if answer[0] != 401 or "message" not in answer[1]}
    assert wrong == {}


def test_an_unknown_token_is_refused_with_401():
    status, body = call_every_operation(token_client(secret="vmo_not-a-token"))["vms_list"]

    assert status == 401 and body["message"] == "This API token is unknown or revoked."


def test_a_user_without_a_role_is_refused_everything(no_role_user):
    answers = call_every_operation(token_client(no_role_user))

    wrong = {name: answer for name, answer in answers.items() if answer[0] != 403}
    assert wrong == {}
    assert answers["vms_list"][1]["message"] == "This needs the Viewer role."


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_role_is_served_at_or_above_the_operations_role_and_refused_below(request, persona):
    held = PERSONAS[persona]

    answers = call_every_operation(token_client(request.getfixturevalue(persona)))

    refused = {name for name, (status, _) in answers.items() if status == 403}
    assert refused == {name for name, needed in OPERATIONS.items() if needed > held}
    for name in refused:
        assert answers[name][1]["message"] == f"This needs the {OPERATIONS[name].group_name} role.", name
    assert not {name: answer for name, answer in answers.items() if answer[0] in (401, 500)}
