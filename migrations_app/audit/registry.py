"""Tasks in the audit trail: who asked for a migration, cancelled or forced it, and each state change."""

from auditlog.registry import auditlog

from migrations_app.models import AffinityRule, BalancingPolicy, Evacuation, MigrationLimits, MigrationTask, ProactivePolicy, Schedule

auditlog.register(MigrationTask, include_fields=["state", "cancel_requested", "force_complete_requested", "destination", "priority", "error"])
auditlog.register(MigrationLimits)
auditlog.register(Evacuation, include_fields=["state", "message"])
auditlog.register(Schedule, exclude_fields=["next_run_at"])
auditlog.register(BalancingPolicy, exclude_fields=["last_round_at"])  # who created, edited, enabled or deleted it
auditlog.register(AffinityRule)  # who made or deleted a rule
auditlog.register(ProactivePolicy)  # who set a cluster's health rules and whether failing hosts are evacuated
