"""Users in the audit trail: who was created, given a role or deactivated, and by whom."""

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model

auditlog.register(get_user_model(), exclude_fields=["password", "last_login"], m2m_fields={"groups"})
