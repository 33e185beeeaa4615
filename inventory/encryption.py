"""Encrypted migration: a cluster's setting and which of its hosts can encrypt.

A host can encrypt a migration stream when its QEMU has migration certificates (qemu.conf's
`migrate_tls_x509_cert_dir`). libvirt offers no API that reads qemu.conf, and no migration
flag asks "could you?" without starting one, so an administrator declares it on the host
(`Host.migration_tls`): the pre-flight check trusts that declaration, and a wrong one shows up
as libvirt's refusal of the migration, explained (hypervisor.errors.migration_failure).
"""

from __future__ import annotations

from dataclasses import dataclass

from .choices import MigrationEncryption
from .models import Cluster, Host


class EncryptionSettingError(Exception):
    """A value the setting does not take; the message lists those it does."""


@dataclass(frozen=True)
class ClusterEncryption:
    """What the cluster page and the CLI show: the setting and the hosts on each side of it."""

    cluster: Cluster
    mode: MigrationEncryption
    with_certificates: tuple[str, ...]
    without_certificates: tuple[str, ...]

    @property
    def sentence(self) -> str:
        if self.mode == MigrationEncryption.OFF:
            return "Off: migrations send the VM's memory unencrypted."
        if self.mode == MigrationEncryption.AVAILABLE:
            return "When available: a migration between two hosts with migration certificates is encrypted with TLS, any other goes unencrypted."
        return "Required: every migration is encrypted with TLS; a move to or from a host without migration certificates is refused."


# The words the CLI takes, besides the stored values.
_ALIASES = {"when-available": MigrationEncryption.AVAILABLE, "when_available": MigrationEncryption.AVAILABLE}


def cluster_encryption(cluster: Cluster) -> ClusterEncryption:
    hosts = list(cluster.hosts.order_by("name").values_list("name", "migration_tls"))
    return ClusterEncryption(
        cluster=cluster,
        mode=MigrationEncryption(cluster.migration_encryption),
        with_certificates=tuple(name for name, has in hosts if has),
        without_certificates=tuple(name for name, has in hosts if not has),
    )


def parse_mode(word: str) -> MigrationEncryption:
    value = _ALIASES.get(word.strip().lower(), word.strip().lower())
    if value not in MigrationEncryption.values:
        raise EncryptionSettingError(f"Migration encryption takes off, available or required, not {word!r}.")
    return MigrationEncryption(value)


def set_migration_encryption(cluster: Cluster, word: str) -> str:
    """Change the cluster's setting (recorded in the audit trail); returns what it now means."""
    mode = parse_mode(word)
    cluster.migration_encryption = mode
    cluster.save(update_fields=["migration_encryption"])
    report = cluster_encryption(cluster)
    sentence = f"Migration encryption of {cluster.name}: {report.sentence}"
    if mode == MigrationEncryption.REQUIRED and report.without_certificates:
        sentence += f" Until they have certificates, no VM can move to or from {', '.join(report.without_certificates)}."
    return sentence


def set_migration_tls(host: Host, has_certificates: bool) -> str:
    """Declare whether the host's QEMU has migration certificates."""
    host.migration_tls = has_certificates
    host.save(update_fields=["migration_tls"])
    if has_certificates:
        return f"{host.name} is declared to have migration certificates: encrypted migrations may use it."
    return f"{host.name} is declared to have no migration certificates: its migrations go unencrypted, or are refused where encryption is required."
