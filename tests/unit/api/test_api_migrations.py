"""Migrations through the API: submitted (202), refused (400 with the checks, 409 for a second
active one), checked without submitting, destinations ranked, cancelled and forced to
complete, each through the service layer the wizard and the CLI use. Nothing migrates here:
the hosts are libvirt's test driver, whose one guest is really measured; the worker is tested
elsewhere."""

import pytest

from inventory.choices import HostState
from migrations_app import services
from migrations_app.choices import Priority, TaskState
from migrations_app.models import MigrationTask, ProgressSample
from tests.api import token_client
from tests.driver_hosts import TEST_GUEST_UUID, driver_host, measured
from tests.factories import VirtualMachineFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cpus_compatible")]
GIB = 1024**3


@pytest.fixture
def kvm1():
    return driver_host("kvm1")


@pytest.fixture
def kvm2():
    return driver_host("kvm2")


@pytest.fixture
def vm(kvm1):
    return VirtualMachineFactory(name="web-01", host=kvm1, uuid=TEST_GUEST_UUID, memory_bytes=2 * GIB)


def test_a_migration_is_accepted_with_202_and_the_queued_task(api, operator, vm, kvm2):
    response = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk, "priority": "high", "max_downtime_ms": 500, "reason": "firmware"}, format="json")

    assert response.status_code == 202, response.json()
    task = MigrationTask.objects.get()
    body = response.json()
    assert response["Location"] == f"/api/v1/tasks/{task.pk}/"
    assert body["id"] == task.pk and body["state"] == "queued" and body["vm_name"] == "web-01" and body["destination_name"] == "kvm2"
    assert body["priority"] == "high" and body["max_downtime_ms"] == 500 and body["requested_by"] == "operator"
    assert task.priority == Priority.HIGH and task.requested_by == operator and task.reason == "firmware"
    assert body["events"][0]["message"] == "Requested by operator: web-01 from kvm1 to kvm2, high priority."
    assert body["progress"]["phase"] == "Waiting for a worker"
    assert body["warnings"] == []


def test_allowing_post_copy_between_hosts_whose_libvirt_cannot_resume_it_is_accepted_with_a_warning(api, vm, kvm1, kvm2):
    kvm1.libvirt_version = kvm2.libvirt_version = "11.3.0"
    kvm1.save()
    kvm2.save()

    response = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk, "allow_post_copy": True}, format="json")

    assert response.status_code == 202, response.json()
    [warning] = response.json()["warnings"]
    assert warning.startswith("kvm1 -> kvm2: a broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0")
    assert MigrationTask.objects.get().allow_post_copy


def test_no_post_copy_warning_unless_post_copy_is_allowed_or_where_libvirt_can_resume(api, vm, kvm1, kvm2):
    kvm1.libvirt_version, kvm2.libvirt_version = "11.3.0", "11.3.0"
    kvm1.save()
    kvm2.save()
    without = api.post("/api/v1/tasks/check/", {"vm": vm.pk, "target": kvm2.pk}, format="json").json()
    with_post_copy = api.post("/api/v1/tasks/check/", {"vm": vm.pk, "target": kvm2.pk, "allow_post_copy": True}, format="json").json()
    kvm1.libvirt_version = kvm2.libvirt_version = "11.4.0"
    kvm1.save()
    kvm2.save()
    resumable = api.post("/api/v1/tasks/check/", {"vm": vm.pk, "target": kvm2.pk, "allow_post_copy": True}, format="json").json()

    assert without["warnings"] == [] and resumable["warnings"] == []
    assert len(with_post_copy["warnings"]) == 1 and "fixed in libvirt 11.4.0" in with_post_copy["warnings"][0]
    assert not MigrationTask.objects.exists()


def test_a_second_migration_of_the_same_vm_is_a_409_naming_the_active_task(api, vm, kvm2):
    first = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk}, format="json").json()

    response = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk}, format="json")

    assert response.status_code == 409
    assert response.json() == {
        "message": f"web-01 already has an active migration, task #{first['id']} (queued).", "checks": [], "errors": {}, "task": first["id"],
    }
    assert MigrationTask.objects.count() == 1


