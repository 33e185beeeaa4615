"""Puts a running lab into the inventory: its cluster and hosts, then a first sync."""

from django.core.exceptions import ValidationError

from inventory.choices import MigrationEncryption
from inventory.models import Cluster, Host
from inventory.sync import SyncOutcome, sync_all_hosts

from lab.config import LabError
from lab.control import LabState

LAB_CLUSTER = "lab"


def register_lab(state: LabState) -> list[SyncOutcome]:
    cluster, _ = Cluster.objects.get_or_create(
        name=LAB_CLUSTER,
        # Plain streams, as the lab's tests and benches measure them (a new cluster's default
        # encrypts when both hosts can); a test of encryption sets the mode it tests.
        defaults={"description": "libvirt hosts of the built-in lab, each a libvirtd on this machine", "migration_encryption": MigrationEncryption.OFF},
    )
    for lab_host in state.hosts:
        try:
            # The lab's URIs pass the same rule as any host's, which allows them only in a lab
            # install (LIBVIRT_LOCAL_INSTALL).
            Host(uri=lab_host.uri, migration_uri=lab_host.peer_uri).check_uris()
        except ValidationError as error:
            raise LabError(f"{lab_host.name} cannot be registered: {' '.join(error.messages)}") from None
        host, _ = Host.objects.get_or_create(name=lab_host.name, defaults={"uri": lab_host.uri, "cluster": cluster})
        # The lab knows which of its hosts have migration certificates: it laid them out.
        host.uri, host.migration_uri, host.cluster, host.migration_tls = lab_host.uri, lab_host.peer_uri, cluster, lab_host.migration_tls
        host.save(update_fields=["uri", "migration_uri", "cluster", "migration_tls"])
    return sync_all_hosts()
