"""The whole API schema, property-based (Schemathesis) with every check it has (`-c all`):
every operation called with data the schema allows, data it does not, and its boundaries,
against the live test server with an Operator's token and with an Administrator's. No answer
may be a server error or a status the schema does not document; every answer must match the
schema (content type, headers, body); data the schema refuses must be refused, and data it
allows accepted. Every other request's ids and names are the factory data's, so the
operations act on real objects: migrations are submitted and cancelled, hosts enter and exit
maintenance, schedules are made and deleted. The hosts are libvirt's test driver; nothing
migrates (the worker is tested elsewhere). A bounded number of examples per operation keeps
the run to a few minutes."""

from collections import Counter

import django_rq
import hypothesis
import pytest
import schemathesis
from django.core.servers.basehttp import WSGIServer
from django.test.testcases import LiveServerThread
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from core import api_tokens
from migrations_app.choices import RuleKind, TaskState
from migrations_app.models import AffinityRule, AffinityRuleVm, Evacuation, MigrationBatch, MigrationTask, ProgressSample, Schedule
from tests.driver_hosts import TEST_GUEST_UUID
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db(transaction=True)
QUEUES = ("high", "default", "low")
load_all_checks()
EVERY_CHECK = CHECKS.get_all()
# Data the schema allows, sent in a body, may still name a VM or host that does not exist, a
# cron expression that never fires, a time zone the tz database lacks, or a move the pre-flight
# checks refuse: rules no schema can state. Those are a 400 with the reason (the schema
# documents it); every other answer to allowed data is held to Schemathesis' own rule.
ALLOWED_DATA_ANSWERS = {200, 201, 202, 204, 401, 403, 404, 409}


class OneThreadServer(WSGIServer):
    """Django's test server answering one request after another in its own thread, which keeps
    its database connection (CONN_MAX_AGE) from one request to the next. Schemathesis sends
    one request at a time, thousands of them: a thread and a new PostgreSQL connection for
    each, as the threaded server makes, cost more than many an answer."""

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)


class OneThreadLiveServerThread(LiveServerThread):
    server_class = OneThreadServer


@pytest.fixture(scope="session")
def live_server(django_db_setup):
    """pytest-django's live server (session-wide), on the one-thread server. It stops, and
    closes its connection, before the test database is dropped."""
    server = LiveServer("localhost", start=False)
    thread = server.thread
    server.thread = OneThreadLiveServerThread(thread.host, static_handler=thread.static_handler, connections_override=thread.connections_override, port=thread.port)
    server.thread.daemon = True
    server.start()
    yield server
    server.stop()


@pytest.fixture
def inventory(cpus_compatible, no_libvirt_sync, administrator) -> dict[str, list]:
    """Hosts that answer (libvirt's test driver), VMs on them, a task in each kind of state,
    an evacuation, a schedule and a rule; the ids and names the generated requests draw from."""
    cluster = ClusterFactory(name="prod")
    hosts = [HostFactory(name=f"kvm{n}", uri="test:///default", last_seen=timezone.now(), last_error="", cluster=cluster) for n in (1, 2, 3)]
    vms = [VirtualMachineFactory(name="web-01", host=hosts[0], uuid=TEST_GUEST_UUID)] + [
        VirtualMachineFactory(name=f"app-{n}", host=hosts[n % 3]) for n in range(1, 4)
    ]
    tasks = [MigrationTask.objects.create(vm=vms[1], source=vms[1].host, destination=hosts[2])]
    migrating = MigrationTask.objects.create(vm=vms[2], source=vms[2].host, destination=hosts[0])
    migrating.transition(TaskState.CHECKING)
    migrating.transition(TaskState.MIGRATING)
    ProgressSample.objects.create(task=migrating, elapsed_ms=1000, data_total=2048, data_remaining=1024, throughput_bytes_s=512, iteration=1)
    done = MigrationTask.objects.create(vm=vms[3], source=vms[3].host, destination=hosts[1], state=TaskState.SUCCEEDED)
    tasks += [migrating, done]
    evacuation = Evacuation.objects.create(host=hosts[2], batch=MigrationBatch.objects.create())
    schedule = Schedule.objects.create(name="nightly", vm_names=["app-1"], created_by=administrator, recurrence="daily", time_of_day="02:00")
    rule = AffinityRule.objects.create(cluster=cluster, name="apart", kind=RuleKind.APART)
    AffinityRuleVm.objects.create(rule=rule, vm=vms[0], vm_name=vms[0].name)
    return {
        "clusters": [cluster.pk], "hosts": [host.pk for host in hosts], "vms": [vm.pk for vm in vms], "tasks": [task.pk for task in tasks],
        "evacuations": [evacuation.pk], "schedules": [schedule.pk], "affinity-rules": [rule.pk],
        "vm_names": [vm.name for vm in vms], "host_names": [host.name for host in hosts], "vm_hosts": {vm.pk: vm.host_id for vm in vms},
    }


