"""Where RQ finds the migration jobs queued under their first home.

A queued job stores its function's dotted path; jobs queued before the engine moved into
`migrations_app.engine` name this module, and must still run after an upgrade.
"""

from migrations_app.engine.jobs import hand_on_slots, housekeeping_job, requeue_lost_jobs, run_migration_job

__all__ = ["hand_on_slots", "housekeeping_job", "requeue_lost_jobs", "run_migration_job"]
