"""The audit trail's change records, read."""

from auditlog.models import LogEntry

from core.roles import Role

from .. import filtersets
from ..serializers.audit import AuditEntrySerializer
from .inventory import ReadOnlyViewSet


class AuditEntryViewSet(ReadOnlyViewSet):
    """Who changed what and when (django-auditlog), newest first: hosts, clusters, tasks,
    schedules, rules, users, API tokens. An Administrator's, as the audit page."""

    queryset = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-pk")
    serializer_class = AuditEntrySerializer
    filterset_class = filtersets.AuditEntryFilter
    roles = {"*": Role.ADMINISTRATOR}
