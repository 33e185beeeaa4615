"""Schedules as the API shows and takes them. Times of day and cron fields are read in the
schedule's time zone (by default the user's, from Preferences), and so is a run_at given
without an offset; `schedules.create`/`update` validate the rest, as for the pages."""

from datetime import UTC, datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.time_zones import time_zone_of
from migrations_app.choices import Priority
from migrations_app.models import Schedule, ScheduleRun
from migrations_app.options import BANDWIDTH_RANGE_MIB_S, DEFAULT_MAX_DOWNTIME_MS, MAX_DOWNTIME_RANGE_MS
from migrations_app import services
from migrations_app.automation.recurrence import RecurrenceError, zone
from migrations_app.web.wizard import MAX_BATCH

from ..fields import PriorityField
from .strict import StrictJsonTypes

MAX_WINDOW_MINUTES = 7 * 24 * 60


class LocalDateTimeField(serializers.DateTimeField):
    """Kept as given: a time without an offset is read later, in the schedule's time zone."""

    def enforce_timezone(self, value: datetime) -> datetime:
        return value


@extend_schema_field({"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?$", "example": "02:00"})
class WallClockTimeField(serializers.TimeField):
    """A time of day on the schedule's clock, without an offset (OpenAPI's "time" format
    would demand one)."""


class ScheduleRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScheduleRun
        fields = ["due_at", "state", "started_at", "finished_at", "window_ends_at", "result", "batch", "evacuation"]


class ScheduleSerializer(StrictJsonTypes, serializers.ModelSerializer):
    name = serializers.CharField(max_length=200)
    vm_names = serializers.ListField(child=serializers.CharField(max_length=200), max_length=MAX_BATCH, default=list, help_text="MOVE: the VMs to move, by name")
    destination_name = serializers.CharField(max_length=200, default="", allow_blank=True, help_text="MOVE: the destination host; empty lets the assistant choose for each VM at run time")
    host_name = serializers.CharField(max_length=200, default="", allow_blank=True, help_text="EVACUATE: the host to put in maintenance")
    priority = PriorityField(default=Priority.NORMAL)
    max_downtime_ms = serializers.IntegerField(default=DEFAULT_MAX_DOWNTIME_MS, min_value=MAX_DOWNTIME_RANGE_MS[0], max_value=MAX_DOWNTIME_RANGE_MS[1])
    bandwidth_mib_s = serializers.IntegerField(default=None, allow_null=True, min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1], help_text="Null: uncapped")
    allow_post_copy = serializers.BooleanField(default=False)
    allow_auto_converge = serializers.BooleanField(default=True)
    reason = serializers.CharField(max_length=500, default="", allow_blank=True)
    time_zone = serializers.CharField(max_length=64, required=False, help_text="An IANA name such as Europe/Paris; by default the user's time zone (Preferences)")
    run_at = LocalDateTimeField(default=None, allow_null=True, help_text="ONCE: when; without an offset it is read in time_zone")
    time_of_day = WallClockTimeField(default=None, allow_null=True, help_text="DAILY and WEEKLY: when, in time_zone")
    weekday = serializers.IntegerField(default=None, allow_null=True, min_value=0, max_value=6, help_text="WEEKLY: 0 is Monday")
    cron = serializers.CharField(max_length=100, default="", allow_blank=True, help_text="CRON: five fields, e.g. 0 2 * * 1-5, in time_zone")
    window_minutes = serializers.IntegerField(
        default=None, allow_null=True, min_value=1, max_value=MAX_WINDOW_MINUTES, help_text="Moves still queued this long after the start are cancelled; null: no window"
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    description = serializers.SerializerMethodField(help_text="When it runs, in words")
    last_run = serializers.SerializerMethodField()

    class Meta:
        model = Schedule
        fields = [
            "id", "name", "action", "vm_names", "destination_name", "host_name", "priority", "max_downtime_ms", "bandwidth_mib_s",
            "allow_post_copy", "allow_auto_converge", "reason", "recurrence", "time_zone", "run_at", "time_of_day", "weekday", "cron",
            "window_minutes", "enabled", "next_run_at", "created_by", "created_at", "description", "last_run",
        ]
        read_only_fields = ["enabled", "next_run_at", "created_at"]

    def get_description(self, schedule: Schedule) -> str:
        return schedule.when().describe()

    @extend_schema_field(ScheduleRunSerializer(allow_null=True))
    def get_last_run(self, schedule: Schedule) -> dict | None:
        last = schedule.last_run()
        return ScheduleRunSerializer(last).data if last else None

    def validate(self, data: dict) -> dict:
        name = data.get("time_zone") or (self.instance.time_zone if self.instance else time_zone_of(self.context["request"].user))
        try:
            data["time_zone"] = zone(name).key
        except RecurrenceError as error:
            raise serializers.ValidationError({"time_zone": str(error)}) from error
        run_at = data.get("run_at")
        if run_at is not None:
            data["run_at"] = _in_zone(run_at, data["time_zone"])
        return data

    def schedule(self, user) -> Schedule:
        """The schedule with the request's values, unsaved: a new one created by `user`, or
        the one being edited (only the fields sent, for a PATCH)."""
        schedule = Schedule.objects.get(pk=self.instance.pk) if self.instance else Schedule(created_by=user)
        for field, value in self.validated_data.items():
            setattr(schedule, field, value.strip() if isinstance(value, str) else value)
        schedule.vm_names = [name.strip() for name in schedule.vm_names if name.strip()]
        return schedule


class ScheduleDetailSerializer(ScheduleSerializer):
    runs = serializers.SerializerMethodField(help_text="Its latest 50 runs, newest first")
    warnings = serializers.SerializerMethodField(help_text=(
        "What its settings risk: when it allows post-copy, a warning for hosts its moves may use whose libvirt "
        "(as the inventory recorded it) cannot resume a post-copy whose link broke, which loses the running guest. "
        "Empty when none"
    ))

    class Meta(ScheduleSerializer.Meta):
        fields = [*ScheduleSerializer.Meta.fields, "runs", "warnings"]

    @extend_schema_field(ScheduleRunSerializer(many=True))
    def get_runs(self, schedule: Schedule) -> list[dict]:
        return ScheduleRunSerializer(schedule.runs.select_related("batch", "evacuation")[:50], many=True).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, schedule: Schedule) -> list[str]:
        return services.schedule_post_copy_warnings(schedule)


def _in_zone(moment: datetime, time_zone: str) -> datetime:
    """`moment` in UTC: read in the schedule's zone when it has no offset."""
    local = zone(time_zone)
    aware = timezone.make_aware(moment, local) if timezone.is_naive(moment) else moment
    try:
        in_utc = aware.astimezone(UTC)
        in_utc.astimezone(local)  # shown in its zone and stored in UTC: both must exist
    except (OverflowError, ValueError):
        raise serializers.ValidationError({"run_at": "This time is out of range."}) from None
    return in_utc
