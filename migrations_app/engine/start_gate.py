"""What stands between a task's fresh checks and its first byte moved, for every kind of
move: the checks' verdict on the timeline, a cancel asked for meanwhile, and a slot."""

from __future__ import annotations

from collections.abc import Callable

from migrations_app.checks.report import CheckReport, CheckStatus
from migrations_app.choices import EndReason, EventKind, TaskState
from migrations_app.engine import slots
from migrations_app.engine.conclusion import finish
from migrations_app.models import MigrationTask

QueueTasks = Callable[[list[MigrationTask]], None]


def cleared_to_start(task: MigrationTask, report: CheckReport, queue_granted: QueueTasks) -> bool:
    """Whether the task may move now: its checks passed (each warning and failure on its
    timeline), nobody cancelled it, and it holds a slot; otherwise it ended or waits, saying
    why. `queue_granted` queues the tasks a slot was granted to meanwhile."""
    task.beat()
    for result in report.results:
        if result.status != CheckStatus.OK:
            task.log(EventKind.CHECK, f"{CheckStatus(result.status).label}: {result.message}")
    if not report.passed:
        finish(task, TaskState.FAILED, EndReason.PREFLIGHT, error=report.summary())
        return False
    task.log(EventKind.CHECK, f"All {len(report.results)} pre-flight checks passed.")
    if MigrationTask.objects.filter(pk=task.pk, cancel_requested=True).exists():
        finish(task, TaskState.CANCELLED, EndReason.OPERATOR, message="Cancelled before it started; nothing moved.")
        return False
    if task.slot_granted_at is None:
        decision, also_granted = slots.request_slot(task)
        queue_granted(also_granted)
        if not decision.granted:
            task.transition(TaskState.WAITING, f"Waiting for a slot, position {decision.position}: {decision.blocked_by}.")
            return False
    return True