def test_a_failing_check_is_a_400_with_every_check_and_nothing_is_submitted(api, vm):
    closed = driver_host("kvm3", state=HostState.MAINTENANCE)

    response = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": closed.pk}, format="json")

    body = response.json()
    assert response.status_code == 400 and body["message"].startswith("web-01 cannot move to kvm3:")
    verdicts = {check["name"]: check["status"] for check in body["checks"]}
    assert verdicts["destination_open"] == "fail" and verdicts["vm_runs"] == "ok"
    assert list(verdicts) == [result.name for result in services.check_migration(vm, closed).results]  # every check, in order
    assert not MigrationTask.objects.exists()


@pytest.mark.parametrize("change, field, why", [
    ({"vm": "web-01"}, "vm", "Incorrect type"),
    ({"vm": 999999}, "vm", "does not exist"),
    ({"vm": 10**30}, "vm", "does not exist"),
    ({"target": None}, "target", "may not be null"),
    ({"max_downtime_ms": 10**30}, "max_downtime_ms", "less than or equal to 60000"),
    ({"max_downtime_ms": "soon"}, "max_downtime_ms", "valid integer"),
    ({"bandwidth_mib_s": 0}, "bandwidth_mib_s", "greater than or equal to 1"),
    ({"priority": "urgent"}, "priority", "not a valid choice"),
    ({"allow_post_copy": "perhaps"}, "allow_post_copy", "valid boolean"),
    ({"reason": "x" * 501}, "reason", "no more than 500"),
    ({"reason": "a\x00b"}, "reason", "Null characters"),
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, vm, kvm2, change, field, why):
    request = {"vm": vm.pk, "target": kvm2.pk, **change}

    for url in ("/api/v1/tasks/", "/api/v1/tasks/check/"):
        response = api.post(url, request, format="json")
        body = response.json()
        assert response.status_code == 400 and why in " ".join(body["errors"][field]), body
        assert body["message"].startswith(f"Bad input: {field}:")
    assert not MigrationTask.objects.exists()


def test_a_missing_field_or_a_body_that_is_not_json_is_a_400(api, vm):
    missing = api.post("/api/v1/tasks/", {"vm": vm.pk}, format="json")
    garbled = api.post("/api/v1/tasks/", "{not json", content_type="application/json")
    listed = api.post("/api/v1/tasks/", [vm.pk], format="json")

    assert missing.status_code == 400 and missing.json()["errors"] == {"target": ["This field is required."]}
    assert garbled.status_code == 400 and "JSON parse error" in garbled.json()["message"]
    assert listed.status_code == 400 and "input" in listed.json()["errors"]
    assert not MigrationTask.objects.exists()


def test_check_reports_every_check_and_the_forecast_and_submits_nothing(api, vm, kvm2, libvirt_forbidden):
    measured(vm, seconds_ago=20, dirty_rate_bytes_s=5 * 1000**2, resident_bytes=512 * 1024**2)

    response = api.post("/api/v1/tasks/check/", {"vm": vm.pk, "target": kvm2.pk, "max_downtime_ms": 400}, format="json")

    body = response.json()
    assert response.status_code == 200 and body["passed"] is True and body["active_task"] is None
    assert body["message"] == "All pre-flight checks passed." and all(check["status"] != "fail" for check in body["checks"])
    assert body["prediction"]["total_ms"] > 0 and body["prediction"]["strategy"] and body["prediction"]["summary"]
    # Nothing moved yet: the whole resident set is expected in the first pass, every pass at one rate.
    assert body["prediction"]["first_pass_bytes"] == body["prediction"]["resident_bytes"] > 0
    assert body["prediction"]["resend_bytes_s"] == body["prediction"]["link_bytes_s"] > 0
    assert body["prediction"]["resident_bytes"] == 512 * 1024**2 and body["prediction"]["dirty_rate_bytes_s"] == 5 * 1000**2
    assert 20 <= body["prediction"]["measured_seconds_ago"] <= 25
    assert libvirt_forbidden == [] and not MigrationTask.objects.exists()


def test_check_of_a_move_that_would_be_refused_says_why_without_a_forecast(api, vm, kvm2):
    same_host = api.post("/api/v1/tasks/check/", {"vm": vm.pk, "target": vm.host.pk}, format="json").json()
    active = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk}, format="json").json()
    again = api.post("/api/v1/tasks/check/", {"vm": vm.pk, "target": kvm2.pk}, format="json").json()

    assert again["passed"] is False and again["active_task"] == active["id"] and again["prediction"] is None
    assert same_host["passed"] is False and "already runs on kvm1" in same_host["message"] and same_host["prediction"] is None
    assert {"name": "distinct_hosts", "status": "fail"}.items() <= same_host["checks"][1].items()
    assert MigrationTask.objects.count() == 1


