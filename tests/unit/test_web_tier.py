"""The web tier reaches no host: pages read what the workers measured, ask an inventory worker
through the queue with a bounded wait, and judge the CPUs from the inventory; the worker keeps
the jobs RQ already stored by name."""

import re

import pytest
from django.urls import reverse
from django.utils.module_loading import import_string

from inventory import enqueue as inventory_enqueue
from inventory.choices import HostState
from inventory.measure import READINGS_NOW
from inventory.models import VirtualMachine
from migrations_app.checks import store as checks
from migrations_app.engine import enqueue as migrations_enqueue
from migrations_app.automation import evacuation as evacuation_steps
from migrations_app.checks.report import CheckStatus
from migrations_app.choices import EvacuationState
from migrations_app.models import Evacuation
from tests.driver_hosts import driver_host
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db
MB = 1000**2


@pytest.mark.parametrize("name", [
    inventory_enqueue.SYNC_HOST, inventory_enqueue.MEASURE_GUESTS, inventory_enqueue.READ_HOST_CPU,
    inventory_enqueue.SET_NAMED_CPU_BASELINE, inventory_enqueue.SET_VM_CPU_TO_BASELINE, migrations_enqueue.RUN_MIGRATION,
    # Where jobs queued before these were queued by name, RQ finds them still.
    "inventory.jobs.sync_host_job", "migrations_app.engine.jobs.run_migration_job",
])
def test_every_job_queued_by_name_is_a_function_the_workers_can_import(name):
    assert callable(import_string(name))


def test_the_former_homes_of_the_enqueueing_functions_still_answer():
    from inventory import jobs as inventory_jobs
    from migrations_app.engine import jobs as migration_jobs

    assert inventory_jobs.enqueue_host_sync is inventory_enqueue.enqueue_host_sync and inventory_jobs.job_id is inventory_enqueue.job_id
    assert migration_jobs.enqueue_task is migrations_enqueue.enqueue_task and migration_jobs.job_id is migrations_enqueue.job_id


def test_a_guest_with_no_recent_measurement_is_measured_by_an_inventory_worker_for_the_page(client_as, operator, monkeypatch, inventory_worker, libvirt_forbidden):
    vm = VirtualMachineFactory(name="web-01", host=driver_host("kvm1"))
    destination = driver_host("kvm2")
    asked = []
    monkeypatch.setattr("hypervisor.guest.Guest.measure_dirty_rate", lambda guest, seconds: asked.append(guest.uuid) or 7 * MB)
    monkeypatch.setattr("hypervisor.guest.Guest.nonzero_memory_bytes", lambda guest: None)
    query = [("vm", vm.pk), (f"to-{vm.pk}", destination.pk), ("step", "confirm"), ("options", "1"), ("priority", "2"), ("max_downtime_ms", "300")]

    page = client_as(operator).get(reverse("migration-wizard"), query).content.decode()

    assert asked == [str(vm.uuid)] * READINGS_NOW  # the worker measured it: two 1 s readings, once
    vm.refresh_from_db()
    assert vm.dirty_rate_bytes_s == 7 * MB and vm.dirty_rate_read_at is not None  # kept for the next pages
    assert 'data-testid="predicted-total"' in page and re.search(r'data-testid="measured-ago">Measured \d s ago\.<', page)
    assert libvirt_forbidden == []


@pytest.mark.parametrize(("vm_cpu", "destination_features", "status", "says"), [
    ({"cpu_mode": "custom", "cpu_model": "Westmere", "cpu_features": ["aes", "sse4.2"]}, ["aes", "sse4.2", "avx"], CheckStatus.OK, "kvm2 can offer Westmere."),
    ({"cpu_mode": "custom", "cpu_model": "Haswell", "cpu_features": ["aes", "avx2"]}, ["aes"], CheckStatus.WARNING, "kvm2's CPU, as the inventory read it, lacks avx2, which Haswell uses; libvirt compares the CPUs just before"),
    ({"cpu_mode": "host-passthrough", "cpu_model": "", "cpu_features": None}, ["aes"], CheckStatus.WARNING, "kvm2's CPU, as the inventory read it, lacks avx, which kvm1's CPU (host-passthrough) uses"),
    ({"cpu_mode": "custom", "cpu_model": "Haswell", "cpu_features": ["aes"]}, None, CheckStatus.WARNING, "vmotion has not read the CPU features of kvm2 yet"),
    ({"cpu_mode": "", "cpu_model": "", "cpu_features": None}, None, CheckStatus.OK, "the hypervisor's default CPU"),
])
def test_the_cpu_check_at_submission_judges_from_the_inventory_and_leaves_refusing_to_libvirt(vm_cpu, destination_features, status, says, libvirt_forbidden):
    source = HostFactory(name="kvm1", cpu_features=["aes", "avx"])
    destination = HostFactory(name="kvm2", cpu_features=destination_features)
    vm = VirtualMachineFactory(host=source, **vm_cpu)

    result = checks.check_cpu_compatible(vm, source, destination)

    assert (result.status, says in result.message) == (status, True), result.message
    assert libvirt_forbidden == []


def test_entering_maintenance_from_the_page_opens_no_connection_and_the_scheduler_finishes_it(client_as, administrator, no_libvirt_sync, libvirt_forbidden):
    host = driver_host("kvm1")

    response = client_as(administrator).post(reverse("maintenance-plan", args=[host.pk]))

    evacuation = Evacuation.objects.get()
    assert response.status_code == 302 and evacuation.state == EvacuationState.RUNNING and libvirt_forbidden == []
    evacuation_steps.advance_all()  # the scheduler reads the host again, then ends it
    evacuation.refresh_from_db()
    host.refresh_from_db()
    assert evacuation.state == EvacuationState.COMPLETED and host.state == HostState.MAINTENANCE


def test_a_vm_baseline_cpu_asked_of_a_page_without_an_inventory_worker_changes_nothing_and_says_why(client_as, operator, monkeypatch, libvirt_forbidden):
    monkeypatch.setattr("inventory.enqueue.workers_alive", lambda queue: 0)
    vm = VirtualMachineFactory(name="web-01", host=driver_host("kvm1"), cpu_mode="host-passthrough")

    page = client_as(operator).post(reverse("vm-cpu-baseline", args=[vm.pk]), follow=True).content.decode()

    assert "Nothing changed: no inventory worker is running, and only the inventory workers reach libvirt" in page
    assert VirtualMachine.objects.get(pk=vm.pk).cpu_mode == "host-passthrough" and libvirt_forbidden == []
