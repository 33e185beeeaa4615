"""A host's URI cannot run anything: each vector is refused through the administration, the
API and the CLI with an error naming the parameter, nothing is saved, and the program a URI
names never runs (its marker file never appears), also when the inventory reads every host
afterwards. A URI stored before the rule is never opened, and a migration never hands such a
URI to the source host's libvirtd."""

import stat
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from hypervisor.connection import with_connection
from hypervisor.errors import UriRefusedError
from hypervisor.migration import MigrationRequest, MigrationRun
from inventory import sync
from inventory.choices import HostState
from inventory.models import Host
from tests.api import token_client
from tests.factories import ClusterFactory, HostFactory

pytestmark = pytest.mark.django_db

# Allowed, and fails at once when the inventory reads it: nothing listens on loopback port 1.
GOOD_URI = "qemu+tls://127.0.0.1:1/system"

# (name, URI with {script} and {tmp} filled in, what the field error names)
VECTORS = [
    ("ext command", "qemu+ext:///system?command={script}", "qemu+ext://"),
    ("ssh command", "qemu+ssh://kvm1.example/system?command={script}", "command="),
    ("bash runs the key file", "qemu+ssh://kvm1.example/system?command=/bin/bash&keyfile={script}", "command="),
    ("netcat", "qemu+ssh://kvm1.example/system?netcat={script}", "netcat="),
    ("no_verify", "qemu+tls://kvm1.example/system?no_verify=1", "no_verify="),
    ("socket", "qemu+ssh://kvm1.example/system?socket={tmp}/libvirt-sock", "socket="),
    ("tcp to an internal address", "qemu+tcp://internal.example:16509/system", "qemu+tcp://"),
    ("keyfile outside the key directories", "qemu+ssh://root@kvm1.example/system?keyfile={tmp}/id_ed25519", "keyfile="),
]
IDS = [name for name, _, _ in VECTORS]


@pytest.fixture(params=["production", "lab"])
def install(request, settings):
    """Both kinds of install: the vectors are refused in a lab too."""
    settings.LIBVIRT_LOCAL_INSTALL = request.param == "lab"
    settings.LIBVIRT_URI_DIRECTORIES = ["~/.ssh", "/etc/pki"] + (["/var/lib/vmotion-lab"] if request.param == "lab" else [])
    return request.param


@pytest.fixture
def marker_script(tmp_path):
    """A real program that leaves a marker file when anything runs it."""
    marker = tmp_path / "ran"
    script = tmp_path / "marker-script"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script, marker


@pytest.fixture
def vector(request, marker_script, tmp_path):
    _, template, named = request.param
    return template.format(script=marker_script[0], tmp=tmp_path), named


@pytest.fixture(autouse=True)
def no_queue(monkeypatch):
    # What a save queues, run here at once: a sync of the saved host opens its URI.
    monkeypatch.setattr("inventory.jobs.enqueue_host_sync", lambda host: sync.sync_host(host))


def nothing_ran(marker) -> bool:
    """No host's URI ran the program, now or when the inventory reads every host."""
    sync.sync_all_hosts()
    return not marker.exists()


def host_form(host: Host | None = None, **fields) -> dict:
    data = {"name": "kvm1", "uri": GOOD_URI, "migration_uri": "", "cluster": "", "state": HostState.DISCONNECTED}
    if host is not None:
        data.update(name=host.name, uri=host.shown_uri, migration_uri=host.shown_peer_uri if host.migration_uri else "", state=host.state)
    return {**data, **fields}


def test_the_marker_script_runs_when_libvirt_is_handed_the_uri(marker_script, monkeypatch):
    """The control: on this machine the vector is live, so an absent marker below means
    nothing ran it, not that it could not have."""
    script, marker = marker_script
    monkeypatch.setattr("hypervisor.connection.uri_policy.refusal", lambda uri, policy: None)

    with pytest.raises(Exception):
        with_connection(f"qemu+ext:///system?command={script}", 10, lambda conn: None)

    assert marker.exists()