def test_recommendations_rank_every_other_host_best_first_with_why_a_host_cannot_take_it(api, vm):
    driver_host("roomy", memory_free_bytes=60 * GIB)
    driver_host("tight", memory_free_bytes=8 * GIB)
    driver_host("closed", state=HostState.MAINTENANCE)

    response = api.get(f"/api/v1/vms/{vm.pk}/recommendations/")

    body = response.json()
    assert response.status_code == 200 and body["vm"] == vm.pk and body["vm_name"] == "web-01"
    assert [candidate["host_name"] for candidate in body["candidates"]] == ["roomy", "tight", "closed"]
    roomy, _, closed = body["candidates"]
    assert roomy["eligible"] and roomy["score"] > 0 and roomy["reasons"] and roomy["blocked_by"] is None
    assert not closed["eligible"] and closed["blocked_by"] == {"check": "destination_open", "message": "closed is in maintenance: it takes no new VMs."}


def test_cancel_ends_a_queued_task_and_a_final_one_is_refused_with_the_reason(api, operator, vm, kvm2):
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=kvm2)

    cancelled = api.post(f"/api/v1/tasks/{task.pk}/cancel/")
    again = api.post(f"/api/v1/tasks/{task.pk}/cancel/")

    assert cancelled.status_code == 200 and cancelled.json()["message"] == f"Task #{task.pk} cancelled; it never started."
    assert cancelled.json()["task"]["state"] == "cancelled"
    assert task.events.get(to_state=TaskState.CANCELLED).actor == operator
    assert again.status_code == 409 and again.json()["message"] == f"Task #{task.pk} is already cancelled."


def test_cancel_of_a_migrating_task_asks_its_worker(api, vm, kvm2):
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=kvm2)
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING)

    response = api.post(f"/api/v1/tasks/{task.pk}/cancel/")

    assert response.status_code == 200 and "cancel requested" in response.json()["message"]
    assert response.json()["task"]["cancel_requested"] is True and response.json()["task"]["state"] == "migrating"


def test_force_complete_asks_a_migrating_task_to_finish_and_refuses_a_queued_one(api, vm, kvm2):
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=kvm2, allow_post_copy=True)

    refused = api.post(f"/api/v1/tasks/{task.pk}/force-complete/")
    task.transition(TaskState.CHECKING)
    task.transition(TaskState.MIGRATING)
    forced = api.post(f"/api/v1/tasks/{task.pk}/force-complete/")

    assert refused.status_code == 409 and refused.json()["message"].startswith("Only a migrating task can be forced to complete")
    assert forced.status_code == 200 and forced.json()["message"] == f"Task #{task.pk}: completing now by switching to post-copy."
    task.refresh_from_db()
    assert task.force_complete_requested


def test_an_unknown_task_is_a_404_in_json(api):
    for response in (api.get("/api/v1/tasks/999999/"), api.post("/api/v1/tasks/999999/cancel/"), api.get("/api/v1/tasks/999999/samples/"),
                     api.get("/api/v1/tasks/abc/"), api.get(f"/api/v1/tasks/{10**30}/")):
        assert response.status_code == 404 and response.json()["message"], response.content


def test_a_task_shows_its_progress_timeline_and_samples(client, viewer, vm, kvm2):
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=kvm2)
    task.transition(TaskState.CHECKING, "Checking again.")
    task.transition(TaskState.MIGRATING)
    for elapsed, remaining in ((1000, 1500), (2000, 500)):
        ProgressSample.objects.create(task=task, elapsed_ms=elapsed, data_total=2000, data_remaining=remaining, throughput_bytes_s=1000, iteration=2)
    api = token_client(viewer)

    detail = api.get(f"/api/v1/tasks/{task.pk}/").json()
    samples = api.get(f"/api/v1/tasks/{task.pk}/samples/").json()
    later = api.get(f"/api/v1/tasks/{task.pk}/samples/", {"elapsed_after_ms": 1000}).json()

    assert detail["progress"]["percent"] == 75 and detail["progress"]["remaining_bytes"] == 500
    assert [event["to_state"] for event in detail["events"]] == ["checking", "migrating"]
    assert samples["count"] == 2 and [sample["elapsed_ms"] for sample in samples["results"]] == [1000, 2000]
    assert [sample["elapsed_ms"] for sample in later["results"]] == [2000]


