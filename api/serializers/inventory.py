"""Clusters, hosts, datastores, networks and VMs as the API shows them. A host's libvirt URIs
appear only redacted (hypervisor/uris.py): never a password or a secret parameter."""

from rest_framework import serializers

from hypervisor.uris import redact
from inventory.models import Cluster, Datastore, DatastoreMount, Host, Network, NetworkAttachment, VirtualDisk, VirtualMachine, VirtualNic


class ClusterSerializer(serializers.ModelSerializer):
    cpu_baseline = serializers.SerializerMethodField(help_text="The CPU model VMs are held to: the computed baseline, or the model an administrator named")
    hosts = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Cluster
        fields = ["id", "name", "description", "cpu_mode", "cpu_baseline", "cpu_baseline_model", "cpu_named_model", "cpu_baseline_error", "hosts"]
        extra_kwargs = {"cpu_baseline_model": {"help_text": "The baseline computed from the hosts' CPUs"}}

    def get_cpu_baseline(self, cluster: Cluster) -> str:
        return cluster.cpu_baseline.model


class HostSerializer(serializers.ModelSerializer):
    uri = serializers.CharField(source="shown_uri", read_only=True, help_text="How vmotion reaches libvirt, without any password or secret parameter")
    migration_uri = serializers.SerializerMethodField(help_text="How other hosts reach this one for migration (empty: the libvirt URI), redacted the same way")
    reachable = serializers.BooleanField(source="is_reachable", read_only=True, help_text="libvirt answered the last sync")
    degraded = serializers.BooleanField(source="is_degraded", read_only=True)

    class Meta:
        model = Host
        fields = [
            "id", "name", "uri", "migration_uri", "cluster", "state", "reachable", "hostname", "cpu_model", "cpu_count", "cpu_mhz",
            "memory_total_bytes", "memory_free_bytes", "cpu_utilisation", "libvirt_version", "hypervisor_version", "last_seen", "last_sync",
            "last_error", "degraded", "degraded_reason", "degraded_by", "degraded_since",
        ]

    def get_migration_uri(self, host: Host) -> str:
        return redact(host.migration_uri) if host.migration_uri else ""


class DatastoreMountSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatastoreMount
        fields = ["host", "pool_name", "target_path", "active"]


class DatastoreSerializer(serializers.ModelSerializer):
    mounts = DatastoreMountSerializer(many=True, read_only=True)
    local_to = serializers.SerializerMethodField(help_text="The host whose local storage it is; null when several hosts mount it")

    class Meta:
        model = Datastore
        fields = ["id", "name", "kind", "source_key", "capacity_bytes", "available_bytes", "local_to", "mounts"]

    def get_local_to(self, datastore: Datastore) -> int | None:
        mounts = list(datastore.mounts.all())  # prefetched by the view
        return mounts[0].host_id if len(mounts) == 1 else None


class NetworkAttachmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = NetworkAttachment
        fields = ["host", "bridge", "active"]


class NetworkSerializer(serializers.ModelSerializer):
    attachments = NetworkAttachmentSerializer(many=True, read_only=True)

    class Meta:
        model = Network
        fields = ["id", "name", "bridge", "attachments"]


class VirtualDiskSerializer(serializers.ModelSerializer):
    class Meta:
        model = VirtualDisk
        fields = ["target", "source", "format", "datastore", "capacity_bytes", "allocation_bytes"]


class VirtualNicSerializer(serializers.ModelSerializer):
    class Meta:
        model = VirtualNic
        fields = ["mac", "network", "network_name", "model"]


class VirtualMachineSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True, allow_null=True, default=None)
    disks = VirtualDiskSerializer(many=True, read_only=True)
    nics = VirtualNicSerializer(many=True, read_only=True)

    class Meta:
        model = VirtualMachine
        fields = [
            "id", "uuid", "name", "host", "host_name", "power_state", "vcpus", "memory_bytes", "cpu_mode", "cpu_model", "persistent",
            "last_seen", "cpu_cores_used", "memory_in_use_bytes", "disks", "nics",
        ]
