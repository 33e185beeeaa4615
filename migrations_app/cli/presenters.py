"""How a task reads in one line, for the CLI."""

from migrations_app.models import MigrationTask


def task_summary(task: MigrationTask) -> str:
    if task.storage_only:
        line = f"#{task.pk:<5} {task.get_state_display():<18} {task.vm.name} disks on {task.source.name}"
    else:
        line = f"#{task.pk:<5} {task.get_state_display():<18} {task.vm.name} {task.source.name} -> {task.destination.name}"
    if task.storage_only and task.total_ms is not None:
        line += f"  {task.total_ms / 1000:.1f} s, no pause"
    elif task.total_ms is not None:
        line += f"  {task.total_ms / 1000:.1f} s, pause {task.downtime_ms} ms"
    if task.encrypted:
        line += "  encrypted (TLS)"
    if task.error:
        line += f"  {task.error}"
    return line
