"""Values the API names differently from the database: priorities by name, audit actions by verb."""

from auditlog.models import LogEntry
from rest_framework import serializers

from migrations_app.choices import Priority

PRIORITY_NAMES = [(priority.label.lower(), priority.label) for priority in Priority]
AUDIT_ACTIONS = [(str(label), str(label).capitalize()) for _, label in LogEntry.Action.choices]


def priority_name(value: int) -> str:
    return Priority(value).label.lower()


class PriorityField(serializers.ChoiceField):
    """A priority as "high", "normal" or "low"; stored as the number the queues sort by."""

    def __init__(self, **kwargs):
        super().__init__(choices=PRIORITY_NAMES, **kwargs)

    def to_internal_value(self, data) -> int:
        name = super().to_internal_value(data)
        return next(priority for priority in Priority if priority.label.lower() == name)

    def to_representation(self, value) -> str:
        return priority_name(value)
