from django.urls import path

from . import balance_views, maintenance_views, schedule_views, views

urlpatterns = [
    path("tasks/", views.task_list, name="task-list"),
    path("tasks/now/", views.migrations_now, name="migrations-now"),
    path("tasks/<int:pk>/", views.task_detail, name="task-detail"),
    path("tasks/<int:pk>/progress/", views.task_progress, name="task-progress"),
    path("tasks/<int:pk>/cancel/", views.task_cancel, name="task-cancel"),
    path("tasks/<int:pk>/force-complete/", views.task_force_complete, name="task-force-complete"),
    path("vms/<int:pk>/migrate/", views.migrate_vm, name="vm-migrate"),
    path("migrate/", views.migration_wizard, name="migration-wizard"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/progress/", views.batch_progress, name="batch-progress"),
    path("audit/", views.audit_log, name="audit-log"),
    path("hosts/<int:pk>/maintenance/", maintenance_views.maintenance_plan, name="maintenance-plan"),
    path("hosts/<int:pk>/maintenance/exit/", maintenance_views.maintenance_exit, name="maintenance-exit"),
    path("evacuations/<int:pk>/", maintenance_views.evacuation_detail, name="evacuation-detail"),
    path("evacuations/<int:pk>/progress/", maintenance_views.evacuation_progress, name="evacuation-progress"),
    path("evacuations/<int:pk>/abort/", maintenance_views.evacuation_abort, name="evacuation-abort"),
    path("clusters/<int:pk>/", balance_views.cluster_detail, name="cluster-detail"),
    path("clusters/<int:pk>/policy/", balance_views.cluster_policy, name="cluster-policy"),
    path("clusters/<int:pk>/apply/", balance_views.cluster_apply, name="cluster-apply"),
    path("schedules/", schedule_views.schedule_list, name="schedule-list"),
    path("schedules/new/", schedule_views.schedule_new, name="schedule-new"),
    path("schedules/<int:pk>/", schedule_views.schedule_detail, name="schedule-detail"),
    path("schedules/<int:pk>/edit/", schedule_views.schedule_edit, name="schedule-edit"),
    path("schedules/<int:pk>/enable/", schedule_views.schedule_enable, name="schedule-enable"),
    path("schedules/<int:pk>/disable/", schedule_views.schedule_disable, name="schedule-disable"),
    path("schedules/<int:pk>/delete/", schedule_views.schedule_delete, name="schedule-delete"),
]
