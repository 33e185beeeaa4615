from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse

from hypervisor import uri_policy
from hypervisor.uris import redact

from .choices import ACTIVE_POWER_STATES, ClusterCpuMode, DatastoreKind, HostState, MigrationEncryption, PowerState
from .cpu_compat import Baseline, HostCpu, VmCpu, join_refusal


class Cluster(models.Model):
    """Hosts that VMs move between freely; their common CPU is the baseline VMs may use."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    # libvirt's baseline of every member's host CPU (the EVC idea): a VM whose CPU
    # fits the baseline can run on any host of the cluster.
    cpu_baseline_model = models.CharField(max_length=100, blank=True)
    cpu_baseline_xml = models.TextField(blank=True)
    cpu_baseline_error = models.TextField(blank=True)
    cpu_baseline_inputs = models.CharField(max_length=64, blank=True, help_text="Hash of the host CPUs it was computed from")
    cpu_baseline_updated = models.DateTimeField(null=True, blank=True)
    cpu_baseline_features = models.JSONField(null=True, blank=True, help_text="Every feature of the computed baseline, as libvirt lists them")
    # What VMs are held to: the computed baseline, or an older model an administrator named.
    cpu_mode = models.CharField("CPU baseline", max_length=16, choices=ClusterCpuMode.choices, default=ClusterCpuMode.COMPUTED)
    cpu_named_model = models.CharField("named CPU model", max_length=100, blank=True)
    cpu_named_features = models.JSONField(null=True, blank=True)
    migration_encryption = models.CharField(
        max_length=16, choices=MigrationEncryption.choices, default=MigrationEncryption.AVAILABLE,
        help_text="Whether migrations send the VM's memory over TLS; needs migration certificates on the hosts",
    )
    migration_bandwidth_mib_s = models.PositiveIntegerField(
        "migration bandwidth (MiB/s)", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Each host's budget for its migrations unless the host sets its own; empty: none",
    )
    keep_moved_disk_images = models.BooleanField(
        default=False,
        help_text="After a move copied a VM's disks, keep the images they left (on the source, or the former datastore) for an administrator to remove",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("cluster-detail", args=[self.pk])

    @property
    def cpu_baseline(self) -> Baseline:
        """The baseline in effect: the computed one or the named model."""
        if self.cpu_mode == ClusterCpuMode.NAMED:
            return Baseline(self.cpu_named_model, _feature_set(self.cpu_named_features), named=True)
        return Baseline(self.cpu_baseline_model, _feature_set(self.cpu_baseline_features))


def _feature_set(features: list[str] | None) -> frozenset[str] | None:
    return frozenset(features) if features is not None else None


def validate_libvirt_uri(uri: str) -> None:
    """A ValidationError unless vmotion may open `uri` (hypervisor/uri_policy.py)."""
    reason = uri_policy.refusal(uri, uri_policy.Policy.from_settings())
    if reason:
        raise ValidationError(reason, code="refused_uri")


class Host(models.Model):
    name = models.CharField(max_length=100, unique=True)
    uri = models.CharField("libvirt URI", max_length=500, help_text="How vmotion reaches libvirt, e.g. qemu+ssh://root@host1/system")
    migration_uri = models.CharField(
        "migration URI",
        max_length=500,
        blank=True,
        help_text="How other hosts' libvirt reaches this one for peer-to-peer migration; empty means the libvirt URI",
    )
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="hosts")
    state = models.CharField(max_length=32, choices=HostState.choices, default=HostState.DISCONNECTED)
    # libvirt has no API that tells whether qemu.conf names migration certificates, so an
    # administrator declares it; a migration that relies on it and finds them missing fails
    # with libvirt's refusal explained (hypervisor.errors.migration_failure).
    migration_tls = models.BooleanField(
        "migration certificates", default=False,
        help_text="Its QEMU has certificates for encrypted migration (migrate_tls_x509_cert_dir in qemu.conf)",
    )
    migration_bandwidth_mib_s = models.PositiveIntegerField(
        "migration bandwidth (MiB/s)", null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="What its migration network carries each way, shared by its migrations by priority; empty: its cluster's",
    )

    hostname = models.CharField(max_length=255, blank=True)
    cpu_model = models.CharField("CPU model", max_length=100, blank=True)
    cpu_count = models.PositiveIntegerField("CPUs", default=0)
    cpu_mhz = models.PositiveIntegerField("CPU MHz", default=0)
    cpu_xml = models.TextField("host CPU (libvirt XML)", blank=True)
    cpu_features = models.JSONField("CPU features", null=True, blank=True, help_text="Every feature of its CPU, as libvirt lists them")
    memory_total_bytes = models.BigIntegerField(default=0)
    memory_free_bytes = models.BigIntegerField(default=0)
    cpu_utilisation = models.FloatField("CPU %", null=True, blank=True)
    # Cumulative CPU counters from the previous sync: utilisation is the change between two.
    cpu_times = models.JSONField(default=dict, blank=True)
    libvirt_version = models.CharField(max_length=32, blank=True)
    hypervisor_version = models.CharField(max_length=32, blank=True)

    last_seen = models.DateTimeField(null=True, blank=True, help_text="When libvirt last answered")
    last_sync = models.DateTimeField(null=True, blank=True, help_text="When a sync last tried")
    last_error = models.TextField(blank=True, help_text="Why the last sync failed; empty when it succeeded")

    # Marked as failing, by an administrator or a health rule (inventory/degradation.py);
    # cleared only by an administrator. degraded_by says who or what, as the pages show it.
    degraded_reason = models.CharField(max_length=500, blank=True)
    degraded_by = models.CharField(max_length=200, blank=True, help_text="e.g. administrator alice, vmotion CLI, health rule 'slow libvirt'")
    degraded_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("host-detail", args=[self.pk])

    @property
    def peer_uri(self) -> str:
        return self.migration_uri or self.uri

    @property
    def shown_uri(self) -> str:
        """The libvirt URI as pages, logs and the API show it: without any password."""
        return redact(self.uri)

    @property
    def shown_peer_uri(self) -> str:
        """The migration URI (or the libvirt URI standing in for it), without any password."""
        return redact(self.peer_uri)

    @property
    def is_reachable(self) -> bool:
        return self.last_seen is not None and not self.last_error

    @property
    def is_degraded(self) -> bool:
        return self.degraded_since is not None

    @property
    def cpu(self) -> HostCpu:
        return HostCpu(self.name, self.cpu_model, _feature_set(self.cpu_features))

    def check_uris(self) -> None:
        """Raise a ValidationError naming each URI field that breaks the rule, and why. Checked
        here, not as field validators: one rule for the admin site, the API, the CLI and the lab.
        A URI left as stored is not judged again here (a form without that field could not show
        the error); the host form judges what it shows, and libvirt is never handed it anyway."""
        stored = Host.objects.filter(pk=self.pk).values("uri", "migration_uri").first() if self.pk else None
        errors = {}
        for field, value in (("uri", self.uri), ("migration_uri", self.migration_uri)):
            if value and not (stored and stored[field] == value):
                try:
                    validate_libvirt_uri(value)
                except ValidationError as error:
                    errors[field] = error
        if errors:
            raise ValidationError(errors)

    def would_join(self, cluster_id: int | None) -> bool:
        """Whether saving it with this cluster puts it into a cluster it is not in yet."""
        stored = Host.objects.filter(pk=self.pk).values_list("cluster_id", flat=True).first() if self.pk else None
        return cluster_id is not None and cluster_id != stored

    def clean(self) -> None:
        """Its URIs pass the rule of hypervisor/uri_policy.py; a host whose CPU lacks some of
        a cluster's baseline cannot join it."""
        self.check_uris()
        if self.would_join(self.cluster_id):
            refusal = join_refusal(self.cpu, self.cluster.name, self.cluster.cpu_baseline)
            if refusal:
                raise ValidationError({"cluster": refusal})


