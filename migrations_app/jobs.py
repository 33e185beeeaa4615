"""RQ entry points for migrations."""

from . import dispatch, engine, recovery


def run_migration_job(task_id: int) -> None:
    engine.run_task(task_id)


def housekeeping_job() -> dict:
    """Finalise tasks whose worker is gone, then hand free slots to waiting tasks."""
    reconciled = recovery.reconcile_orphaned_tasks()
    queued = dispatch.queue_granted_tasks()
    return {"reconciled": reconciled, "queued": queued}
