"""The migrate call a MigrationRun makes, against a fake libvirt connection: a resume of a
broken post-copy is libvirt's documented virDomainMigrateToURI3 with the original flags plus
VIR_MIGRATE_POSTCOPY | VIR_MIGRATE_POSTCOPY_RESUME, to the same destination with the same
parameters."""

from __future__ import annotations

from dataclasses import replace

import libvirt
import pytest

from hypervisor import migration
from hypervisor.migration import MigrationRequest, MigrationRun


class FakeDomain:
    def __init__(self):
        self.calls: list[tuple] = []

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