@pytest.fixture
def empty_queues():
    """Submitted migrations reach Redis; no worker takes them here, and none is left behind."""
    yield
    for name in QUEUES:
        django_rq.get_queue(name).empty()


@pytest.fixture(params=["operator", "administrator"])
def api_user(request, operator, administrator):
    return {"operator": operator, "administrator": administrator}[request.param]


@pytest.fixture
def reached_real_objects(api_user, administrator):
    """After the run: the generated requests did act on the factory data, not only on ids
    that name nothing (a migration submitted, a schedule made, and, by an Administrator, an
    evacuation started)."""
    yield
    made_by_the_api = {
        "migration": MigrationTask.objects.filter(requested_by=api_user).exists(),
        "schedule": Schedule.objects.exclude(name="nightly").exists(),
    }
    if api_user == administrator:
        made_by_the_api["evacuation"] = Evacuation.objects.filter(requested_by=api_user).exists()
    assert made_by_the_api == dict.fromkeys(made_by_the_api, True)


@pytest.fixture
def api_schema(live_server, api_user, inventory, empty_queues, reached_real_objects):
    secret = api_tokens.issue(api_user, "schemathesis")[1]
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    schema.config.update(base_url=live_server.url, headers={"Authorization": f"Bearer {secret}"}, request_timeout=60)
    schema.config.generation.update(max_examples=5)
    calls = Counter()

    def turn(context, part: str) -> int:
        """How many times this operation's `part` was generated before: every other one is
        pointed at real objects, whatever the ids the database happened to give them."""
        key = (context.operation.label, part)
        calls[key] += 1
        return calls[key] - 1

    @schema.hook
    def map_path_parameters(context, path_parameters):
        return _known_id(context.operation.path, path_parameters, inventory, turn(context, "path"))

    @schema.hook
    def map_body(context, body):
        return _known_references(body, inventory, turn(context, "body"))

    return schema


def _known_id(path: str, parameters: dict, inventory: dict, turn: int) -> dict:
    known = inventory.get(path.split("/")[3])
    if not known or not parameters or turn % 2:
        return parameters
    return {name: known[turn // 2 % len(known)] for name in parameters}


def _known_references(body, inventory: dict, turn: int):
    """On even turns, the body with its references to VMs and hosts (by id or by name) real
    ones: the VMs in turn, the first of them (the one libvirt's test driver runs) every fourth
    time, and a host other than the VM's own as a migration's target."""
    if not isinstance(body, dict) or turn % 2:
        return body
    index = turn // 2
    vm = inventory["vms"][index % len(inventory["vms"])]
    elsewhere = [host for host in inventory["hosts"] if host != inventory["vm_hosts"][vm]]
    host = elsewhere[index % len(elsewhere)]
    names = dict(zip(inventory["hosts"], inventory["host_names"]))
    known = {"vm": vm, "target": host, "destination_name": names[host], "host_name": names[inventory["vm_hosts"][vm]]}
    body = {**body, **{key: value for key, value in known.items() if key in body}}
    if isinstance(body.get("vm_names"), list):
        body["vm_names"] = [inventory["vm_names"][(index + n) % len(inventory["vm_names"])] for n in range(len(body["vm_names"]))]
    return body


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck), derandomize=True)
def test_every_operation_answers_as_its_schema_says(case):
    if isinstance(case.body, NotSet) or case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        case.call_and_validate(checks=EVERY_CHECK)
        return
    response = case.call_and_validate(checks=[check for check in EVERY_CHECK if check is not positive_data_acceptance])
    assert response.status_code in ALLOWED_DATA_ANSWERS or (response.status_code == 400 and response.json()["message"]), (
        f"{case.operation.label} answered {response.status_code} to data its schema allows: {response.text[:500]}"
    )

