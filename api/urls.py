"""/api/v1/ (the endpoints), /api/schema/ (OpenAPI 3) and /api/docs/ (the page over it)."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from . import errors
from .views import audit, docs, hosts, inventory, rules, schedules, tasks

app_name = "api"

router = SimpleRouter()
router.register("clusters", inventory.ClusterViewSet, basename="cluster")
router.register("hosts", hosts.HostViewSet, basename="host")
router.register("datastores", inventory.DatastoreViewSet, basename="datastore")
router.register("networks", inventory.NetworkViewSet, basename="network")
router.register("vms", inventory.VirtualMachineViewSet, basename="vm")
router.register("tasks", tasks.TaskViewSet, basename="task")
router.register("evacuations", hosts.EvacuationViewSet, basename="evacuation")
router.register("schedules", schedules.ScheduleViewSet, basename="schedule")
router.register("affinity-rules", rules.AffinityRuleViewSet, basename="affinity-rule")
router.register("audit-entries", audit.AuditEntryViewSet, basename="audit-entry")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/tasks/<int:task_pk>/samples/", tasks.ProgressSampleList.as_view(), name="task-samples"),
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.docs, name="docs"),
    # Last: anything else under /api/ is a JSON 404 (api/errors.py).
    re_path(r"^(?P<rest>.*)$", errors.unknown_api_path, name="unknown"),
]
