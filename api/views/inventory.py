"""The inventory, read: clusters, hosts, datastores, networks and VMs (Viewer); the
assistant's destinations for a VM (Operator, as in the migration wizard); and a cluster's
balancing recommendations applied (Operator, as on the cluster's page)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.roles import Role
from inventory.models import Cluster, Datastore, Network, VirtualMachine
from migrations_app.placement import store as assistant
from migrations_app.automation import balancing as balance

from .. import filtersets
from ..serializers.balance import BalanceAppliedSerializer
from ..serializers.errors import ErrorSerializer, error_body
from ..serializers.inventory import ClusterSerializer, DatastoreSerializer, NetworkSerializer, VirtualMachineSerializer
from ..serializers.tasks import CandidateSerializer, RecommendationSerializer
from .base import ApiViewMixin


class ReadOnlyViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    roles = {"*": Role.VIEWER}


class ClusterViewSet(ReadOnlyViewSet):
    queryset = Cluster.objects.prefetch_related("hosts").order_by("name", "pk")
    serializer_class = ClusterSerializer
    filterset_class = filtersets.ClusterFilter
    roles = {"*": Role.VIEWER, "apply_balancing": Role.OPERATOR}

    @extend_schema(
        summary="Apply the cluster's balancing recommendations",
        request=None,
        responses={202: BalanceAppliedSerializer, 409: OpenApiResponse(ErrorSerializer, description="The cluster's balancing is off: nothing is applied")},
    )
    @action(detail=True, methods=["post"], url_path="balance", pagination_class=None, filterset_class=None)
    def apply_balancing(self, request: Request, pk: str) -> Response:
        """Submit every current recommendation as a migration task, as the cluster page's
        Apply all and `vmotion balance --apply` do. Refused while the cluster's balancing is off."""
        state = balance.cluster_balance(self.get_object())
        if refusal := balance.apply_refusal(state.policy):
            return Response(error_body(refusal), status=status.HTTP_409_CONFLICT)
        tasks = [balance.apply(state, r, requested_by=request.user).pk for r in state.recommendations]
        body = {"cluster": state.cluster, "policy": state.policy, "spread": state.spread, "recommendations": state.recommendations, "tasks": tasks}
        return Response(BalanceAppliedSerializer(body).data, status=status.HTTP_202_ACCEPTED)


class DatastoreViewSet(ReadOnlyViewSet):
    queryset = Datastore.objects.prefetch_related("mounts").order_by("name", "pk")
    serializer_class = DatastoreSerializer
    filterset_class = filtersets.DatastoreFilter


class NetworkViewSet(ReadOnlyViewSet):
    queryset = Network.objects.prefetch_related("attachments").order_by("name", "pk")
    serializer_class = NetworkSerializer
    filterset_class = filtersets.NetworkFilter


class VirtualMachineViewSet(ReadOnlyViewSet):
    queryset = VirtualMachine.objects.select_related("host", "host__cluster").prefetch_related("disks", "nics").order_by("name", "pk")
    serializer_class = VirtualMachineSerializer
    filterset_class = filtersets.VirtualMachineFilter
    roles = {"*": Role.VIEWER, "recommendations": Role.OPERATOR}

    @extend_schema(summary="Rank every host for the VM", responses=RecommendationSerializer, filters=False)
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def recommendations(self, request: Request, pk: str) -> Response:
        """The migration assistant's ranking, as the wizard's destination step shows it:
        every other host, best first, each with its score and reasons; the hosts that cannot
        take the VM last, each with the check it fails."""
        vm = self.get_object()
        candidates = CandidateSerializer(assistant.recommend(vm), many=True).data
        return Response({"vm": vm.pk, "vm_name": vm.name, "candidates": candidates})
