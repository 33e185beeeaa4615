"""The filters of every API list (django-filter): ?name=, ?state=, ?host=... A value of the
wrong type, out of range, or empty where the filter takes no empty value, is a 400 that
names the filter; the schema says what each takes."""

from datetime import UTC

import django_filters as filters
from auditlog.models import LogEntry
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_filters.fields import IsoDateTimeField
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import extend_schema_field

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


# The largest id the database holds (a signed 64-bit integer): a larger number, or one with a
# fraction, names nothing, and SQLite cannot even compare it.
MAX_ID = 2**63 - 1


class WholeNumberFilter(filters.NumberFilter):
    """A whole number from `minimum` to MAX_ID, documented so in the schema."""

    field_class = forms.IntegerField

    def __init__(self, *args, minimum: int = 1, **kwargs):
        super().__init__(*args, min_value=minimum, max_value=MAX_ID, **kwargs)
        schema = {"type": "integer", "format": "int64", "minimum": minimum, "maximum": MAX_ID}
        set_override(self, "field", {**schema, "description": kwargs["help_text"]} if kwargs.get("help_text") else schema)


class IdFilter(WholeNumberFilter):
    """An object's id."""


class StrictBooleanField(forms.Field):
    """true or false, nothing else: django-filter's own reads any other word as "no filter"."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if value in ("true", "false"):
            return value == "true"
        raise ValidationError("Give true or false.", code="invalid")


class BooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField


class ApiFilterSet(filters.FilterSet):
    """A filter given with an empty value is refused, except text filters: an empty id, time,
    choice or true/false is not one the schema allows, and would otherwise filter nothing."""

    def is_valid(self) -> bool:
        errors = self.form.errors  # the form's own validation first
        for name, filter_ in self.filters.items():
            if not isinstance(filter_, filters.CharFilter) and name not in errors and "" in self.data.getlist(name, []):
                self.form.add_error(name, "Give a value, or leave this filter out.")
        return super().is_valid()


class ClusterFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")

    class Meta:
        model = Cluster
        fields = ["name"]


class HostFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    cluster = IdFilter(field_name="cluster_id", help_text="A cluster's id")
    state = filters.ChoiceFilter(choices=HostState.choices)
    degraded = BooleanFilter(field_name="degraded_since", lookup_expr="isnull", exclude=True, help_text="Marked as failing")

    class Meta:
        model = Host
        fields = ["name", "cluster", "state", "degraded"]


class DatastoreFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    kind = filters.ChoiceFilter(choices=DatastoreKind.choices)
    host = IdFilter(field_name="mounts__host_id", distinct=True, help_text="Mounted on this host (its id)")

    class Meta:
        model = Datastore
        fields = ["name", "kind", "host"]


class NetworkFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    host = IdFilter(field_name="attachments__host_id", distinct=True, help_text="Present on this host (its id)")

    class Meta:
        model = Network
        fields = ["name", "host"]


class VirtualMachineFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    uuid = filters.UUIDFilter()
    host = IdFilter(field_name="host_id", help_text="The id of the host it runs on")
    cluster = IdFilter(field_name="host__cluster_id", help_text="The id of its host's cluster")
    power_state = filters.ChoiceFilter(choices=PowerState.choices)

    class Meta:
        model = VirtualMachine
        fields = ["name", "uuid", "host", "cluster", "power_state"]


class TaskFilter(ApiFilterSet):
    state = filters.MultipleChoiceFilter(choices=TaskState.choices, help_text="Repeat for several: ?state=queued&state=migrating")
    active = BooleanFilter(method="filter_active", help_text="Not ended yet (queued, checking, waiting, migrating, post-copy)")
    vm = IdFilter(field_name="vm_id", help_text="A VM's id")
    vm_name = filters.CharFilter(field_name="vm__name", lookup_expr="icontains", help_text="Part of the VM's name")
    host = IdFilter(method="filter_host", help_text="A host's id, as source or destination")
    source = IdFilter(field_name="source_id")
    destination = IdFilter(field_name="destination_id")
    batch = IdFilter(field_name="batch_id")
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


class ProgressSampleFilter(ApiFilterSet):
    elapsed_after_ms = WholeNumberFilter(minimum=0, field_name="elapsed_ms", lookup_expr="gt", help_text="Only samples taken later than this into the migration")

    class Meta:
        model = ProgressSample
        fields = ["elapsed_after_ms"]


class ScheduleFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    action = filters.ChoiceFilter(choices=ScheduleAction.choices)
    enabled = BooleanFilter()

    class Meta:
        model = Schedule
        fields = ["name", "action", "enabled"]


class AffinityRuleFilter(ApiFilterSet):
    name = filters.CharFilter(lookup_expr="icontains", help_text="Part of the name")
    cluster = IdFilter(field_name="cluster_id")
    kind = filters.ChoiceFilter(choices=RuleKind.choices)
    strength = filters.ChoiceFilter(choices=RuleStrength.choices)
    vm = IdFilter(field_name="members__vm_id", distinct=True, help_text="Rules naming this VM (its id)")

    class Meta:
        model = AffinityRule
        fields = ["name", "cluster", "kind", "strength", "vm"]


class EvacuationFilter(ApiFilterSet):
    host = IdFilter(field_name="host_id")
    state = filters.ChoiceFilter(choices=EvacuationState.choices)

    class Meta:
        model = Evacuation
        fields = ["host", "state"]


class AuditEntryFilter(ApiFilterSet):
    actor = filters.CharFilter(field_name="actor__username", lookup_expr="iexact", help_text="A username")
    # The model stores a number; the filter takes the verb.
    action = extend_schema_field({"type": "string", "enum": [verb for verb, _ in AUDIT_ACTIONS], "description": "What was done to the object"})(
        filters.ChoiceFilter(choices=AUDIT_ACTIONS, method="filter_action")
    )
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