@pytest.mark.parametrize("field", ["uri", "migration_uri"])
@pytest.mark.parametrize("vector", VECTORS, ids=IDS, indirect=True)
def test_the_administration_refuses_a_new_host_with_the_vector(install, vector, field, marker_script, client_as, administrator):
    uri, named = vector

    response = client_as(administrator).post(reverse("admin:inventory_host_add"), host_form(**{field: uri}))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert named in " ".join(errors[field]), errors
    assert Host.objects.count() == 0
    assert nothing_ran(marker_script[1])


@pytest.mark.parametrize("field", ["uri", "migration_uri"])
@pytest.mark.parametrize("vector", VECTORS, ids=IDS, indirect=True)
def test_the_administration_refuses_the_vector_in_a_hosts_change(install, vector, field, marker_script, client_as, administrator):
    uri, named = vector
    host = HostFactory(name="kvm1", uri=GOOD_URI, migration_uri="")

    response = client_as(administrator).post(reverse("admin:inventory_host_change", args=[host.pk]), host_form(host, **{field: uri}))

    assert response.status_code == 200
    assert named in " ".join(response.context["adminform"].form.errors[field])
    assert Host.objects.values_list("uri", "migration_uri").get() == (GOOD_URI, "")
    assert nothing_ran(marker_script[1])


def test_the_administration_names_the_parameter_and_why(settings, client_as, administrator):
    settings.LIBVIRT_LOCAL_INSTALL = False

    response = client_as(administrator).post(reverse("admin:inventory_host_add"), host_form(uri="qemu+ssh://kvm1.example/system?command=/bin/bash"))

    assert "The parameter command= is refused: libvirt would run the program it names" in response.content.decode()


@pytest.mark.parametrize("vector", VECTORS, ids=IDS, indirect=True)
def test_the_api_offers_no_way_to_write_a_hosts_uri(install, vector, marker_script, administrator):
    uri, _ = vector
    host = HostFactory(name="kvm1", uri=GOOD_URI, migration_uri="")
    api = token_client(administrator)

    created = api.post("/api/v1/hosts/", {"name": "kvm2", "uri": uri, "migration_uri": uri}, format="json")
    changed = [api.generic(method, f"/api/v1/hosts/{host.pk}/", f'{{"uri": "{uri}", "migration_uri": "{uri}"}}', content_type="application/json") for method in ("PATCH", "PUT")]

    # No write method on hosts: refused as not allowed, whoever asks.
    assert {created.status_code, *(each.status_code for each in changed)} <= {403, 405}
    assert list(Host.objects.values_list("name", "uri", "migration_uri")) == [("kvm1", GOOD_URI, "")]
    assert nothing_ran(marker_script[1])


@pytest.mark.parametrize("field", ["uri", "migration_uri"])
@pytest.mark.parametrize("vector", VECTORS, ids=IDS, indirect=True)
def test_the_cli_refuses_to_add_a_host_with_the_vector(install, vector, field, marker_script):
    uri, named = vector
    out = StringIO()
    arguments = ["kvm1", uri] if field == "uri" else ["kvm1", GOOD_URI, "--migration-uri", uri]

    with pytest.raises(CommandError) as refusal:
        call_command("vmotion", "host", "add", *arguments, "--json", stdout=out)

    assert f"{field}: " in str(refusal.value) and named in str(refusal.value)
    assert named in out.getvalue()
    assert Host.objects.count() == 0
    assert nothing_ran(marker_script[1])


@pytest.mark.parametrize("field", ["uri", "migration_uri"])
@pytest.mark.parametrize("vector", VECTORS, ids=IDS, indirect=True)
def test_the_cli_refuses_to_change_a_hosts_uri_to_the_vector(install, vector, field, marker_script):
    uri, named = vector
    HostFactory(name="kvm1", uri=GOOD_URI, migration_uri="")
    arguments = [uri] if field == "uri" else ["--migration-uri", uri]

    with pytest.raises(CommandError) as refusal:
        call_command("vmotion", "host", "uri", "kvm1", *arguments, stdout=StringIO())

    assert f"{field}: " in str(refusal.value) and named in str(refusal.value)
    assert Host.objects.values_list("uri", "migration_uri").get() == (GOOD_URI, "")
    assert nothing_ran(marker_script[1])


