"""A cluster's CPU baseline from the browser, the administration and the command line. libvirt
is its test driver (test:///default), whose CPU map names and expands the real CPU models.
The pages ask an inventory worker (here, RQ in the test's process) and open no connection."""

import json
import uuid
from io import StringIO

import django_rq
import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rq import Queue, SimpleWorker

from hypervisor.connection import Connection
from hypervisor.cpu import describe_model
from inventory import sync
from inventory.choices import ClusterCpuMode, HostState
from inventory.models import Cluster, Host, VirtualMachine
from migrations_app.checks.rules import cpu_offered
from tests.driver_hosts import libvirt_allowed
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

from tests.unit.node_files import DomainSpec, NodeSpec

pytestmark = pytest.mark.django_db

TEST_DRIVER = "test:///default"
TEST_DOMAIN = "6695eb01-f6a4-8304-79aa-97f2502e193f"  # the running, persistent domain test:///default starts with
INACTIVE_XML = 2  # libvirt.VIR_DOMAIN_XML_INACTIVE: only the hypervisor package imports libvirt


def features(model: str) -> list[str]:
    return sorted(describe_model(TEST_DRIVER, "x86_64", model, timeout=10).features)


def host_with(cluster: Cluster | None, name: str, model: str, **fields) -> Host:
    return HostFactory(
        name=name, cluster=cluster, uri=TEST_DRIVER, last_seen=timezone.now(), last_error="", cpu_model=model,
        cpu_xml=f"<cpu><arch>x86_64</arch><model>{model}</model><vendor>Intel</vendor></cpu>", cpu_features=features(model), **fields,
    )


@pytest.fixture
def cluster() -> Cluster:
    """Two hosts, Haswell and Westmere, and the Westmere baseline libvirt would compute for them."""
    cluster = ClusterFactory(
        name="prod", cpu_baseline_model="Westmere", cpu_baseline_features=features("Westmere"),
        cpu_baseline_xml="<cpu mode='custom' match='exact'><model fallback='forbid'>Westmere</model><vendor>Intel</vendor></cpu>",
    )
    new, old = host_with(cluster, "new", "Haswell"), host_with(cluster, "old", "Westmere")
    VirtualMachineFactory(name="passthrough", host=new, cpu_mode="host-passthrough", persistent=True, uuid=TEST_DOMAIN)
    VirtualMachineFactory(name="haswell-vm", host=new, cpu_mode="custom", cpu_model="Haswell", cpu_features=features("Haswell"), persistent=True)
    VirtualMachineFactory(name="nehalem-vm", host=old, cpu_mode="custom", cpu_model="Nehalem", cpu_features=features("Nehalem"))
    VirtualMachineFactory(name="default-vm", host=old)
    return cluster


def exceeding_names(page: str) -> list[str]:
    table = page.split('data-testid="cpu-exceeding"', 1)[1].split("</table>", 1)[0] if 'data-testid="cpu-exceeding"' in page else ""
    return [chunk.split('"', 1)[0] for chunk in table.split('data-vm="')[1:]]


def settings_of(client, cluster) -> str:
    return client.get(reverse("cluster-settings", args=[cluster.pk])).content.decode()


def test_the_settings_list_the_vms_above_the_baseline_with_the_fix_for_operators(client_as, operator, cluster):
    page = settings_of(client_as(operator), cluster)

    assert "Baseline <strong>Westmere</strong>, computed from the hosts" in page
    assert exceeding_names(page) == ["haswell-vm", "passthrough"]
    assert "Haswell asks for avx" in page and "the hosts&#x27; CPUs differ" in page
    assert page.count("Use Westmere from next boot") == 2
    assert 'data-testid="cpu-mode-form"' not in page  # the mode is the administrators'


def test_viewers_see_the_list_without_buttons_and_administrators_get_the_mode_form(client_as, viewer, administrator, cluster):
    viewed = settings_of(client_as(viewer), cluster)
    assert exceeding_names(viewed) == ["haswell-vm", "passthrough"] and "from next boot</button>" not in viewed

    administered = settings_of(client_as(administrator), cluster)
    assert 'data-testid="cpu-mode-form"' in administered


