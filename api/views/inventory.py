"""The inventory, read: clusters, hosts, datastores, networks and VMs (Viewer), and the
assistant's destinations for a VM (Operator, as in the migration wizard)."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.roles import Role
from inventory.models import Cluster, Datastore, Network, VirtualMachine
from migrations_app import assistant

from .. import filtersets
from ..serializers.inventory import ClusterSerializer, DatastoreSerializer, NetworkSerializer, VirtualMachineSerializer
from ..serializers.tasks import CandidateSerializer, RecommendationSerializer
from .base import ApiViewMixin


class ReadOnlyViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    roles = {"*": Role.VIEWER}


class ClusterViewSet(ReadOnlyViewSet):
    queryset = Cluster.objects.prefetch_related("hosts").order_by("name", "pk")
    serializer_class = ClusterSerializer
    filterset_class = filtersets.ClusterFilter


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