class Datastore(models.Model):
    """Storage that one or more hosts mount, read from their libvirt storage pools.

    Pools on different hosts with the same source (the same NFS export, iSCSI target,
    RBD pool or shared directory) are one datastore; `source_key` names that source.
    """

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=DatastoreKind.choices)
    source_key = models.CharField(max_length=500, unique=True)
    capacity_bytes = models.BigIntegerField(default=0)
    available_bytes = models.BigIntegerField(default=0)
    hosts = models.ManyToManyField(Host, through="DatastoreMount", related_name="datastores")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DatastoreMount(models.Model):
    """A datastore as one host sees it: its pool there and where it is mounted."""

    datastore = models.ForeignKey(Datastore, on_delete=models.CASCADE, related_name="mounts")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="datastore_mounts")
    pool_name = models.CharField(max_length=200)
    target_path = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["datastore", "host"], name="one_mount_per_host")]
        ordering = ["datastore__name", "host__name"]

    def __str__(self) -> str:
        return f"{self.datastore} on {self.host}"


class Network(models.Model):
    """A VM network by name (a libvirt network, or a bridge that NICs attach to directly)."""

    name = models.CharField(max_length=200, unique=True)
    bridge = models.CharField(max_length=64, blank=True)
    hosts = models.ManyToManyField(Host, through="NetworkAttachment", related_name="networks")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NetworkAttachment(models.Model):
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="attachments")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="network_attachments")
    bridge = models.CharField(max_length=64, blank=True)
    active = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["network", "host"], name="one_attachment_per_host")]
        ordering = ["network__name", "host__name"]

    def __str__(self) -> str:
        return f"{self.network} on {self.host}"