def test_the_former_cpu_page_leads_to_the_settings_section(client_as, viewer, cluster):
    response = client_as(viewer).get(reverse("cluster-cpu", args=[cluster.pk]))

    assert response.status_code == 302 and response["Location"] == reverse("cluster-settings", args=[cluster.pk]) + "#cluster-cpu"


def test_an_administrator_names_an_older_model_that_every_host_offers(client_as, administrator, cluster, inventory_worker, libvirt_forbidden):
    client = client_as(administrator)

    response = client.post(reverse("cluster-cpu-mode", args=[cluster.pk]), {"mode": "named", "model": "Nehalem"}, follow=True)

    cluster.refresh_from_db()
    assert (cluster.cpu_mode, cluster.cpu_named_model) == (ClusterCpuMode.NAMED, "Nehalem")
    with libvirt_allowed():
        assert cluster.cpu_named_features == features("Nehalem")
    page = response.content.decode()
    assert "prod&#x27;s CPU baseline is now Nehalem" in page and "chosen by an administrator" in page
    assert "nehalem-vm" not in exceeding_names(page) and "haswell-vm" in exceeding_names(page)
    entry = LogEntry.objects.get_for_object(cluster).latest("timestamp")
    assert entry.actor == administrator and "Nehalem" in str(entry.changes)

    client.post(reverse("cluster-cpu-mode", args=[cluster.pk]), {"mode": "computed", "model": ""})
    cluster.refresh_from_db()
    assert (cluster.cpu_mode, cluster.cpu_named_model, cluster.cpu_baseline.model) == (ClusterCpuMode.COMPUTED, "", "Westmere")
    assert libvirt_forbidden == []  # an inventory worker asked libvirt


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("Nehalen", "libvirt knows no CPU model named &#x27;Nehalen&#x27; for x86_64. Did you mean Nehalem"),
        ("Haswell", "Haswell cannot be the baseline: old cannot offer it: its CPU lacks "),
        ("", "Name a CPU model"),
    ],
)
def test_a_model_libvirt_does_not_know_or_a_host_cannot_offer_gets_a_field_error_and_changes_nothing(client_as, administrator, cluster, model, error, inventory_worker, libvirt_forbidden):
    response = client_as(administrator).post(reverse("cluster-cpu-mode", args=[cluster.pk]), {"mode": "named", "model": model})

    page = response.content.decode()
    assert response.status_code == 400 and 'data-testid="field-error-model"' in page and error in page
    cluster.refresh_from_db()
    assert (cluster.cpu_mode, cluster.cpu_named_model) == (ClusterCpuMode.COMPUTED, "") and libvirt_forbidden == []


def test_the_refusal_names_the_features_the_older_host_lacks(client_as, administrator, cluster, inventory_worker, libvirt_forbidden):
    page = client_as(administrator).post(reverse("cluster-cpu-mode", args=[cluster.pk]), {"mode": "named", "model": "Haswell"}).content.decode()

    with libvirt_allowed():
        lacking = sorted(set(features("Haswell")) - set(features("Westmere")))
    assert "avx2" in lacking and f"its CPU lacks {', '.join(lacking[:12])}" in page and libvirt_forbidden == []


def test_a_model_cannot_be_named_while_no_host_answers(client_as, administrator, cluster, inventory_worker, libvirt_forbidden):
    Host.objects.update(last_error="connection refused")

    response = client_as(administrator).post(reverse("cluster-cpu-mode", args=[cluster.pk]), {"mode": "named", "model": "Nehalem"})

    assert response.status_code == 400 and "No host of it answers" in response.content.decode()
    cluster.refresh_from_db()
    assert cluster.cpu_mode == ClusterCpuMode.COMPUTED and libvirt_forbidden == []


