"""Affinity rules as the API shows them; a member deleted since is kept by name (stale)."""

from rest_framework import serializers

from migrations_app.models import AffinityRule, AffinityRuleHost, AffinityRuleVm


class RuleVmSerializer(serializers.ModelSerializer):
    class Meta:
        model = AffinityRuleVm
        fields = ["vm", "vm_name"]
        extra_kwargs = {"vm": {"help_text": "Null: the VM is no longer in the inventory"}}


class RuleHostSerializer(serializers.ModelSerializer):
    class Meta:
        model = AffinityRuleHost
        fields = ["host", "host_name"]
        extra_kwargs = {"host": {"help_text": "Null: the host is no longer in the inventory"}}


class AffinityRuleSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    vms = RuleVmSerializer(source="members", many=True, read_only=True)
    hosts = RuleHostSerializer(many=True, read_only=True, help_text="For a 'run on hosts' rule: the hosts its VMs may run on")

    class Meta:
        model = AffinityRule
        fields = ["id", "cluster", "name", "kind", "strength", "created_by", "created_at", "vms", "hosts"]