class VirtualMachine(models.Model):
    uuid = models.UUIDField("UUID", unique=True)
    name = models.CharField(max_length=200)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="vms")
    power_state = models.CharField(max_length=32, choices=PowerState.choices, default=PowerState.UNKNOWN)
    vcpus = models.PositiveIntegerField("vCPUs", default=0)
    memory_bytes = models.BigIntegerField(default=0)
    cpu_mode = models.CharField("CPU mode", max_length=32, blank=True)
    cpu_model = models.CharField("CPU model", max_length=100, blank=True)
    persistent = models.BooleanField(default=False, help_text="Defined on its host, not only running there")
    cpu_features = models.JSONField("CPU features", null=True, blank=True, help_text="Every feature its CPU model asks for; empty for host-model and host-passthrough")
    cpu_pending_instance_id = models.IntegerField(
        null=True, blank=True, help_text="libvirt's ID of the running instance that keeps its old CPU until it is powered off and started again",
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    # When a migration's end last read from libvirt which host it runs on: a host reading
    # taken before then says nothing about where it is now.
    located_at = models.DateTimeField(null=True, blank=True)

    # Its load at the last sync: CPU demand in cores (vCPU busy time per second) and the
    # memory its QEMU process holds. cpu_time_ns and load_sampled_at are what the next
    # sync measures the CPU demand against.
    cpu_cores_used = models.FloatField("CPU demand (cores)", null=True, blank=True)
    memory_in_use_bytes = models.BigIntegerField(null=True, blank=True)
    cpu_time_ns = models.BigIntegerField(null=True, blank=True)
    load_sampled_at = models.DateTimeField(null=True, blank=True)
    # The distinct bytes per second it dirtied when last measured, and when a sync read that
    # measurement: a migration's forecast takes it instead of sampling the guest first.
    dirty_rate_bytes_s = models.BigIntegerField("dirty rate (bytes/s)", null=True, blank=True)
    dirty_rate_read_at = models.DateTimeField(null=True, blank=True)
    # The distinct bytes it dirtied within a longer window (hypervisor.host's
    # WORKING_SET_WINDOW_SECONDS), measured likewise: far less than the rate times the window
    # means it rewrites the same pages, and this is its working set.
    dirtied_in_window_bytes = models.BigIntegerField(null=True, blank=True)
    dirtied_in_window_read_at = models.DateTimeField(null=True, blank=True)
    # The last few 1 s rates, [[ISO time read, bytes/s], ...] oldest first: one 1 s sample of a
    # few pages per GiB is noisy, and the forecast takes their median (inventory.dirty_rate).
    dirty_rate_readings = models.JSONField(default=list, blank=True)
    # The bytes of its RAM that are not all zeros, sampled from its physical memory, and when:
    # what a first pre-copy pass sends (QEMU skips zero pages), before any migration of it
    # has shown that.
    nonzero_memory_bytes = models.BigIntegerField(null=True, blank=True)
    nonzero_memory_read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "virtual machine"

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("vm-detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.power_state in ACTIVE_POWER_STATES

    # What judging a VM's CPU reads: `cpu_of` takes these columns' values, in this order.
    CPU_FIELDS = ("name", "cpu_mode", "cpu_model", "cpu_features", "cpu_pending_instance_id")

    @property
    def cpu(self) -> VmCpu:
        return self.cpu_of(*(getattr(self, field) for field in self.CPU_FIELDS))

    @staticmethod
    def cpu_of(name: str, cpu_mode: str, cpu_model: str, cpu_features: list[str] | None, cpu_pending_instance_id: int | None) -> VmCpu:
        return VmCpu(name, cpu_mode, cpu_model, _feature_set(cpu_features), restart_pending=cpu_pending_instance_id is not None)


class VmLoadSample(models.Model):
    """A VM's load at one sync: the short history that balancing reads trends from."""

    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="load_samples")
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()
    cpu_cores_used = models.FloatField()
    memory_in_use_bytes = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["vm", "-at"], name="vm_load_newest_first"), models.Index(fields=["host", "at"], name="host_load_by_time")]