def test_the_cli_adds_and_changes_a_host_whose_uris_pass_the_rule(settings):
    settings.LIBVIRT_LOCAL_INSTALL = False
    out = StringIO()

    call_command("vmotion", "host", "add", "kvm1", "qemu+ssh://root:pw@127.0.0.1:1/system", "--migration-uri", "qemu+tls://127.0.0.2:1/system", stdout=out)
    call_command("vmotion", "host", "uri", "kvm1", "qemu+tls://127.0.0.1:1/system?pkipath=/etc/pki/vmotion", stdout=out)

    host = Host.objects.get(name="kvm1")
    assert (host.uri, host.migration_uri) == ("qemu+tls://127.0.0.1:1/system?pkipath=/etc/pki/vmotion", "qemu+tls://127.0.0.2:1/system")
    assert "kvm1: vmotion reaches it at qemu+ssh://root:********@127.0.0.1:1/system" in out.getvalue()


def test_a_uri_stored_before_the_rule_is_never_opened_and_the_host_says_why(settings, marker_script):
    settings.LIBVIRT_LOCAL_INSTALL = False
    script, marker = marker_script
    host = HostFactory(name="kvm1", uri=f"qemu+ext:///system?command={script}", state=HostState.CONNECTED)

    outcome = sync.sync_host(host)

    host.refresh_from_db()
    assert not outcome.reachable
    assert host.state == HostState.DISCONNECTED
    assert host.last_error.startswith("vmotion does not open the libvirt URI qemu+ext:///system?command=")
    assert "The transport qemu+ext:// is refused: libvirt would run the program that its command= names." in host.last_error
    assert not marker.exists()


def test_a_migration_never_hands_a_refused_destination_uri_to_the_source(settings, marker_script, monkeypatch):
    settings.LIBVIRT_LOCAL_INSTALL = True
    script, marker = marker_script
    opened = []
    monkeypatch.setattr("hypervisor.migration.open_connection", lambda uri: opened.append(uri))
    request = MigrationRequest(uuid="6695eb01-f6a4-8304-79aa-97f2502e193f", destination_uri=f"qemu+ssh://kvm2.example/system?command={script}")

    run = MigrationRun("test:///default", request).start()

    assert run.wait(10)
    assert isinstance(run.error, UriRefusedError)
    assert str(run.error).startswith("vmotion does not open the migration URI qemu+ssh://kvm2.example/system?command=")
    assert opened == [] and not marker.exists()


def cluster_form(cluster, host, **host_fields) -> dict:
    """The cluster's administration page with its one host in the inline."""
    return {
        "name": cluster.name, "description": "", "migration_encryption": cluster.migration_encryption, "migration_bandwidth_mib_s": "",
        "hosts-TOTAL_FORMS": "1", "hosts-INITIAL_FORMS": "1", "hosts-MIN_NUM_FORMS": "0", "hosts-MAX_NUM_FORMS": "1000",
        "hosts-0-id": str(host.pk), "hosts-0-cluster": str(cluster.pk), "hosts-0-name": host.name, "hosts-0-uri": host.shown_uri,
        **{f"hosts-0-{name}": value for name, value in host_fields.items()},
    }


def test_the_clusters_host_list_refuses_the_vector_and_keeps_a_stored_migration_uri_it_does_not_show(settings, client_as, administrator, marker_script):
    settings.LIBVIRT_LOCAL_INSTALL = False
    script, marker = marker_script
    stored_before_the_rule = f"qemu+ssh://kvm1.example/system?command={script}"
    host = HostFactory(name="kvm1", uri=GOOD_URI, migration_uri=stored_before_the_rule)
    cluster = host.cluster = ClusterFactory(name="prod")
    host.save()
    client = client_as(administrator)

    refused = client.post(reverse("admin:inventory_cluster_change", args=[cluster.pk]), cluster_form(cluster, host, uri=f"qemu+ext:///system?command={script}"))
    saved = client.post(reverse("admin:inventory_cluster_change", args=[cluster.pk]), cluster_form(cluster, host, name="kvm1-renamed"))

    assert refused.status_code == 200 and "qemu+ext://" in refused.content.decode()
    assert saved.status_code == 302
    assert Host.objects.values_list("name", "uri", "migration_uri").get() == ("kvm1-renamed", GOOD_URI, stored_before_the_rule)
    assert nothing_ran(marker)
