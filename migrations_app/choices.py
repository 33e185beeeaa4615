"""The migration task's states and priorities, each with a label an operator reads."""

from django.db import models


class TaskState(models.TextChoices):
    # Accepted; the checks ran at submission and passed. Waiting for a worker.
    QUEUED = "queued", "Queued"
    # A worker is running the pre-flight checks again, just before moving anything.
    CHECKING = "checking", "Checking"
    # Checks passed but a per-host or global migration limit is full; it waits its turn.
    WAITING = "waiting", "Waiting for a slot"
    # libvirt is copying memory; the VM still runs on the source.
    MIGRATING = "migrating", "Migrating"
    # Switched to post-copy: the VM runs on the destination while the rest of its memory
    # follows. It can no longer be cancelled.
    POST_COPY = "post_copy", "Post-copy"
    # Final states.
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class TaskKind(models.TextChoices):
    """What a task moves: the VM to another host (its memory, and the disks chosen to go with
    it), or only its disks, to other datastores of the host it runs on."""

    COMPUTE = "compute", "Host"
    STORAGE = "storage", "Storage only"


class EndReason(models.TextChoices):
    """Why a task reached its final state, in a few fixed words: the `reason` of the
    migrations counter on /metrics, so never free text."""

    # Succeeded.
    COMPLETED = "completed", "Completed by its worker"
    RECOVERED = "recovered", "Finished by libvirt after its worker was lost"
    # Cancelled.
    OPERATOR = "operator", "Cancelled by an operator"
    WINDOW_CLOSED = "window_closed", "Its schedule's window closed"
    # Failed.
    PREFLIGHT = "preflight", "Refused by the pre-flight checks"
    VM_MOVED = "vm_moved", "The VM no longer ran on the source"
    CONVERGENCE_ABORT = "convergence_abort", "Aborted by the convergence policy"
    LIBVIRT_ERROR = "libvirt_error", "libvirt could not migrate the VM"
    NOT_ON_DESTINATION = "not_on_destination", "libvirt returned but the VM did not run on the destination"
    POST_COPY_BROKEN = "post_copy_broken", "Post-copy broke and libvirt could not resume it"
    WORKER_LOST = "worker_lost", "Its worker was lost"
    LOST_CONTACT = "lost_contact", "vmotion lost contact with a host"
    INTERNAL_ERROR = "internal_error", "vmotion hit an unexpected error"
    OTHER = "other", "Other"


ACTIVE_STATES = (TaskState.QUEUED, TaskState.CHECKING, TaskState.WAITING, TaskState.MIGRATING, TaskState.POST_COPY)
FINAL_STATES = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    TaskState.QUEUED: frozenset({TaskState.CHECKING, TaskState.CANCELLED, TaskState.FAILED}),
    TaskState.CHECKING: frozenset({TaskState.WAITING, TaskState.MIGRATING, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.WAITING: frozenset({TaskState.CHECKING, TaskState.CANCELLED, TaskState.FAILED}),
    TaskState.MIGRATING: frozenset({TaskState.POST_COPY, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED}),
    TaskState.POST_COPY: frozenset({TaskState.SUCCEEDED, TaskState.FAILED}),
    TaskState.SUCCEEDED: frozenset(),
    TaskState.FAILED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}


class EvacuationState(models.TextChoices):
    # Its host's VMs are moving off it, failed moves retried a bounded number of times.
    RUNNING = "running", "Evacuating"
    # No VM runs on the host any more: it is in maintenance.
    COMPLETED = "completed", "Completed"
    # A VM cannot move (nowhere to go, or every attempt failed); the host stays entering
    # maintenance with the VMs that did move.
    STOPPED = "stopped", "Stopped"
    ABORTED = "aborted", "Aborted"


class ScheduleAction(models.TextChoices):
    MOVE = "move", "Move VMs"
    EVACUATE = "evacuate", "Evacuate a host (enter maintenance)"


class RecurrenceKind(models.TextChoices):
    ONCE = "once", "Once"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    CRON = "cron", "Cron expression"


class ScheduleRunState(models.TextChoices):
    # Its migrations were submitted and some have not ended yet.
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    # Nothing could be submitted: a VM or host it names is gone, or nothing could move.
    FAILED = "failed", "Failed"
    # Its time passed while no scheduler ran, beyond the grace period: it did not run.
    MISSED = "missed", "Missed"


class AutomationLevel(models.TextChoices):
    OFF = "off", "Off"
    MANUAL = "manual", "Manual: recommend only"
    AUTOMATIC = "automatic", "Automatic: apply every interval"


class ProactiveLevel(models.TextChoices):
    """What a cluster does about a degraded host (one that failing health rules or an
    administrator marked)."""

    OFF = "off", "Off: no health rules"
    # The host is marked degraded and its pages recommend evacuating it; nothing moves.
    RECOMMEND = "recommend", "Recommend: mark the host, move nothing"
    # The host enters maintenance by itself, exactly as an administrator would put it there.
    EVACUATE = "evacuate", "Evacuate: enter maintenance automatically"


class Priority(models.IntegerChoices):
    # Lower sorts first: slots go by priority, then first come first served.
    HIGH = 1, "High"
    NORMAL = 2, "Normal"
    LOW = 3, "Low"

    @property
    def queue_name(self) -> str:
        return {Priority.HIGH: "high", Priority.NORMAL: "default", Priority.LOW: "low"}[self]


class EventKind(models.TextChoices):
    STATE = "state", "State change"
    CHECK = "check", "Pre-flight check"
    POLICY = "policy", "Convergence policy"
    OPERATOR = "operator", "Operator action"
    INFO = "info", "Information"


class RuleKind(models.TextChoices):
    TOGETHER = "together", "Keep VMs together"
    APART = "apart", "Keep VMs apart"
    ON_HOSTS = "on_hosts", "Run VMs on hosts"


class RuleStrength(models.TextChoices):
    MUST = "must", "Must"
    SHOULD = "should", "Should"
