"""The audit trail's change records (django-auditlog) as the API shows them. A libvirt URI in
a recorded change is shown redacted, as everywhere else."""

from auditlog.models import LogEntry
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hypervisor.uris import redact

from ..fields import AUDIT_ACTIONS

URI_FIELDS = frozenset({"uri", "migration_uri"})
ACTION_NAMES = dict(AUDIT_ACTIONS)


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True, help_text="Null: the system (scheduler, workers, sync)")
    action = serializers.SerializerMethodField()
    object_type = serializers.SerializerMethodField(help_text="app_label.model, e.g. inventory.host")
    changes = serializers.SerializerMethodField(help_text="Each changed field with its old and new value")

    class Meta:
        model = LogEntry
        fields = ["id", "timestamp", "actor", "action", "object_type", "object_pk", "object_repr", "changes", "remote_addr"]

    @extend_schema_field(serializers.ChoiceField(choices=AUDIT_ACTIONS))
    def get_action(self, entry: LogEntry) -> str:
        return str(dict(LogEntry.Action.choices)[entry.action])

    def get_object_type(self, entry: LogEntry) -> str:
        return f"{entry.content_type.app_label}.{entry.content_type.model}"

    @extend_schema_field({"type": "object", "additionalProperties": {}})
    def get_changes(self, entry: LogEntry) -> dict:
        changes = entry.changes_dict or {}
        return {field: _redacted(change) if field in URI_FIELDS else change for field, change in changes.items()}


def _redacted(change):
    if isinstance(change, list):
        return [redact(value) if isinstance(value, str) and value not in ("", "None") else value for value in change]
    return change
