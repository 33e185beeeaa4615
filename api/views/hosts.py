"""Hosts, read (Viewer), and maintenance mode (Administrator, as on the host's page):
the plan, entering, exiting; and the evacuations that entering starts."""

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.roles import Role
from inventory.models import Host
from migrations_app.automation import maintenance
from migrations_app.models import Evacuation
from migrations_app.options import MigrationOptions

from .. import filtersets
from ..serializers.errors import ErrorSerializer
from ..serializers.inventory import HostSerializer
from ..serializers.maintenance import (
    EvacuationActionSerializer, EvacuationPlanSerializer, EvacuationSerializer, HostActionSerializer, MaintenanceRequestSerializer,
)
from .inventory import ReadOnlyViewSet


class HostViewSet(ReadOnlyViewSet):
    queryset = Host.objects.order_by("name", "pk")
    serializer_class = HostSerializer
    filterset_class = filtersets.HostFilter
    roles = {"*": Role.VIEWER, "maintenance_plan": Role.ADMINISTRATOR, "maintenance_enter": Role.ADMINISTRATOR, "maintenance_exit": Role.ADMINISTRATOR}

    @extend_schema(
        summary="Plan the host's evacuation",
        parameters=[OpenApiParameter("measure", OpenApiTypes.BOOL, default=True, description="Forecast each move from the inventory's measurements (a guest with none is measured by an inventory worker, waited for a few seconds); false: only place them")],
        responses=EvacuationPlanSerializer,
        filters=False,
    )
    @action(detail=True, methods=["get"], url_path="maintenance-plan", pagination_class=None, filterset_class=None)
    def maintenance_plan(self, request: Request, pk: str) -> Response:
        """Where each VM running on the host would go, spread by load, those with nowhere to go
        with the reason, and the forecast of the whole evacuation. Nothing moves."""
        host = self.get_object()
        measure = serializers.BooleanField(default=True).run_validation(request.query_params.get("measure", True))
        return Response(EvacuationPlanSerializer(maintenance.plan(host, measure=measure)).data)

    @extend_schema(
        summary="Enter maintenance",
        request=MaintenanceRequestSerializer,
        responses={202: EvacuationSerializer, 409: OpenApiResponse(ErrorSerializer, description="The host is already in maintenance or entering it")},
    )
    @action(detail=True, methods=["post"], url_path="maintenance/enter", pagination_class=None, filterset_class=None)
    def maintenance_enter(self, request: Request, pk: str) -> Response:
        """Close the host to new VMs and move its running VMs off it as one batch, under the
        normal limits; the host is in maintenance once none runs there. Follow it at
        /evacuations/{id}/."""
        host = self.get_object()
        body = MaintenanceRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reason = body.validated_data.get("reason", "").strip() or f"Evacuating {host.name} for maintenance"
        evacuation = maintenance.enter(host, requested_by=request.user, options=MigrationOptions(reason=reason))
        evacuation = Evacuation.objects.select_related("host", "requested_by", "batch").get(pk=evacuation.pk)
        headers = {"Location": reverse("api:evacuation-detail", args=[evacuation.pk])}
        return Response(EvacuationSerializer(evacuation).data, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        summary="Exit maintenance", request=None,
        responses={200: HostActionSerializer, 409: OpenApiResponse(ErrorSerializer, description="The host is not in maintenance")},
    )
    @action(detail=True, methods=["post"], url_path="maintenance/exit", pagination_class=None, filterset_class=None)
    def maintenance_exit(self, request: Request, pk: str) -> Response:
        """Return the host to service; an evacuation still running is aborted first (queued
        moves cancelled, running ones finish)."""
        host = self.get_object()
        message = maintenance.exit_maintenance(host, actor=request.user)
        return Response({"message": message, "host": host.pk, "state": host.state})


class EvacuationViewSet(ReadOnlyViewSet):
    queryset = Evacuation.objects.select_related("host", "requested_by", "batch").prefetch_related("batch__tasks").order_by("-created_at", "-pk")
    serializer_class = EvacuationSerializer
    filterset_class = filtersets.EvacuationFilter
    roles = {"*": Role.VIEWER, "abort": Role.ADMINISTRATOR}

    @extend_schema(
        summary="Abort an evacuation", request=None,
        responses={200: EvacuationActionSerializer, 409: OpenApiResponse(ErrorSerializer, description="The evacuation has already ended")},
    )
    @action(detail=True, methods=["post"], pagination_class=None, filterset_class=None)
    def abort(self, request: Request, pk: str) -> Response:
        """Stop it: queued moves are cancelled, running ones finish; the host stays closed to
        new VMs until maintenance is exited."""
        evacuation = self.get_object()
        message = maintenance.abort(evacuation, actor=request.user)
        return Response({"message": message, "evacuation": EvacuationSerializer(evacuation).data})
