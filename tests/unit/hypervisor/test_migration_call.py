"""The migrate call a MigrationRun makes, against a fake libvirt connection: a resume of a
broken post-copy is libvirt's documented virDomainMigrateToURI3 with the original flags plus
VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME, to the same destination with the same
parameters."""

from __future__ import annotations

from dataclasses import replace

import libvirt
import pytest

from hypervisor import migration
from hypervisor.disk_moves import DiskMove
from hypervisor.migration import MigrationRequest, MigrationRun


class FakeDomain:
    def __init__(self):
        self.calls: list[tuple] = []
        self.xml_flags: list[int] = []

    def XMLDesc(self, flags):
        self.xml_flags.append(flags)
        return "<domain><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a/web.qcow2'/><target dev='vda'/></disk></devices></domain>"

    def migrateToURI3(self, uri, params, flags):
        self.calls.append((uri, dict(params), flags))


class FakeConnection:
    def __init__(self, domain: FakeDomain):
        self.domain, self.closed = domain, False

    def lookupByUUIDString(self, uuid):
        return self.domain

    def close(self):
        self.closed = True


@pytest.fixture
def domain(monkeypatch):
    domain = FakeDomain()
    monkeypatch.setattr(migration, "open_connection", lambda uri: FakeConnection(domain))
    monkeypatch.setattr(migration, "refuse_unless_allowed", lambda uri, what: None)
    return domain


def test_a_resume_repeats_the_migrate_call_with_postcopy_resume_added(domain):
    request = MigrationRequest(uuid="u", destination_uri="qemu+tls://kvm2/system", bandwidth_mib_s=20, post_copy=True, tls=True)

    first = MigrationRun("qemu+ssh://kvm1/system", request).start()
    resumed = MigrationRun("qemu+ssh://kvm1/system", replace(request, post_copy_resume=True)).start()

    assert first.wait(5) and resumed.wait(5) and first.error is None and resumed.error is None
    (uri, params, flags), (resume_uri, resume_params, resume_flags) = domain.calls
    assert resume_uri == uri == "qemu+tls://kvm2/system" and resume_params == params
    assert params == {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 20, libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: 20}
    assert resume_flags == flags | libvirt.VIR_MIGRATE_POSTCOPY_RESUME
    for flag in (libvirt.VIR_MIGRATE_LIVE, libvirt.VIR_MIGRATE_PEER2PEER, libvirt.VIR_MIGRATE_POSTCOPY, libvirt.VIR_MIGRATE_TLS):
        assert resume_flags & flag


def test_no_first_migration_asks_for_a_resume(domain):
    MigrationRun("qemu+ssh://kvm1/system", MigrationRequest(uuid="u", destination_uri="d", post_copy=True)).start().wait(5)

    assert not domain.calls[0][2] & libvirt.VIR_MIGRATE_POSTCOPY_RESUME


def test_disks_that_move_are_copied_and_the_destination_defines_them_on_their_new_images(domain):
    move = DiskMove("vda", "local", "/b/web.qcow2", "qcow2", 1 << 30)

    run = MigrationRun("qemu+ssh://kvm1/system", MigrationRequest(uuid="u", destination_uri="d", disk_moves=(move,))).start()

    assert run.wait(5) and run.error is None
    [(_uri, params, flags)] = domain.calls
    assert flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK and not flags & libvirt.VIR_MIGRATE_NON_SHARED_INC
    assert params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] == ["vda"]
    for key in (libvirt.VIR_MIGRATE_PARAM_DEST_XML, libvirt.VIR_MIGRATE_PARAM_PERSIST_XML):
        assert "<source file=\"/b/web.qcow2\" />" in params[key] and "/a/web.qcow2" not in params[key]
    secure = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
    assert domain.xml_flags == [secure, secure | libvirt.VIR_DOMAIN_XML_INACTIVE]


def test_a_move_of_memory_alone_copies_no_disk(domain):
    MigrationRun("qemu+ssh://kvm1/system", MigrationRequest(uuid="u", destination_uri="d")).start().wait(5)

    [(_uri, params, flags)] = domain.calls
    assert not flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK
    assert libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS not in params and domain.xml_flags == []
