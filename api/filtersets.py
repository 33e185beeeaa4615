"""The filters of every API list (django-filter): ?name=, ?state=, ?host=... A value of the
wrong type is a 400 that names the filter."""

from datetime import UTC

import django_filters as filters
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField

from inventory.choices import DatastoreKind, HostState, PowerState
from inventory.models import Cluster, Datastore, Host, Network, VirtualMachine
from migrations_app.choices import ACTIVE_STATES, EvacuationState, RuleKind, RuleStrength, ScheduleAction, TaskState
from migrations_app.models import AffinityRule, Evacuation, MigrationTask, ProgressSample, Schedule

from .fields import AUDIT_ACTIONS


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, in UTC: any offset Python takes (up to ±23:59) reaches the database
    as one it takes too, and a time that has no UTC equivalent is bad input."""

    def to_python(self, value):
        moment = super().to_python(value)
        try:
            return moment.astimezone(UTC) if moment is not None else None
        except OverflowError:
            raise ValidationError("This time is out of range.", code="invalid") from None


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ClusterFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")

    class Meta:
        model = Cluster
        fields = ["name"]


class HostFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    cluster = filters.NumberFilter(field_name="cluster_id", help_text="A cluster's id")
    state = filters.ChoiceFilter(choices=HostState.choices)
    degraded = filters.BooleanFilter(field_name="degraded_since", lookup_expr="isnull", exclude=True, help_text="Marked as failing")

    class Meta:
        model = Host
        fields = ["name", "cluster", "state", "degraded"]


class DatastoreFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    kind = filters.ChoiceFilter(choices=DatastoreKind.choices)
    host = filters.NumberFilter(field_name="mounts__host_id", distinct=True, help_text="Mounted on this host (its id)")

    class Meta:
        model = Datastore
        fields = ["name", "kind", "host"]


class NetworkFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    host = filters.NumberFilter(field_name="attachments__host_id", distinct=True, help_text="Present on this host (its id)")

    class Meta:
        model = Network
        fields = ["name", "host"]


class VirtualMachineFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    uuid = filters.UUIDFilter()
    host = filters.NumberFilter(field_name="host_id", help_text="The id of the host it runs on")
    cluster = filters.NumberFilter(field_name="host__cluster_id", help_text="The id of its host's cluster")
    power_state = filters.ChoiceFilter(choices=PowerState.choices)

    class Meta:
        model = VirtualMachine
        fields = ["name", "uuid", "host", "cluster", "power_state"]


class TaskFilter(filters.FilterSet):
    state = filters.MultipleChoiceFilter(choices=TaskState.choices, help_text="Repeat for several: ?state=queued&state=migrating")
    active = filters.BooleanFilter(method="filter_active", help_text="Not ended yet (queued, checking, waiting, migrating, post-copy)")
    vm = filters.NumberFilter(field_name="vm_id", help_text="A VM's id")
    vm_name = filters.CharFilter(field_name="vm__name", lookup_expr="icontains", help_text="Part of the VM's name")
    host = filters.NumberFilter(method="filter_host", help_text="A host's id, as source or destination")
    source = filters.NumberFilter(field_name="source_id")
    destination = filters.NumberFilter(field_name="destination_id")
    batch = filters.NumberFilter(field_name="batch_id")
    requested_by = filters.CharFilter(field_name="requested_by__username", lookup_expr="iexact", help_text="A username")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = MigrationTask
        fields = ["state", "active", "vm", "vm_name", "host", "source", "destination", "batch", "requested_by", "created_after", "created_before"]

    def filter_active(self, tasks, name, value):
        return tasks.filter(state__in=ACTIVE_STATES) if value else tasks.exclude(state__in=ACTIVE_STATES)

    def filter_host(self, tasks, name, value):
        return tasks.filter(Q(source_id=value) | Q(destination_id=value))


class ProgressSampleFilter(filters.FilterSet):
    elapsed_after_ms = filters.NumberFilter(field_name="elapsed_ms", lookup_expr="gt", help_text="Only samples taken later than this into the migration")

    class Meta:
        model = ProgressSample
        fields = ["elapsed_after_ms"]


class ScheduleFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    action = filters.ChoiceFilter(choices=ScheduleAction.choices)
    enabled = filters.BooleanFilter()

    class Meta:
        model = Schedule
        fields = ["name", "action", "enabled"]


class AffinityRuleFilter(filters.FilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    cluster = filters.NumberFilter(field_name="cluster_id")
    kind = filters.ChoiceFilter(choices=RuleKind.choices)
    strength = filters.ChoiceFilter(choices=RuleStrength.choices)
    vm = filters.NumberFilter(field_name="members__vm_id", distinct=True, help_text="Rules naming this VM (its id)")

    class Meta:
        model = AffinityRule
        fields = ["name", "cluster", "kind", "strength", "vm"]


class EvacuationFilter(filters.FilterSet):
    host = filters.NumberFilter(field_name="host_id")
    state = filters.ChoiceFilter(choices=EvacuationState.choices)

    class Meta:
        model = Evacuation
        fields = ["host", "state"]


class AuditEntryFilter(filters.FilterSet):
    actor = filters.CharFilter(field_name="actor__username", lookup_expr="iexact", help_text="A username")
    action = filters.ChoiceFilter(choices=AUDIT_ACTIONS, method="filter_action")
    object_type = filters.CharFilter(method="filter_object_type", help_text="app_label.model (inventory.host) or just the model (host)")
    object_pk = filters.CharFilter()
    object_repr = filters.CharFilter(lookup_expr="icontains", help_text="Part of the object's name")
    since = UtcDateTimeFilter(field_name="timestamp", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = LogEntry
        fields = ["actor", "action", "object_type", "object_pk", "object_repr", "since", "until"]

    def filter_action(self, entries, name, value):
        number = next(number for number, label in LogEntry.Action.choices if str(label) == value)
        return entries.filter(action=number)

    def filter_object_type(self, entries, name, value):
        app_label, _, model = value.lower().rpartition(".")
        entries = entries.filter(content_type__model=model)
        return entries.filter(content_type__app_label=app_label) if app_label else entries
