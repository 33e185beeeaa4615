"""Starting a peer-to-peer live migration. libvirt's migrate call blocks until the migration
ends, so it runs in a thread of its own while the caller monitors the job through a `Guest`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from .connection import describe, open_connection, refuse_unless_allowed
from .disk_moves import DiskMove, moved_definition
from .errors import HypervisorError, migration_failure
from .uris import redact_text


@dataclass(frozen=True)
class MigrationRequest:
    uuid: str
    destination_uri: str  # as the source's libvirtd reaches the destination
    bandwidth_mib_s: int | None = None
    auto_converge: bool = False
    auto_converge_initial: int = 20
    auto_converge_increment: int = 10
    post_copy: bool = False
    # QEMU encrypts the memory stream with TLS (VIR_MIGRATE_TLS), with the certificates in
    # each host's migrate_tls_x509_cert_dir; libvirt refuses if either host lacks them.
    tls: bool = False
    # Resume a post-copy migration whose stream broke (VIR_MIGRATE_POSTCOPY_RESUME, with the
    # original flags, as libvirt documents): only where both hosts' libvirt can
    # (migrations_app.convergence.post_copy_recovery); 11.2 and 11.3 crash the destination.
    post_copy_resume: bool = False
    # Disks that move with the VM (see disk_moves); none when all are on shared datastores.
    disk_moves: tuple[DiskMove, ...] = ()


class MigrationRun:
    """One migration call in its own thread and connection; `wait` tells when it returned."""

    def __init__(self, source_uri: str, request: MigrationRequest, on_done: Callable[[], None] = lambda: None):
        self.source_uri = source_uri
        self.request = request
        self.on_done = on_done  # called from the migration's thread once the call returned
        self.error: HypervisorError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"migrate {request.uuid}", daemon=True)

    def start(self) -> "MigrationRun":
        self._thread.start()
        return self

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            # The source's libvirtd opens the destination's URI: a command= there would run on it.
            refuse_unless_allowed(self.request.destination_uri, "migration URI")
            conn = open_connection(self.source_uri)
            try:
                dom = conn.lookupByUUIDString(self.request.uuid)
                params = _params(self.request) | _disk_params(dom, self.request.disk_moves)
                dom.migrateToURI3(self.request.destination_uri, params, _flags(self.request))
            finally:
                conn.close()
        except HypervisorError as error:
            self.error = error
        except libvirt.libvirtError as error:
            # libvirt may quote either URI, and the destination's can carry a password too.
            self.error = HypervisorError(migration_failure(describe(error, self.source_uri, self.request.destination_uri)))
        except Exception as error:  # never leave the caller waiting on a thread that died silently
            message = f"migration thread failed: {error!r}"
            for uri in (self.source_uri, self.request.destination_uri):
                message = redact_text(message, uri)
            self.error = HypervisorError(message)
        finally:
            self._done.set()
            self.on_done()


def _flags(request: MigrationRequest) -> int:
    # No VIR_MIGRATE_UNDEFINE_SOURCE: the completed job's statistics are read on the source
    # (the destination has none after post-copy), so the caller undefines it afterwards.
    flags = (
        libvirt.VIR_MIGRATE_LIVE
        | libvirt.VIR_MIGRATE_PEER2PEER
        | libvirt.VIR_MIGRATE_PERSIST_DEST
        | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
    )
    if request.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if request.post_copy or request.post_copy_resume:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if request.post_copy_resume:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY_RESUME
    if request.tls:
        flags |= libvirt.VIR_MIGRATE_TLS
    if request.disk_moves:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    return flags


def _params(request: MigrationRequest) -> dict:
    params: dict = {}
    if request.bandwidth_mib_s:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = request.bandwidth_mib_s
        if request.post_copy:
            params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY] = request.bandwidth_mib_s
    if request.auto_converge:
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = request.auto_converge_initial
        params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = request.auto_converge_increment
    return params


def _disk_params(dom: libvirt.virDomain, moves: tuple[DiskMove, ...]) -> dict:
    """The disks to copy, and the destination's definitions with them on their new images.
    The definitions carry the domain's secrets (a console password, say), as the source's
    own would: read with VIR_DOMAIN_XML_SECURE, handed to libvirt, never kept."""
    if not moves:
        return {}
    migratable = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
    return {
        libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: [move.target for move in moves],
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: moved_definition(dom.XMLDesc(migratable), moves),
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: moved_definition(dom.XMLDesc(migratable | libvirt.VIR_DOMAIN_XML_INACTIVE), moves),
    }
