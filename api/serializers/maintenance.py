"""Maintenance mode as the API shows it: the plan of an evacuation, and evacuations."""

from rest_framework import serializers

from migrations_app.automation.maintenance import PlannedEvacuation
from inventory.choices import HostState
from migrations_app.models import Evacuation

from .strict import StrictJsonTypes


class PlannedMoveSerializer(serializers.Serializer):
    vm = serializers.IntegerField(source="vm.pk")
    vm_name = serializers.CharField(source="vm.name")
    destination = serializers.IntegerField(source="destination.pk", allow_null=True, default=None, help_text="Null: no host can take it")
    destination_name = serializers.CharField(source="destination.name", allow_null=True, default=None)
    blocked_by = serializers.CharField(source="move.blocked_reason", help_text="Why no host can take it; empty when one can")
    reasons = serializers.SerializerMethodField(help_text="Why the assistant chose this host")
    predicted_total_ms = serializers.SerializerMethodField()
    predicted_downtime_ms = serializers.SerializerMethodField()
    forecast_error = serializers.SerializerMethodField(help_text="Why the move has no forecast (the guest has not been measured yet); else empty")
    measured_seconds_ago = serializers.SerializerMethodField(help_text="How old the inventory's measurement of the guest that the forecast rests on is")

    def get_reasons(self, item: PlannedEvacuation) -> list[str]:
        return list(item.move.chosen.reasons) if item.move.chosen else []

    def get_predicted_total_ms(self, item: PlannedEvacuation) -> int | None:
        return item.forecast.forecast.prediction.total_ms if item.forecast and item.forecast.forecast else None

    def get_predicted_downtime_ms(self, item: PlannedEvacuation) -> int | None:
        return item.forecast.forecast.prediction.downtime_ms if item.forecast and item.forecast.forecast else None

    def get_measured_seconds_ago(self, item: PlannedEvacuation) -> int | None:
        return item.forecast.forecast.age_seconds if item.forecast and item.forecast.forecast else None

    def get_forecast_error(self, item: PlannedEvacuation) -> str:
        return item.forecast.error if item.forecast else ""


class EvacuationPlanSerializer(serializers.Serializer):
    host = serializers.IntegerField(source="host.pk")
    host_name = serializers.CharField(source="host.name")
    moves = PlannedMoveSerializer(many=True, help_text="Every VM running on the host, with where it would go")
    predicted_total_ms = serializers.IntegerField(
        allow_null=True, help_text="The whole evacuation under the current limits; null when a guest could not be measured or none can move"
    )


class EvacuationSerializer(serializers.ModelSerializer):
    host_name = serializers.CharField(source="host.name", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    tasks = serializers.SerializerMethodField(help_text="The ids of its migration tasks, in the order submitted")

    class Meta:
        model = Evacuation
        fields = ["id", "host", "host_name", "state", "message", "batch", "requested_by", "predicted_total_ms", "created_at", "finished_at", "tasks"]

    def get_tasks(self, evacuation: Evacuation) -> list[int]:
        return sorted(task.pk for task in evacuation.batch.tasks.all())


class MaintenanceRequestSerializer(StrictJsonTypes, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, help_text="For the audit trail; by default 'Evacuating <host> for maintenance'")


class HostActionSerializer(serializers.Serializer):
    message = serializers.CharField()
    host = serializers.IntegerField()
    state = serializers.ChoiceField(choices=HostState.choices, help_text="The host's state now")


class EvacuationActionSerializer(serializers.Serializer):
    message = serializers.CharField()
    evacuation = EvacuationSerializer()
