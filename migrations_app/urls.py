from django.urls import path

from migrations_app.web import cluster
from migrations_app.web import health_views
from migrations_app.web import maintenance_views
from migrations_app.metrics import views as metrics_views
from migrations_app.web import schedule_views
from migrations_app.web import storage_views
from migrations_app.web import task_views as views

urlpatterns = [
    path("tasks/", views.task_list, name="task-list"),
    path("tasks/now/", views.migrations_now, name="migrations-now"),
    path("tasks/<int:pk>/", views.task_detail, name="task-detail"),
    path("tasks/<int:pk>/progress/", views.task_progress, name="task-progress"),
    path("tasks/<int:pk>/cancel/", views.task_cancel, name="task-cancel"),
    path("tasks/<int:pk>/force-complete/", views.task_force_complete, name="task-force-complete"),
    path("vms/<int:pk>/migrate/", views.migrate_vm, name="vm-migrate"),
    path("vms/<int:pk>/move-storage/", storage_views.move_storage, name="vm-move-storage"),
    path("migrate/", views.migration_wizard, name="migration-wizard"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("audit/", views.audit_log, name="audit-log"),
    path("hosts/<int:pk>/maintenance/", maintenance_views.maintenance_plan, name="maintenance-plan"),
    path("hosts/<int:pk>/maintenance/exit/", maintenance_views.maintenance_exit, name="maintenance-exit"),
    path("hosts/<int:pk>/degrade/", health_views.host_degrade, name="host-degrade"),
    path("hosts/<int:pk>/restore/", health_views.host_restore, name="host-restore"),
    path("evacuations/<int:pk>/", maintenance_views.evacuation_detail, name="evacuation-detail"),
    path("evacuations/<int:pk>/progress/", maintenance_views.evacuation_progress, name="evacuation-progress"),
    path("evacuations/<int:pk>/abort/", maintenance_views.evacuation_abort, name="evacuation-abort"),
    # A cluster's overview and settings, and every form on them (migrations_app.web.cluster).
    path("clusters/<int:pk>/", cluster.cluster_detail, name="cluster-detail"),
    path("clusters/<int:pk>/settings/", cluster.cluster_settings, name="cluster-settings"),
    path("clusters/<int:pk>/apply/", cluster.cluster_apply, name="cluster-apply"),
    path("clusters/<int:pk>/recompute/", cluster.cluster_recompute, name="cluster-recompute"),
    path("clusters/<int:pk>/policy/", cluster.cluster_policy, name="cluster-policy"),
    path("clusters/<int:pk>/health/", cluster.cluster_health, name="cluster-health"),
    path("clusters/<int:pk>/health-policy/", cluster.cluster_health_policy, name="cluster-health-policy"),
    path("clusters/<int:pk>/cpu/", cluster.cluster_cpu, name="cluster-cpu"),
    path("clusters/<int:pk>/cpu/mode/", cluster.cluster_cpu_mode, name="cluster-cpu-mode"),
    path("clusters/<int:pk>/encryption/", cluster.cluster_encryption, name="cluster-encryption"),
    path("clusters/<int:pk>/rules/", cluster.rule_add, name="rule-add"),
    path("rules/<int:pk>/delete/", cluster.rule_delete, name="rule-delete"),
    path("rules/<int:pk>/fix/", cluster.rule_fix, name="rule-fix"),
    path("vms/<int:pk>/cpu-baseline/", cluster.vm_cpu_baseline, name="vm-cpu-baseline"),
    path("schedules/", schedule_views.schedule_list, name="schedule-list"),
    path("schedules/new/", schedule_views.schedule_new, name="schedule-new"),
    path("schedules/<int:pk>/", schedule_views.schedule_detail, name="schedule-detail"),
    path("schedules/<int:pk>/edit/", schedule_views.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/enable/", schedule_views.schedule_enable, name="schedule-enable"),
    path("schedules/<int:pk>/disable/", schedule_views.schedule_disable, name="schedule-disable"),
    path("schedules/<int:pk>/delete/", schedule_views.schedule_delete, name="schedule-delete"),
    # Where Prometheus looks by default: no trailing slash.
    path("metrics", metrics_views.metrics, name="metrics"),
]
