"""Migration encryption from the cluster's settings, the host page, the task page and the command
line: administrators set it, everyone reads it, bad input changes nothing."""

import json
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.urls import reverse

from inventory.choices import MigrationEncryption
from inventory.models import Cluster
from migrations_app.models import MigrationTask
from tests.api import token_client
from tests.factories import ClusterFactory, HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    cluster = ClusterFactory(name="prod", migration_encryption=MigrationEncryption.OFF)
    HostFactory(name="h1", cluster=cluster, migration_tls=True)
    HostFactory(name="h2", cluster=cluster, migration_tls=True)
    HostFactory(name="h3", cluster=cluster, migration_tls=False)
    return cluster


def section(page: str) -> str:
    return page.split('data-testid="cluster-encryption"', 1)[1].split("</section>", 1)[0]


def test_the_cluster_settings_show_the_setting_and_which_hosts_have_certificates(client_as, viewer, cluster):
    page = section(client_as(viewer).get(reverse("cluster-settings", args=[cluster.pk])).content.decode())

    assert "Off: migrations send the VM&#x27;s memory unencrypted." in page
    assert 'data-testid="hosts-with-certificates">h1, h2<' in page
    assert 'data-testid="hosts-without-certificates">h3<' in page
    assert 'data-testid="encryption-form"' not in page


def test_an_administrator_requires_encryption_and_is_told_which_hosts_cannot_take_part(client_as, administrator, cluster):
    client = client_as(administrator)
    assert 'data-testid="encryption-form"' in section(client.get(reverse("cluster-settings", args=[cluster.pk])).content.decode())

    response = client.post(reverse("cluster-encryption", args=[cluster.pk]), {"mode": "required"}, follow=True)

    cluster.refresh_from_db()
    assert cluster.migration_encryption == MigrationEncryption.REQUIRED
    page = response.content.decode()
    assert "Until they have certificates, no VM can move to or from h3." in page
    assert "Required: every migration is encrypted with TLS" in section(page)
    assert LogEntry.objects.get_for_object(cluster).latest("timestamp").actor == administrator


def test_a_value_the_setting_does_not_take_changes_nothing_and_the_settings_say_why(client_as, administrator, cluster):
    response = client_as(administrator).post(reverse("cluster-encryption", args=[cluster.pk]), {"mode": "sometimes"})

    cluster.refresh_from_db()
    assert cluster.migration_encryption == MigrationEncryption.OFF
    assert response.status_code == 400 and "Select a valid choice. sometimes is not one of the available choices." in section(response.content.decode())


def test_operators_cannot_change_it(client_as, operator, cluster):
    response = client_as(operator).post(reverse("cluster-encryption", args=[cluster.pk]), {"mode": "required"})

    cluster.refresh_from_db()
    assert response.status_code == 403 and cluster.migration_encryption == MigrationEncryption.OFF


def test_the_command_line_shows_and_sets_it(cluster, administrator):
    out, err = StringIO(), StringIO()
    call_command("vmotion", "cluster", "encryption", "prod", "available", "--user", "administrator", "--json", stdout=out, stderr=err)

    result = json.loads(out.getvalue())
    assert result == {"cluster": "prod", "encryption": "available", "with_certificates": ["h1", "h2"], "without_certificates": ["h3"]}
    assert "prod: migration encryption when available." in err.getvalue()
    assert LogEntry.objects.get_for_object(cluster).latest("timestamp").actor == administrator

    with pytest.raises(CommandError, match="Migration encryption takes off, available or required, not 'maybe'."):
        call_command("vmotion", "cluster", "encryption", "prod", "maybe", stdout=StringIO())
    cluster.refresh_from_db()
    assert cluster.migration_encryption == MigrationEncryption.AVAILABLE


def test_the_command_line_declares_a_hosts_migration_certificates(cluster):
    out, err = StringIO(), StringIO()
    call_command("vmotion", "host", "migration-tls", "h3", "yes", "--json", stdout=out, stderr=err)

    assert json.loads(out.getvalue()) == {"host": "h3", "migration_tls": True}
    assert "h3 is declared to have migration certificates" in err.getvalue()
    assert cluster.hosts.get(name="h3").migration_tls


def test_the_host_page_says_whether_it_has_migration_certificates(client_as, viewer, cluster):
    h3 = cluster.hosts.get(name="h3")
    h3.migration_uri = "qemu+tls://h3/system?pkipath=/etc/vmotion&auth_token=abc"
    h3.save()

    page = client_as(viewer).get(reverse("host-detail", args=[h3.pk])).content.decode()

    assert 'data-testid="host-migration-tls">none declared: its migrations go unencrypted<' in page
    assert "abc" not in page and "auth_token=********" in page


@pytest.mark.parametrize(("encrypted", "shown"), [(None, "—"), (True, "yes, TLS"), (False, "no")])
def test_the_task_page_says_whether_the_stream_was_encrypted(client_as, viewer, encrypted, shown):
    vm = VirtualMachineFactory()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(), encrypted=encrypted)

    page = client_as(viewer).get(reverse("task-detail", args=[task.pk])).content.decode()

    assert f'data-testid="task-encrypted">{shown}<' in page


def test_a_new_cluster_encrypts_when_both_hosts_can():
    assert Cluster.objects.create(name="new").migration_encryption == MigrationEncryption.AVAILABLE


@pytest.mark.parametrize("encrypted", [None, True, False])
def test_the_api_says_whether_a_tasks_stream_was_encrypted(viewer, encrypted):
    vm = VirtualMachineFactory()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(), encrypted=encrypted)
    api = token_client(viewer)

    assert api.get(f"/api/v1/tasks/{task.pk}/").json()["encrypted"] is encrypted
    assert api.get("/api/v1/tasks/").json()["results"][0]["encrypted"] is encrypted


def test_the_command_line_says_a_task_was_encrypted():
    vm = VirtualMachineFactory()
    task = MigrationTask.objects.create(vm=vm, source=vm.host, destination=HostFactory(), encrypted=True)
    out, err = StringIO(), StringIO()

    call_command("vmotion", "show", str(task.pk), "--json", stdout=out, stderr=err)

    assert "encrypted (TLS)" in err.getvalue().splitlines()[0]
    assert json.loads(out.getvalue())["encrypted"] is True
