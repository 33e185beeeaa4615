"""Migration tasks: read with their timeline and samples (Viewer); submitted, checked first,
cancelled and forced to complete (Operator), through the same service layer as the wizard,
the task page and the CLI."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.roles import Role
from migrations_app import services
from migrations_app.web import queries
from migrations_app.models import MigrationTask, ProgressSample

from .. import filtersets
from ..serializers.errors import ConflictSerializer, ErrorSerializer, checks_of
from ..serializers.tasks import (
    MigrationCheckSerializer, MigrationRequestSerializer, ProgressSampleSerializer, StorageMoveRequestSerializer, TaskActionSerializer,
    TaskCreatedSerializer, TaskDetailSerializer, TaskSerializer,
)
from .base import ApiViewMixin

CONFLICT = OpenApiResponse(ConflictSerializer, description="The VM already has a migration that has not ended; `task` is that one")
ACCEPTED_LOCATION = OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[202], description="The new task's URL")
MIGRATION_EXAMPLE = OpenApiExample("Move a VM", request_only=True, value={
    "vm": 12, "target": 3, "priority": "high", "max_downtime_ms": 300, "bandwidth_mib_s": 500, "allow_post_copy": False, "reason": "Kernel update on kvm1",
})


class TaskViewSet(ApiViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = filtersets.TaskFilter
    roles = {
        "*": Role.VIEWER, "create": Role.OPERATOR, "check": Role.OPERATOR, "storage": Role.OPERATOR, "cancel": Role.OPERATOR,
        "force_complete": Role.OPERATOR,
    }

    def get_queryset(self):
        tasks = queries.tasks().prefetch_related("disk_moves").order_by("-created_at", "-pk")
        return tasks if self.action == "list" else tasks.prefetch_related("events__actor")

    def get_serializer_class(self):
        return TaskSerializer if self.action == "list" else TaskDetailSerializer

    @extend_schema(
        summary="Migrate a VM",
        request=MigrationRequestSerializer,
        responses={202: TaskCreatedSerializer, 409: CONFLICT},
        parameters=[ACCEPTED_LOCATION],
        examples=[MIGRATION_EXAMPLE],
    )
    def create(self, request: Request) -> Response:
        """Submit a live migration, exactly as the wizard does: the pre-flight checks run now
        (a failing one is a 400 with every check) and again on the worker before anything
        moves. Answers at once with the queued task and its `warnings` (post-copy allowed between
        hosts whose libvirt cannot resume a broken one); follow it at /tasks/{id}/."""
        body = MigrationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        task = services.submit_migration(data["vm"], data["target"], body.options(), requested_by=request.user, disks=body.disk_choice())
        headers = {"Location": reverse("api:task-detail", args=[task.pk])}
        warnings = _post_copy_warnings(data)
        return Response(TaskCreatedSerializer(self._reread(task), context={"warnings": warnings}).data, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(summary="Check a migration without submitting it", request=MigrationRequestSerializer, responses=MigrationCheckSerializer, examples=[MIGRATION_EXAMPLE])
    @action(detail=False, methods=["post"], pagination_class=None, filterset_class=None)
    def check(self, request: Request) -> Response:
        """What submitting would meet, with nothing submitted: an active migration of the VM,
        every pre-flight check with its verdict, and, when they pass, the forecast of the move
        (from the inventory's latest measurement of the guest, as on the wizard's confirm step;
        an inventory worker measures a guest it has none for, waited for a few seconds)."""
        body = MigrationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        preview = services.preview_migration(body.validated_data["vm"], body.validated_data["target"], body.options(), body.disk_choice())
        forecast = preview.forecast.forecast if preview.forecast else None
        return Response(MigrationCheckSerializer({
            "passed": preview.passed,
            "message": preview.summary(),
            "active_task": preview.active.pk if preview.active else None,
            "checks": checks_of(preview.report),
            "prediction": {
                **vars(forecast.prediction), "summary": forecast.summary(), "resident_bytes": forecast.resident_bytes,
                "first_pass_bytes": forecast.first_pass_bytes, "dirty_rate_bytes_s": forecast.dirty_rate_bytes_s,
                "link_bytes_s": forecast.link.first_pass_bytes_s, "resend_bytes_s": forecast.link.resend_bytes_s,
                "measured_seconds_ago": forecast.age_seconds,
            } if forecast else None,
            "prediction_error": preview.forecast.error if preview.forecast else "",
            "warnings": _post_copy_warnings(body.validated_data),
        }).data)

    @extend_schema(
        summary="Move a VM's disks to other datastores of its host",
        request=StorageMoveRequestSerializer,
        responses={202: TaskCreatedSerializer, 409: CONFLICT},
        parameters=[ACCEPTED_LOCATION],
        examples=[OpenApiExample("Move a VM's disks to a host's SSD", request_only=True, value={"vm": 12, "datastore": 4, "reason": "Off the NFS filer"})],
    )
    @action(detail=False, methods=["post"], pagination_class=None, filterset_class=None)
    def storage(self, request: Request) -> Response:
        """A storage-only move, live, as `vmotion move-storage` does: each disk is copied to its
        datastore on the VM's host, switched to its copy once caught up, and the image it left
        removed. The checks (space, format, datastores the host mounts) run now, a failing one
        a 400 with every check, and again on the worker."""
        body = StorageMoveRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        task = services.submit_storage_move(body.validated_data["vm"], body.disk_choice(), body.options(), requested_by=request.user)
        headers = {"Location": reverse("api:task-detail", args=[task.pk])}
        return Response(TaskCreatedSerializer(self._reread(task)).data, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        summary="Cancel a migration", request=None,
        responses={200: TaskActionSerializer, 409: OpenApiResponse(ErrorSerializer, description="The task has ended, or is in post-copy and can only finish")},
    )
    @action(detail=True, methods=["post"], pagination_class=None, filterset_class=None)
    def cancel(self, request: Request, pk: str) -> Response:
        """A task that has not started is cancelled at once; a migrating one is aborted by its
        worker and the VM stays on its source. A task in post-copy can only finish."""
        return self._operator_action(services.cancel_task)

    @extend_schema(
        summary="Force a migration to complete", request=None,
        responses={200: TaskActionSerializer, 409: OpenApiResponse(ErrorSerializer, description="The task is not migrating (queued, in post-copy or ended)")},
    )
    @action(detail=True, methods=["post"], url_path="force-complete", pagination_class=None, filterset_class=None)
    def force_complete(self, request: Request, pk: str) -> Response:
        """Make a migrating task finish now: by switching to post-copy if it allows it, else by
        accepting a longer final pause."""
        return self._operator_action(services.force_complete)

    def _operator_action(self, act) -> Response:
        task = self.get_object()
        message = act(task, actor=self.request.user)
        return Response({"message": message, "task": TaskDetailSerializer(self._reread(task)).data})

    def _reread(self, task: MigrationTask) -> MigrationTask:
        return queries.tasks().prefetch_related("events__actor").get(pk=task.pk)


def _post_copy_warnings(data: dict) -> list[str]:
    return services.post_copy_warnings([(data["vm"], data["target"])]) if data["allow_post_copy"] else []


class ProgressSampleList(ApiViewMixin, generics.ListAPIView):
    """A migration's job samples as libvirt reported them, oldest first: the figures behind
    the task page's chart."""

    serializer_class = ProgressSampleSerializer
    filterset_class = filtersets.ProgressSampleFilter
    roles = {"*": Role.VIEWER}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator asks without a task
            return ProgressSample.objects.none()
        task = get_object_or_404(MigrationTask, pk=self.kwargs["task_pk"])
        return task.samples.order_by("elapsed_ms", "pk")

    @extend_schema(summary="A migration's progress samples")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