def test_an_operator_gives_a_running_vm_the_baseline_from_its_next_boot(client_as, operator, cluster, inventory_worker):
    vm = VirtualMachine.objects.get(name="passthrough")
    # test:///default keeps its domains while one connection to it stays open.
    with Connection(TEST_DRIVER, timeout=10) as held:
        response = client_as(operator).post(reverse("vm-cpu-baseline", args=[vm.pk]), {"next": reverse("cluster-settings", args=[cluster.pk])}, follow=True)

        definition = held.call(lambda conn: conn.lookupByUUIDString(TEST_DOMAIN).XMLDesc(INACTIVE_XML), "reading")
        running = held.call(lambda conn: conn.lookupByUUIDString(TEST_DOMAIN).XMLDesc(0), "reading")
    assert "<model fallback='forbid'>Westmere</model>" in definition and "<cpu" not in running
    vm.refresh_from_db()
    assert (vm.cpu_mode, vm.cpu_model, vm.cpu_pending_instance_id) == ("custom", "Westmere", 1)
    page = response.content.decode()
    assert "power it off and start it again" in page
    assert "passthrough" not in exceeding_names(page) and 'data-testid="cpu-restart-pending"' in page
    entry = LogEntry.objects.get_for_object(vm).latest("timestamp")
    assert entry.actor == operator and "Westmere" in str(entry.changes)


def test_a_transient_vm_is_refused_and_nothing_changes(client_as, operator, cluster, inventory_worker, libvirt_forbidden):
    vm = VirtualMachine.objects.get(name="passthrough")
    VirtualMachine.objects.filter(pk=vm.pk).update(persistent=False)

    response = client_as(operator).post(reverse("vm-cpu-baseline", args=[vm.pk]), follow=True)

    assert "is transient" in response.content.decode()
    vm.refresh_from_db()
    assert (vm.cpu_mode, vm.cpu_pending_instance_id) == ("host-passthrough", None) and libvirt_forbidden == []


def test_a_host_below_the_baseline_cannot_join_the_cluster_in_the_administration(client_as, administrator, cluster, monkeypatch):
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    older = host_with(None, "older", "Nehalem")
    form = {"name": older.name, "uri": older.uri, "migration_uri": "", "cluster": cluster.pk, "state": HostState.CONNECTED}

    response = client_as(administrator).post(reverse("admin:inventory_host_change", args=[older.pk]), form)

    page = response.content.decode()
    assert response.status_code == 200 and "older cannot join prod: its CPU (Nehalem) lacks aes" in page
    assert Host.objects.get(pk=older.pk).cluster is None

    Cluster.objects.filter(pk=cluster.pk).update(cpu_mode=ClusterCpuMode.NAMED, cpu_named_model="Nehalem", cpu_named_features=features("Nehalem"))
    response = client_as(administrator).post(reverse("admin:inventory_host_change", args=[older.pk]), form)
    assert response.status_code == 302 and Host.objects.get(pk=older.pk).cluster == cluster


def test_a_new_host_is_read_by_an_inventory_worker_before_it_joins(client_as, administrator, cluster, monkeypatch, inventory_worker, libvirt_forbidden):
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    form = {"name": "fresh", "uri": TEST_DRIVER, "migration_uri": "", "cluster": cluster.pk, "state": HostState.DISCONNECTED}

    response = client_as(administrator).post(reverse("admin:inventory_host_add"), form)

    # The worker read it: the test driver's host CPU names no model, so libvirt cannot list its features.
    assert response.status_code == 200 and "vmotion could not read the CPU features of fresh" in response.content.decode()
    assert not Host.objects.filter(name="fresh").exists()

    form["cluster"] = ""
    assert client_as(administrator).post(reverse("admin:inventory_host_add"), form).status_code == 302
    assert libvirt_forbidden == []