class HostHealthSample(models.Model):
    """One inventory read of a host: whether libvirt answered, how long the read took, and
    the host's memory then. The short history that the health rules judge."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="health_samples")
    at = models.DateTimeField()
    ok = models.BooleanField(help_text="libvirt answered")
    latency_ms = models.PositiveIntegerField(null=True, help_text="How long the read took, answered or not")
    memory_free_bytes = models.BigIntegerField(null=True)
    memory_total_bytes = models.BigIntegerField(null=True)

    class Meta:
        indexes = [models.Index(fields=["host", "at"], name="host_health_by_time")]


class VirtualDisk(models.Model):
    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="disks")
    target = models.CharField(max_length=32, help_text="Device name in the guest, e.g. vda")
    source = models.CharField(max_length=500, blank=True, help_text="File, device, or network volume behind it")
    format = models.CharField(max_length=32, blank=True)
    datastore = models.ForeignKey(Datastore, null=True, blank=True, on_delete=models.SET_NULL, related_name="disks")
    capacity_bytes = models.BigIntegerField(null=True, blank=True, help_text="Its size as the guest sees it")
    allocation_bytes = models.BigIntegerField(null=True, blank=True, help_text="What it takes on its datastore: what a copy moves")

    class Meta:
        ordering = ["vm__name", "target"]
        constraints = [models.UniqueConstraint(fields=["vm", "target"], name="one_disk_per_target")]

    def __str__(self) -> str:
        return f"{self.vm} {self.target}"


class VirtualNic(models.Model):
    vm = models.ForeignKey(VirtualMachine, on_delete=models.CASCADE, related_name="nics")
    mac = models.CharField("MAC", max_length=17)
    network = models.ForeignKey(Network, null=True, blank=True, on_delete=models.SET_NULL, related_name="nics")
    network_name = models.CharField(max_length=200, blank=True, help_text="As the VM's definition names it")
    model = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["vm__name", "mac"]
        constraints = [models.UniqueConstraint(fields=["vm", "mac"], name="one_nic_per_mac")]
        verbose_name = "virtual NIC"

    def __str__(self) -> str:
        return f"{self.vm} {self.mac}"
