from django.contrib import admin

from migrations_app.models import MigrationLimits, MigrationTask, ProgressSample, TaskEvent


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "from_state", "to_state", "message", "actor"]


@admin.register(MigrationTask)
class MigrationTaskAdmin(admin.ModelAdmin):
    list_display = ["pk", "vm", "source", "destination", "state", "priority", "requested_by", "created_at", "total_ms", "downtime_ms"]
    list_filter = ["state", "priority", "source", "destination"]
    search_fields = ["vm__name", "reason", "error"]
    list_select_related = ["vm", "source", "destination", "requested_by"]
    readonly_fields = [f.name for f in MigrationTask._meta.fields]
    inlines = [TaskEventInline]

    def has_add_permission(self, request):
        return False  # tasks are submitted through the service layer, which runs the checks


@admin.register(MigrationLimits)
class MigrationLimitsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "max_outgoing_per_host", "max_incoming_per_host", "max_concurrent"]

    def has_add_permission(self, request):
        return not MigrationLimits.objects.exists()


admin.site.register(ProgressSample, list_display=["task", "elapsed_ms", "iteration", "data_remaining", "throughput_bytes_s"], list_filter=["task"])
