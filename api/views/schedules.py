"""Schedules: read (Viewer); created, edited, enabled, disabled and deleted (Operator, and an
evacuation schedule needs an Administrator), through `migrations_app.automation.schedules` as the pages
and the CLI."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.roles import Role
from migrations_app.automation import schedules
from migrations_app.models import Schedule

from .. import filtersets
from ..serializers.schedules import ScheduleDetailSerializer, ScheduleSerializer
from .base import ApiViewMixin

WRITES = ("create", "update", "partial_update", "destroy", "enable", "disable")


@extend_schema_view(
    list=extend_schema(summary="Schedules"),
    retrieve=extend_schema(summary="A schedule with its latest runs"),
    create=extend_schema(
        summary="Create a schedule", request=ScheduleSerializer, responses={201: ScheduleDetailSerializer},
        examples=[
            OpenApiExample("Move VMs every night", request_only=True, value={
                "name": "nightly web", "vm_names": ["web-01"], "destination_name": "kvm2", "recurrence": "daily", "time_of_day": "02:00",
                "time_zone": "Europe/Paris", "window_minutes": 60, "reason": "Nightly rebalance",
            }),
            OpenApiExample("Evacuate a host once", request_only=True, value={
                "name": "patch kvm1", "action": "evacuate", "host_name": "kvm1", "recurrence": "once", "run_at": "2035-12-05T01:00", "time_zone": "Europe/Paris",
            }),
        ],
        parameters=[OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[201], description="The new schedule's URL")],
    ),
    update=extend_schema(summary="Replace a schedule's settings", request=ScheduleSerializer, responses=ScheduleDetailSerializer),
    partial_update=extend_schema(summary="Change some of a schedule's settings", request=ScheduleSerializer, responses=ScheduleDetailSerializer),
    destroy=extend_schema(summary="Delete a schedule"),
)
class ScheduleViewSet(ApiViewMixin, viewsets.ModelViewSet):
    """Migrations that run by themselves at set times: VMs to move, or a host to evacuate.
    Each run checks everything again at its time."""

    queryset = Schedule.objects.select_related("created_by").order_by("-enabled", "next_run_at", "name", "pk")
    filterset_class = filtersets.ScheduleFilter
    roles = {"*": Role.VIEWER, **{name: Role.OPERATOR for name in WRITES}}

    def get_serializer_class(self):
        return ScheduleSerializer if self.action in ("list", "create", "update", "partial_update") else ScheduleDetailSerializer

    def create(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = schedules.create(body.schedule(request.user))
        headers = {"Location": reverse("api:schedule-detail", args=[created.pk])}
        return Response(ScheduleDetailSerializer(created).data, status=status.HTTP_201_CREATED, headers=headers)

    def update(self, request: Request, pk: str, partial: bool = False) -> Response:
        body = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        saved = schedules.update(body.schedule(request.user), request.user)
        return Response(ScheduleDetailSerializer(saved).data)

    def destroy(self, request: Request, pk: str) -> Response:
        schedules.delete(self.get_object(), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Enable a schedule", request=None, responses=ScheduleDetailSerializer)
    @action(detail=True, methods=["post"], pagination_class=None, filterset_class=None)
    def enable(self, request: Request, pk: str) -> Response:
        """It runs again from its next time on; runs missed while it was disabled are not caught up."""
        return self._set_enabled(True)

    @extend_schema(summary="Disable a schedule", request=None, responses=ScheduleDetailSerializer)
    @action(detail=True, methods=["post"], pagination_class=None, filterset_class=None)
    def disable(self, request: Request, pk: str) -> Response:
        return self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> Response:
        item = self.get_object()
        schedules.set_enabled(item, enabled, self.request.user)
        return Response(ScheduleDetailSerializer(item).data)
