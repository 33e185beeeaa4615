from django.urls import path

from . import cpu_views, encryption_views, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("hosts/<int:pk>/", views.host_detail, name="host-detail"),
    path("hosts/<int:pk>/sync/", views.host_sync, name="host-sync"),
    path("vms/", views.vm_list, name="vm-list"),
    path("vms/<int:pk>/", views.vm_detail, name="vm-detail"),
    path("vms/<int:pk>/cpu-baseline/", cpu_views.vm_cpu_baseline, name="vm-cpu-baseline"),
    path("clusters/<int:pk>/cpu/", cpu_views.cluster_cpu, name="cluster-cpu"),
    path("clusters/<int:pk>/cpu/mode/", cpu_views.cluster_cpu_mode, name="cluster-cpu-mode"),
    path("clusters/<int:pk>/encryption/", encryption_views.cluster_encryption_mode, name="cluster-encryption"),
]