def test_a_migration_that_copies_the_disks_names_a_datastore_of_the_target(api, vm, kvm1, kvm2):
    from inventory.models import Datastore, DatastoreMount, VirtualDisk
    from migrations_app.models import TaskDiskMove

    theirs = Datastore.objects.create(name="images (kvm2)", kind="dir", source_key="directory://b", available_bytes=50 * GIB)
    mine = Datastore.objects.create(name="images (kvm1)", kind="dir", source_key="directory://a", available_bytes=50 * GIB)
    DatastoreMount.objects.create(datastore=theirs, host=kvm2, pool_name="images", target_path="/srv/images", active=True)
    DatastoreMount.objects.create(datastore=mine, host=kvm1, pool_name="images", target_path="/var/lib/libvirt/images", active=True)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/var/lib/libvirt/images/web-01.qcow2", format="qcow2", datastore=mine, capacity_bytes=10 * GIB, allocation_bytes=GIB)

    refused = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk, "datastore": mine.pk}, format="json")
    accepted = api.post("/api/v1/tasks/", {"vm": vm.pk, "target": kvm2.pk, "datastore": theirs.pk}, format="json")

    assert refused.status_code == 400 and "kvm2 does not mount it" in str(refused.json()), refused.json()
    assert accepted.status_code == 202, accepted.json()
    move = TaskDiskMove.objects.get()
    assert (move.target, move.destination_path, move.destination_datastore) == ("vda", "/srv/images/web-01.qcow2", theirs)


def test_a_storage_only_move_is_accepted_with_202_and_refused_with_the_reason(api, vm, kvm1):
    from inventory.models import Datastore, DatastoreMount, VirtualDisk

    nfs = Datastore.objects.create(name="nfs", kind="netfs", source_key="nfs://filer/vms", available_bytes=500 * GIB)
    ssd = Datastore.objects.create(name="ssd (kvm1)", kind="dir", source_key=f"host-{kvm1.pk}:directory://ssd", available_bytes=50 * GIB)
    DatastoreMount.objects.create(datastore=nfs, host=kvm1, pool_name="nfs", target_path="/mnt/nfs", active=True)
    DatastoreMount.objects.create(datastore=ssd, host=kvm1, pool_name="ssd", target_path="/srv/ssd", active=True)
    VirtualDisk.objects.create(vm=vm, target="vda", source="/mnt/nfs/web-01.qcow2", format="qcow2", datastore=nfs, capacity_bytes=10 * GIB, allocation_bytes=GIB)

    nowhere = api.post("/api/v1/tasks/storage/", {"vm": vm.pk}, format="json")
    stays = api.post("/api/v1/tasks/storage/", {"vm": vm.pk, "disks": {"vda": nfs.pk}}, format="json")
    accepted = api.post("/api/v1/tasks/storage/", {"vm": vm.pk, "datastore": ssd.pk, "reason": "Off the filer"}, format="json")

    assert nowhere.status_code == 400 and "Say where the disks go" in str(nowhere.json())
    assert stays.status_code == 400 and "nothing to move" in str(stays.json()), stays.json()
    assert accepted.status_code == 202, accepted.json()
    body = accepted.json()
    assert (body["kind"], body["source"], body["destination"], body["state"]) == ("storage", kvm1.pk, kvm1.pk, "queued")
    assert [(m["target"], m["source_path"], m["destination_path"]) for m in body["disk_moves"]] == [("vda", "/mnt/nfs/web-01.qcow2", "/srv/ssd/web-01.qcow2")]
    assert accepted["Location"] == f"/api/v1/tasks/{body['id']}/"
    assert MigrationTask.objects.count() == 1
