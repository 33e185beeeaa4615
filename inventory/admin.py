from django.contrib import admin, messages

from . import enqueue
from .forms import HostForm
from .models import Cluster, Datastore, DatastoreMount, Host, Network, NetworkAttachment, VirtualDisk, VirtualMachine, VirtualNic


class HostInline(admin.TabularInline):
    model = Host
    form = HostForm
    fields = ["name", "uri", "state"]
    readonly_fields = ["state"]
    extra = 0
    show_change_link = True


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "cpu_mode", "cpu_named_model", "cpu_baseline_model", "cpu_baseline_updated", "migration_encryption"]
    search_fields = ["name"]
    # The baseline mode is chosen on the cluster's page, which checks the model against libvirt.
    readonly_fields = ["cpu_mode", "cpu_named_model", "cpu_baseline_model", "cpu_baseline_xml", "cpu_baseline_error", "cpu_baseline_updated"]
    exclude = ["cpu_baseline_inputs", "cpu_baseline_features", "cpu_named_features"]
    inlines = [HostInline]


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    form = HostForm
    list_display = ["name", "state", "cluster", "libvirt_uri", "migration_tls", "cpu_model", "cpu_count", "cpu_utilisation", "last_seen", "last_error"]
    list_filter = ["state", "cluster"]
    # Not by URI: a search would tell, one guess at a time, whether the password contains a text.
    search_fields = ["name", "hostname"]
    fields = ["name", "uri", "migration_uri", "cluster", "migration_tls", "state", "last_error", "last_seen", "hostname", "cpu_model", "cpu_count", "memory_total_bytes", "memory_free_bytes", "libvirt_version", "hypervisor_version"]
    readonly_fields = ["last_error", "last_seen", "hostname", "cpu_model", "cpu_count", "memory_total_bytes", "memory_free_bytes", "libvirt_version", "hypervisor_version"]
    actions = ["sync_now"]

    @admin.display(description="libvirt URI", ordering="uri")
    def libvirt_uri(self, host: Host) -> str:
        return host.shown_uri

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        enqueue.enqueue_host_sync(obj)

    @admin.action(description="Read the selected hosts from libvirt now")
    def sync_now(self, request, queryset):
        for host in queryset:
            enqueue.enqueue_host_sync(host)
        self.message_user(request, f"Queued a sync of {queryset.count()} host(s).", messages.INFO)


class DatastoreMountInline(admin.TabularInline):
    model = DatastoreMount
    extra = 0
    readonly_fields = ["host", "pool_name", "target_path", "active"]
    can_delete = False


@admin.register(Datastore)
class DatastoreAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "source_key", "capacity_bytes", "available_bytes"]
    list_filter = ["kind", "hosts"]
    search_fields = ["name", "source_key"]
    readonly_fields = ["kind", "source_key", "capacity_bytes", "available_bytes"]
    inlines = [DatastoreMountInline]


class NetworkAttachmentInline(admin.TabularInline):
    model = NetworkAttachment
    extra = 0
    readonly_fields = ["host", "bridge", "active"]
    can_delete = False


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ["name", "bridge"]
    list_filter = ["hosts"]
    search_fields = ["name", "bridge"]
    inlines = [NetworkAttachmentInline]


class VirtualDiskInline(admin.TabularInline):
    model = VirtualDisk
    extra = 0
    readonly_fields = ["target", "source", "format", "datastore"]
    can_delete = False


class VirtualNicInline(admin.TabularInline):
    model = VirtualNic
    extra = 0
    readonly_fields = ["mac", "network", "network_name", "model"]
    can_delete = False


@admin.register(VirtualMachine)
class VirtualMachineAdmin(admin.ModelAdmin):
    list_display = ["name", "host", "power_state", "vcpus", "memory_bytes", "cpu_model", "last_seen"]
    list_filter = ["power_state", "host", "host__cluster"]
    search_fields = ["name", "uuid"]
    list_select_related = ["host"]
    readonly_fields = ["uuid", "host", "power_state", "vcpus", "memory_bytes", "cpu_mode", "cpu_model", "persistent", "last_seen"]
    inlines = [VirtualDiskInline, VirtualNicInline]

    def has_add_permission(self, request):
        return False  # VMs come from libvirt, not from this form