def test_a_host_whose_cpu_is_not_read_yet_is_refused_until_the_worker_has_answered(client_as, administrator, cluster, monkeypatch, libvirt_forbidden):
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    queue = Queue(f"inventory-test-{uuid.uuid4().hex[:8]}", connection=django_rq.get_connection("inventory"))
    monkeypatch.setattr("inventory.enqueue.asking_queue", lambda: queue)
    monkeypatch.setattr("inventory.enqueue.workers_alive", lambda queue: 1)
    monkeypatch.setattr("inventory.joining.WAIT_SECONDS", 0.2)
    form = {"name": "fresh", "uri": TEST_DRIVER, "migration_uri": "", "cluster": cluster.pk, "state": HostState.DISCONNECTED}

    first = client_as(administrator).post(reverse("admin:inventory_host_add"), form).content.decode()

    assert "CPU not read yet: a check of fresh&#x27;s CPU has been queued" in first and "save again in a few seconds" in first
    assert not Host.objects.filter(name="fresh").exists() and queue.count == 1
    with libvirt_allowed():  # the inventory worker reads it
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    # Saved again, the form judges what the worker read (the test driver's CPU names no model).
    again = client_as(administrator).post(reverse("admin:inventory_host_add"), form).content.decode()
    assert "vmotion could not read the CPU features of fresh" in again and queue.count == 0
    assert libvirt_forbidden == [] and not Host.objects.filter(name="fresh").exists()
    queue.delete(delete_jobs=True)


def test_without_an_inventory_worker_the_form_says_so(client_as, administrator, cluster, monkeypatch, no_inventory_worker, libvirt_forbidden):
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    form = {"name": "fresh", "uri": TEST_DRIVER, "migration_uri": "", "cluster": cluster.pk, "state": HostState.DISCONNECTED}

    response = client_as(administrator).post(reverse("admin:inventory_host_add"), form)

    assert response.status_code == 200 and "CPU not read: no inventory worker is running" in response.content.decode()
    assert not Host.objects.filter(name="fresh").exists() and libvirt_forbidden == []


def test_the_command_line_shows_and_sets_the_baseline(cluster, administrator):
    out = StringIO()
    call_command("vmotion", "cluster", "cpu", "prod", "--model", "Nehalem", "--user", "administrator", "--json", stdout=out)

    lines = out.getvalue().splitlines()
    result = json.loads(lines[-1])
    assert (result["mode"], result["baseline"], result["computed"]) == ("named", "Nehalem", "Westmere")
    assert [row["vm"] for row in result["exceeding"]] == ["haswell-vm", "passthrough"]
    assert "aes" in result["exceeding"][0]["above_baseline"]
    assert LogEntry.objects.get_for_object(cluster).latest("timestamp").actor == administrator

    with pytest.raises(CommandError, match="knows no CPU model named 'Pentium9'"):
        call_command("vmotion", "cluster", "cpu", "prod", "--model", "Pentium9", stdout=StringIO())
    out = StringIO()
    call_command("vmotion", "cluster", "cpu", "prod", "--computed", stdout=out)
    assert "prod: CPU baseline Westmere (computed from the hosts)" in out.getvalue()


def test_the_sync_reads_each_vms_cpu_features(tmp_path):
    cpu = "<cpu mode='custom' match='exact'><model>Westmere</model><feature policy='require' name='avx'/><feature policy='disable' name='aes'/></cpu>"
    node = NodeSpec(domains=[DomainSpec("custom", "00000000-0000-0000-0000-000000000001", cpu=cpu), DomainSpec("plain", "00000000-0000-0000-0000-000000000002", mac="52:54:00:00:00:02")])
    host = HostFactory(name="h1", uri=node.write(tmp_path / "h1.xml"))

    sync.sync_host(host)

    custom, plain = VirtualMachine.objects.get(name="custom"), VirtualMachine.objects.get(name="plain")
    assert (custom.cpu_mode, custom.cpu_model) == ("custom", "Westmere")
    assert set(custom.cpu_features) == set(features("Westmere")) - {"aes"} | {"avx"}
    assert plain.cpu_features is None


def test_the_cpu_check_names_the_features_the_destination_lacks():
    result = cpu_offered("old", "Haswell", False, ("avx", "avx2"), "the CPU is incompatible with host CPU")

    assert result.message == "old cannot offer Haswell: its CPU lacks avx, avx2, which the VM's CPU uses. Set the VM's CPU to the cluster's baseline (on the cluster's page)."
    assert "host CPU" in cpu_offered("old", "Haswell", False, (), "the CPU is incompatible with host CPU").message
