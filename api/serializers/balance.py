"""A cluster's balancing as the API shows it: the moves a request applied, and the tasks."""

from rest_framework import serializers


class AppliedMoveSerializer(serializers.Serializer):
    vm = serializers.IntegerField(source="vm.vm_id")
    vm_name = serializers.CharField(source="vm.facts.name")
    source = serializers.IntegerField(source="source_id")
    destination = serializers.IntegerField(source="destination_id")
    spread_before = serializers.FloatField()
    spread_after = serializers.FloatField()
    reasons = serializers.ListField(child=serializers.CharField())


class BalanceAppliedSerializer(serializers.Serializer):
    cluster = serializers.IntegerField(source="cluster.pk")
    level = serializers.CharField(source="policy.level", help_text="The cluster's balancing: manual or automatic (off refuses)")
    spread = serializers.FloatField(help_text="The cluster's load spread before the moves")
    recommendations = AppliedMoveSerializer(many=True, help_text="The moves applied, in order; empty when none is worth a migration")
    tasks = serializers.ListField(child=serializers.IntegerField(), help_text="The queued migration task of each move, in the same order")
