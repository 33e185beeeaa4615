"""The migration wizard through the Django test client. The confirm step forecasts from the
inventory's measurements and opens no libvirt connection; nothing here can migrate, so the
lab's browser tests follow a wizard's migration to its end."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.choices import HostState, PowerState
from migrations_app.models import MigrationBatch, MigrationTask, Schedule
from tests.driver_hosts import TEST_GUEST_UUID, driver_host, measured
from tests.factories import VirtualMachineFactory

pytestmark = pytest.mark.django_db
GIB = 1024**3
MB = 1000**2


@pytest.fixture
def kvm1():
    return driver_host("kvm1")


@pytest.fixture
def vm(kvm1):
    return VirtualMachineFactory(name="web-01", host=kvm1, uuid=TEST_GUEST_UUID, memory_bytes=2 * GIB)


def wizard(client, *vms, **params):
    query = [("vm", vm.pk) for vm in vms] + list(params.items())
    return client.get(reverse("migration-wizard"), query)


def options(**overrides):
    return {"options": "1", "priority": "2", "max_downtime_ms": "300", "allow_auto_converge": "on", "reason": "", **overrides}


def test_the_destination_step_ranks_hosts_preselects_the_best_and_disables_a_failing_one(client_as, operator, vm):
    driver_host("roomy", memory_free_bytes=60 * GIB)
    driver_host("tight", memory_free_bytes=8 * GIB)
    driver_host("closed", state=HostState.MAINTENANCE)

    page = wizard(client_as(operator), vm).content.decode()

    assert page.index('data-host="roomy"') < page.index('data-host="tight"') < page.index('data-host="closed"')
    roomy_row = page[page.index('data-host="roomy"'):page.index('data-host="tight"')]
    assert "checked" in roomy_row and "checked" not in page[page.index('data-host="tight"'):]
    assert "GiB free after the move" in page and "Recommended" in page
    closed_row = page[page.index('data-host="closed"'):]
    assert "disabled" in closed_row[:600] and "takes no new VMs" in closed_row[:1200]


def test_a_batch_is_spread_so_no_host_takes_more_than_it_can(client_as, operator, kvm1):
    first = VirtualMachineFactory(name="app-1", host=kvm1, memory_bytes=4 * GIB)
    second = VirtualMachineFactory(name="app-2", host=kvm1, memory_bytes=4 * GIB)
    for name in ("kvm2", "kvm3"):
        driver_host(name, memory_total_bytes=8 * GIB, memory_free_bytes=6 * GIB)  # room for one of them each

    response = wizard(client_as(operator), first, second, step="options")

    chosen = {choice.vm.name: choice.move.chosen.host.name for choice in response.context["wizard"].choices}
    assert sorted(chosen.values()) == ["kvm2", "kvm3"]
    assert response.context["wizard"].step == "options"


def test_picking_a_host_that_fails_a_check_keeps_the_destination_step_with_the_reason(client_as, operator, vm):
    driver_host("kvm2")
    closed = driver_host("closed", state=HostState.MAINTENANCE)

    response = wizard(client_as(operator), vm, **{f"to-{vm.pk}": closed.pk, "step": "options"})

    assert response.context["wizard"].step == "destination"
    assert "takes no new VMs" in response.content.decode()
    assert 'data-testid="destination-error"' in response.content.decode()


@pytest.mark.parametrize("ids", [["999999"], ["abc"]])
def test_an_unknown_vm_is_a_404(client_as, operator, ids):
    assert client_as(operator).get(reverse("migration-wizard"), {"vm": ids}).status_code == 404


def test_without_a_vm_the_wizard_sends_the_operator_to_the_vm_list(client_as, operator):
    response = client_as(operator).get(reverse("migration-wizard"))
    assert response.status_code == 302 and response["Location"] == reverse("vm-list")


def test_a_bad_option_re_renders_the_options_with_the_error_next_to_the_field(client_as, operator, vm):
    kvm2 = driver_host("kvm2")

    response = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(max_downtime_ms="0")})

    page = response.content.decode()
    assert response.context["wizard"].step == "options"
    assert 'data-testid="field-error-max_downtime_ms"' in page and "greater than or equal to 1" in page
    assert not MigrationTask.objects.exists()


def test_the_confirm_step_shows_the_forecast_from_the_inventorys_measurement_and_its_age_without_opening_libvirt(client_as, operator, vm, libvirt_forbidden):
    kvm2 = driver_host("kvm2")
    measured(vm, seconds_ago=12, dirty_rate_bytes_s=10 * MB, resident_bytes=GIB)

    response = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(bandwidth_mib_s="100")})

    row = response.context["review"][0]
    assert row.refusal is None
    # 1 GiB resident at 100 MiB/s: about 10 s plus the setup.
    assert 10_000 < row.forecast.forecast.prediction.total_ms < 12_000
    assert row.forecast.forecast.dirty_rate_bytes_s == 10 * MB
    page = response.content.decode()
    assert 'data-testid="predicted-total"' in page and 'data-testid="predicted-pause"' in page
    assert re.search(r'data-testid="measured-ago">Measured (1[2-9]|2\d) s ago\.<', page)
    assert libvirt_forbidden == [] and not MigrationTask.objects.exists()


def test_a_guest_the_inventory_has_not_measured_has_no_forecast_and_the_page_says_why(client_as, operator, vm, libvirt_forbidden, no_inventory_worker):
    kvm2 = driver_host("kvm2")
    vm.dirty_rate_bytes_s, vm.dirty_rate_read_at = 10 * MB, timezone.now() - timedelta(hours=1)  # too old to stand
    vm.save()

    response = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options()})

    assert response.context["review"][0].forecast.forecast is None
    assert "No forecast: Not measured yet: no inventory worker is running. The checks passed; it can still move." in response.content.decode()
    assert libvirt_forbidden == []


def test_submitting_creates_the_task_with_the_options_and_opens_its_page(client_as, operator, vm):
    kvm2 = driver_host("kvm2")
    data = {"vm": vm.pk, f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(reason="rack swap")}

    response = client_as(operator).post(reverse("migration-wizard"), data)

    task = MigrationTask.objects.get(vm=vm)
    assert response.status_code == 302 and response["Location"] == task.get_absolute_url()
    assert (task.destination, task.reason, task.max_downtime_ms, task.requested_by) == (kvm2, "rack swap", 300, operator)
    assert task.batch is None


def test_a_batch_with_a_vm_that_cannot_move_submits_none_unless_the_operator_confirms_the_rest(client_as, operator, vm, kvm1):
    kvm2 = driver_host("kvm2")
    stopped = VirtualMachineFactory(name="db-01", host=kvm1, power_state=PowerState.SHUT_OFF)
    data = {"vm": [vm.pk, stopped.pk], f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options()}
    client = client_as(operator)

    refused = client.post(reverse("migration-wizard"), data)

    assert refused.status_code == 400
    assert "Nothing was submitted: db-01 cannot move" in refused.content.decode()
    assert not MigrationTask.objects.exists() and not MigrationBatch.objects.exists()

    confirmed = client.post(reverse("migration-wizard"), {**data, "without_refused": "1"})

    batch = MigrationBatch.objects.get()
    assert confirmed["Location"] == batch.get_absolute_url()
    assert [task.vm.name for task in batch.tasks.all()] == ["web-01"]


def test_the_batch_page_follows_every_task_until_each_has_ended(client_as, viewer, vm, kvm1):
    batch = MigrationBatch.objects.create(reason="rack swap")
    other = VirtualMachineFactory(name="app-2", host=kvm1)
    for machine in (vm, other):
        MigrationTask.objects.create(vm=machine, source=kvm1, destination=driver_host(f"to-{machine.name}"), batch=batch)
    client = client_as(viewer)

    page = client.get(batch.get_absolute_url()).content.decode()
    assert "web-01" in page and "app-2" in page and 'hx-trigger="every 1s"' in page

    MigrationTask.objects.update(state="cancelled")
    fragment = client.get(reverse("batch-progress", args=[batch.pk])).content.decode()
    assert "hx-trigger" not in fragment and "Every migration of this batch has ended." in fragment


def test_a_viewer_cannot_open_or_submit_the_wizard(client_as, viewer, vm):
    kvm2 = driver_host("kvm2")
    client = client_as(viewer)
    assert wizard(client, vm).status_code == 403
    assert client.post(reverse("migration-wizard"), {"vm": vm.pk, f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options()}).status_code == 403
    assert not MigrationTask.objects.exists()


def test_run_at_turns_the_moves_into_a_one_off_schedule_and_submits_nothing_now(client_as, operator, vm):
    kvm2 = driver_host("kvm2")
    data = {"vm": vm.pk, f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(), "when": "at", "run_at": "2030-01-15T02:00", "window_minutes": "30"}

    response = client_as(operator).post(reverse("migration-wizard"), data)

    schedule = Schedule.objects.get()
    assert response["Location"] == schedule.get_absolute_url()
    assert (schedule.vm_names, schedule.destination_name, schedule.window_minutes, schedule.recurrence) == (["web-01"], "kvm2", 30, "once")
    assert not MigrationTask.objects.exists()


def test_run_at_in_the_past_comes_back_with_the_reason(client_as, operator, vm):
    kvm2 = driver_host("kvm2")
    data = {"vm": vm.pk, f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(), "when": "at", "run_at": "2020-01-15T02:00"}

    response = client_as(operator).post(reverse("migration-wizard"), data)

    assert response.status_code == 400 and "is in the past" in response.content.decode()
    assert not Schedule.objects.exists() and not MigrationTask.objects.exists()


def test_the_options_step_warns_beside_allow_post_copy_when_the_hosts_libvirt_cannot_resume_it(client_as, operator, vm, kvm1, libvirt_forbidden):
    kvm1.libvirt_version = "11.3.0"
    kvm1.save()
    kvm2 = driver_host("kvm2", libvirt_version="11.3.0")

    response = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "options"})

    page = response.content.decode()
    assert response.context["wizard"].step == "options"
    warning = page[page.index('data-testid="post-copy-warning"'):]
    assert page.index("Allow post-copy") < page.index('data-testid="post-copy-warning"')
    assert "kvm1 -&gt; kvm2: a broken link during the post-copy phase loses the running guest on this libvirt (libvirt 11.3.0" in warning
    assert "crashes when asked to resume a broken post-copy (fixed in libvirt 11.4.0)" in warning
    assert libvirt_forbidden == []


def test_no_post_copy_warning_where_both_hosts_can_resume(client_as, operator, vm, kvm1):
    kvm1.libvirt_version = "11.4.0"
    kvm1.save()
    kvm2 = driver_host("kvm2", libvirt_version="11.5.0")

    options_page = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "options"}).content.decode()
    confirm_page = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(allow_post_copy="on")}).content.decode()

    assert "post-copy-warning" not in options_page and "post-copy-warning" not in confirm_page


def test_the_confirm_step_repeats_the_warning_only_when_post_copy_was_allowed(client_as, operator, vm, kvm1, no_inventory_worker):
    kvm1.libvirt_version = "11.3.0"
    kvm1.save()
    kvm2 = driver_host("kvm2", libvirt_version="11.4.0")

    allowed = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options(allow_post_copy="on")}).content.decode()
    not_allowed = wizard(client_as(operator), vm, **{f"to-{vm.pk}": kvm2.pk, "step": "confirm", **options()}).content.decode()

    assert "You allowed post-copy:" in allowed and "kvm1 runs libvirt 11.3.0" in allowed and "kvm2 runs" not in allowed
    assert "post-copy-warning" not in not_allowed
