"""Users in the audit trail: who was created, given a role or deactivated, and by whom; and
who made or revoked which API token (never its digest)."""

from auditlog.registry import auditlog
from django.contrib.auth import get_user_model

from .models import ApiToken

auditlog.register(get_user_model(), exclude_fields=["password", "last_login"], m2m_fields={"groups"})
auditlog.register(ApiToken, include_fields=["user", "name", "prefix", "expires_at", "revoked_at", "revoked_because"])
