"""Affinity rules, read: which VMs of a cluster run together, apart, or only on some hosts."""

from migrations_app.models import AffinityRule

from .. import filtersets
from ..serializers.rules import AffinityRuleSerializer
from .inventory import ReadOnlyViewSet


class AffinityRuleViewSet(ReadOnlyViewSet):
    """Which VMs of a cluster run together, apart, or only on some hosts."""

    queryset = AffinityRule.objects.select_related("created_by").prefetch_related("members", "hosts").order_by("cluster_id", "name", "pk")
    serializer_class = AffinityRuleSerializer
    filterset_class = filtersets.AffinityRuleFilter
