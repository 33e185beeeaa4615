"""A password in a host's libvirt URI reaches no page, log, message, audit entry or CLI
output: where the URI is named, it is named redacted. The hosts here listen on loopback and
never answer, so every libvirt call times out with a message that names the URI."""

import logging
import socket
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from hypervisor.connection import hypervisor_error
from hypervisor.uris import HIDDEN
from inventory import sync
from inventory.models import Host
from tests.factories import HostFactory, VirtualMachineFactory

pytestmark = pytest.mark.django_db

PASSWORD = "hunter2-Secret"


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def host(settings, silent_port, monkeypatch) -> Host:
    settings.LIBVIRT_CALL_TIMEOUT_SECONDS = 0.5
    monkeypatch.setattr("inventory.enqueue.enqueue_host_sync", lambda host: None)
    return HostFactory(
        name="kvm1", uri=f"qemu+tcp://root:{PASSWORD}@127.0.0.1:{silent_port}/system",
        migration_uri=f"qemu+tls://root:{PASSWORD}@127.0.0.2:{silent_port}/system",
    )


@pytest.fixture
def failed_sync(host) -> Host:
    sync.sync_host(host)
    host.refresh_from_db()
    return host


def test_a_failed_sync_names_the_host_without_its_password_in_its_error_and_the_log(host, silent_port, caplog):
    caplog.set_level(logging.DEBUG)

    outcome = sync.sync_host(host)

    host.refresh_from_db()
    shown = f"libvirt at qemu+tcp://root:{HIDDEN}@127.0.0.1:{silent_port}/system did not answer within 0.5 s"
    assert not outcome.reachable and outcome.error == host.last_error == shown
    assert f"host kvm1 unreachable: {shown}" in caplog.text
    assert PASSWORD not in caplog.text


def test_the_host_page_shows_both_uris_and_the_error_without_the_password(failed_sync, client_as, viewer):
    page = client_as(viewer).get(failed_sync.get_absolute_url()).content.decode()

    assert f"root:{HIDDEN}@127.0.0.1" in page and f"qemu+tls://root:{HIDDEN}@127.0.0.2" in page and "did not answer" in page
    assert PASSWORD not in page


def test_the_administration_lists_and_edits_the_host_without_showing_the_password(failed_sync, client_as, administrator):
    client = client_as(administrator)

    listing = client.get(reverse("admin:inventory_host_changelist")).content.decode()
    form = client.get(reverse("admin:inventory_host_change", args=[failed_sync.pk])).content.decode()

    assert f"root:{HIDDEN}@127.0.0.1" in listing and PASSWORD not in listing
    assert f'value="{failed_sync.shown_uri}"' in form and PASSWORD not in form


def change_in_admin(client, host: Host, **fields):
    data = {"name": host.name, "uri": host.shown_uri, "migration_uri": host.shown_peer_uri, "cluster": "", "state": host.state, **fields}
    response = client.post(reverse("admin:inventory_host_change", args=[host.pk]), data)
    assert response.status_code == 302, response.content.decode()
    host.refresh_from_db()


def test_a_password_left_as_asterisks_is_kept_and_a_new_one_replaces_it(host, client_as, administrator):
    client = client_as(administrator)
    uri, migration_uri = host.uri, host.migration_uri

    change_in_admin(client, host, name="kvm1-renamed")
    assert (host.name, host.uri, host.migration_uri) == ("kvm1-renamed", uri, migration_uri)

    change_in_admin(client, host, uri=host.shown_uri.replace(HIDDEN, "n3w-pass"))
    assert host.uri == uri.replace(PASSWORD, "n3w-pass") and host.migration_uri == migration_uri


def test_the_audit_trail_records_a_uri_change_without_the_password(host, client_as, administrator):
    change_in_admin(client_as(administrator), host, uri=host.shown_uri.replace(f"root:{HIDDEN}", "admin:n3w-pass"))

    changes = [str(entry.changes) for entry in LogEntry.objects.filter(object_pk=str(host.pk))]
    page = client_as(administrator).get(reverse("audit-log")).content.decode()

    assert any(f"admin:{HIDDEN}@127.0.0.1" in change for change in changes)
    assert all(PASSWORD not in change and "n3w-pass" not in change for change in changes) and PASSWORD not in page


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda uri: uri.replace("qemu+tcp", "qemu+tls"), id="scheme"),
        pytest.param(lambda uri: uri.replace("@127.0.0.1:", "@127.0.0.9:"), id="host"),
        pytest.param(lambda uri: uri.replace("/system", "1/system"), id="port"),
        pytest.param(lambda uri: uri.replace("root:", "admin:"), id="user"),
    ],
)
def test_asterisks_in_a_uri_that_reaches_another_place_are_refused_and_the_password_stays_home(host, client_as, administrator, where):
    stored = host.uri
    edited = where(host.shown_uri)
    assert HIDDEN in edited and edited != host.shown_uri

    response = client_as(administrator).post(
        reverse("admin:inventory_host_change", args=[host.pk]),
        {"name": host.name, "uri": edited, "migration_uri": host.shown_peer_uri, "cluster": "", "state": host.state},
    )

    assert response.status_code == 200
    assert "vmotion sends only to the host it was saved for" in " ".join(response.context["adminform"].form.errors["uri"])
    host.refresh_from_db()
    assert host.uri == stored


def test_the_cli_check_reports_an_unreachable_host_without_its_password(failed_sync, caplog):
    # The check reads what the inventory's last sync found: the host did not answer.
    destination = HostFactory(name="kvm2", last_seen=timezone.now())
    vm = VirtualMachineFactory(name="web-01", host=failed_sync)
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("vmotion", "check", vm.name, "--to", destination.name, "--json", stdout=out)

    assert f"root:{HIDDEN}@127.0.0.1" in out.getvalue() and "did not answer" in out.getvalue()
    assert PASSWORD not in out.getvalue() and PASSWORD not in caplog.text


class LibvirtSays(Exception):
    """Stands in for libvirt's error (only the hypervisor package imports libvirt)."""

    def get_error_message(self) -> str:
        return self.args[0]


def test_libvirt_quoting_a_uri_is_redacted_and_no_longer_chained():
    uri = f"qemu+tcp://root:{PASSWORD}@kvm1/system"

    error = hypervisor_error(LibvirtSays(f"no connection driver available for {uri}"), uri)

    assert str(error) == f"no connection driver available for qemu+tcp://root:{HIDDEN}@kvm1/system"
    assert error.__cause__ is None  # a logged traceback would print libvirt's own words


def test_libvirt_words_without_a_secret_stay_chained_to_libvirts_error():
    original = LibvirtSays("Connection refused")

    assert hypervisor_error(original, "qemu+tcp://root:pw@kvm1/system").__cause__ is original
