"""The audit trail: the models registered with django-auditlog (`registry`) and the audit page's merged trail (`trail`)."""
