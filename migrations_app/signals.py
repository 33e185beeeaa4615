"""What happens to migration tasks, for code that follows it without the engine knowing
(the metrics, migrations_app/metrics/recording.py)."""

from django.dispatch import Signal

# Sent once a task's final state is committed, so exactly once per task, with
# task_id, state (the final TaskState), end_reason (an EndReason) and post_copy (whether
# the migration had switched to post-copy).
task_ended = Signal()
