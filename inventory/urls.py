from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("hosts/<int:pk>/", views.host_detail, name="host-detail"),
    path("hosts/<int:pk>/sync/", views.host_sync, name="host-sync"),
    path("vms/", views.vm_list, name="vm-list"),
    path("vms/<int:pk>/", views.vm_detail, name="vm-detail"),
]
